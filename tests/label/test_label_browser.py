"""A curator in a real browser: sign in, open the pushed dataset, approve a record, submit; pull sees it.

Screenshots go to test-artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from assay.label.pull import pull
from assay.label.push import push
from assay.label.server import ServerInfo, add_user

pytestmark = pytest.mark.argilla

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary (Debian: apt-get install chromium)")
def test_curator_approves_in_the_ui_and_pull_sees_it(argilla_server: ServerInfo, review_workspace, write_review_version):
    sync_api = pytest.importorskip("playwright.sync_api")
    ws = review_workspace
    pushed = push(ws, write_review_version(ws, 3), dataset="pp-browser")
    name = f"curator-{os.urandom(3).hex()}"
    user = add_user(argilla_server.home, name)
    auth = base64.b64encode(f"{name}:{user['password']}".encode()).decode()
    ARTIFACTS.mkdir(exist_ok=True)
    failures: list[tuple[int, str]] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("response", lambda r: failures.append((r.status, r.url)) if r.status >= 400 else None)
        page.goto(f"{argilla_server.url}/sign-in?auth={auth}")
        page.wait_for_timeout(1500)
        page.goto(pushed.url)
        page.wait_for_selector("text=review prompt", timeout=30000)
        approve = page.locator("#decision_approve")
        if not approve.is_checked():  # the assay-curate suggestion usually pre-selects it already
            page.locator("label[for=decision_approve]").click()
        assert approve.is_checked()
        page.screenshot(path=str(ARTIFACTS / "label-browser-annotation.png"), full_page=True)
        page.get_by_role("button", name="Submit").first.click()
        page.wait_for_selector("text=2 of 3", timeout=15000)  # the queue moved on to the next pending record
        page.screenshot(path=str(ARTIFACTS / "label-browser-submitted.png"), full_page=True)
        browser.close()
    assert failures == []
    result = pull(ws, "pp-browser")
    approved = ws.datasets.get(result.version).data().collect()
    assert approved.height == 1 and approved["review_annotators"].to_list() == [[name]]
    assert approved["review_decision"].to_list() == ["approve"] and result.rejected == {"not_reviewed": 2}
