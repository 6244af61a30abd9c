"""The Argilla web UI on assay's engine: an annotator signs in, sees the pending queue and submits."""

from __future__ import annotations

import base64
import shutil

import httpx
import pytest

from assay.label.server import ServerInfo, add_user

pytestmark = pytest.mark.argilla

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


@pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary (Debian: apt-get install chromium)")
def test_annotator_submits_from_the_pending_queue(argilla_server: ServerInfo):
    rg = pytest.importorskip("argilla")
    sync_api = pytest.importorskip("playwright.sync_api")
    client = rg.Argilla(api_url=argilla_server.url, api_key=argilla_server.api_key)
    settings = rg.Settings(
        fields=[rg.TextField(name="prompt")],
        questions=[rg.LabelQuestion(name="decision", labels=["approve", "reject"])],
        vectors=[rg.VectorField(name="emb", dimensions=2)],
    )
    dataset = rg.Dataset(name="ui-smoke", workspace="assay", settings=settings, client=client).create()
    dataset.records.log(
        [
            rg.Record(id=f"u{i}", fields={"prompt": f"ui prompt number {i}"}, vectors={"emb": [1, i]})
            for i in range(3)
        ]
    )
    user = add_user(argilla_server.home, "erin")
    auth = base64.b64encode(f"erin:{user['password']}".encode()).decode()
    failures: list[tuple[int, str]] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page()
        page.on("response", lambda r: failures.append((r.status, r.url)) if r.status >= 400 else None)
        page.goto(f"{argilla_server.url}/sign-in?auth={auth}")
        page.wait_for_timeout(1500)
        page.goto(f"{argilla_server.url}/dataset/{dataset.id}/annotation-mode")
        page.wait_for_selector("text=ui prompt number", timeout=30000)
        page.get_by_text("approve", exact=True).first.click()
        page.get_by_role("button", name="Submit").first.click()
        page.wait_for_selector("text=2 of 3", timeout=15000)  # the queue moved on to the next pending record
        browser.close()
    assert failures == []
    with httpx.Client(base_url=argilla_server.url, headers={"X-Argilla-Api-Key": user["api_key"]}) as api:
        metrics = api.get(f"/api/v1/me/datasets/{dataset.id}/metrics").json()["responses"]
    assert (metrics["submitted"], metrics["pending"]) == (1, 2)
