"""A curator in a real browser: what they see (provenance, answer markers, no pre-selected decision, readable
metadata), then approve a record and submit; pull sees it.

Screenshots go to test-artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import base64
import os
import re
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
MARKERS = {"m000": "#### 72", "m001": "#### 10", "m002": "#### 5"}


@pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary (Debian: apt-get install chromium)")
def test_curator_approves_in_the_ui_and_pull_sees_it(argilla_server: ServerInfo, review_workspace, write_review_version):
    sync_api = pytest.importorskip("playwright.sync_api")
    ws = review_workspace
    pushed = push(ws, _marked_version(ws), dataset="pp-browser")
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
        page.wait_for_selector("text=marked.jsonl, line", timeout=30000)
        page.screenshot(path=str(ARTIFACTS / "label-browser-annotation.png"), full_page=True)
        shown = page.inner_text("body")
        line, row = re.search(r"marked\.jsonl, line (\d) · row (m00\d)", shown).groups()  # where the row comes from
        assert int(line) == int(row[-1]) + 1
        assert MARKERS[row] in shown  # plain text: Markdown would turn the answer marker into a heading
        approve = page.locator("#decision_approve")
        assert not approve.is_checked()  # nothing decides for the curator: Enter alone approves nothing
        page.locator(".record-menu__header").first.click()
        page.get_by_text("View metadata").click()
        page.wait_for_selector("text=review_priority", timeout=10000)
        table = page.inner_text("body")
        page.screenshot(path=str(ARTIFACTS / "label-browser-metadata.png"), full_page=True)
        assert "characters" in table and "source_file" in table and "q_chars" not in table
        page.mouse.click(200, 850)  # close the metadata popover
        page.locator("label[for=decision_approve]").click()
        assert approve.is_checked()
        page.get_by_role("button", name="Submit").first.click()
        page.wait_for_selector("text=2 of 3", timeout=15000)  # the queue moved on to the next pending record
        page.screenshot(path=str(ARTIFACTS / "label-browser-submitted.png"), full_page=True)
        browser.close()
    assert failures == []
    result = pull(ws, "pp-browser")
    approved = ws.datasets.get(result.version).data().collect()
    assert approved.height == 1 and approved["review_annotators"].to_list() == [[name]]
    assert approved["review_decision"].to_list() == ["approve"] and result.rejected == {"not_reviewed": 2}


def _marked_version(ws) -> str:
    """Three arithmetic rows whose answers end in a `#### N` marker (one of them wrong), one with a long decimal signal."""
    import polars as pl

    frame = pl.DataFrame({
        "id": ["m000", "m001", "m002"], "source": "marked.jsonl", "source_line": [1, 2, 3], "split": "train",
        "dup_cluster": ["c0", "c1", "c2"],
        "prompt": ["A baker fills 48 jars with jam on Monday and half as many on Tuesday. How many jars in all?",
                   "A gardener is paid $12 an hour and worked 50 minutes today. How much did she earn?",
                   "A lamp costs $100 and Sam has saved half of it. How much more does he need?"],
        "response": ["On Tuesday 48/2 = 24 jars.\nIn all 48+24 = 72 jars.\n#### 72",
                     "She earns 12/60 = $0.2 per minute.\nFor 50 minutes: 0.2 x 50 = $10.\n#### 10",
                     "He has 100 / 2 = $50.\n#### 5"],
        "q_chars": [230, 190, 150], "q_words": [40, 33, 30], "q_dup_line_frac": [0.0, 0.0, 0.7671232876712328],
        "pii_any": [False, False, False],
    })
    config = {"quality": {"min_chars": 10, "min_words": 5, "max_duplicate_line_fraction": 0.9}}
    return ws.datasets.write(frame, kind="curated", config=config).version.id


@pytest.mark.skipif(CHROMIUM is None, reason="needs a chromium binary (Debian: apt-get install chromium)")
def test_similarity_chip_names_the_record_in_words(argilla_server: ServerInfo, review_workspace, write_review_version):
    """`Find similar` on a chat record: the filter chip quotes the record's provenance line, not `[object Object]`."""
    sync_api = pytest.importorskip("playwright.sync_api")
    ws = review_workspace
    pushed = push(ws, write_review_version(ws, 4, shape="chat"), dataset="pp-similar", vectors=True)
    name = f"curator-{os.urandom(3).hex()}"
    user = add_user(argilla_server.home, name)
    auth = base64.b64encode(f"{name}:{user['password']}".encode()).decode()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{argilla_server.url}/sign-in?auth={auth}")
        page.wait_for_timeout(1500)
        page.goto(pushed.url)
        page.wait_for_selector("text=review.jsonl, line", timeout=30000)
        page.get_by_text("Find similar").first.click()
        page.wait_for_selector("text=Similar to", timeout=15000)
        chip = page.get_by_text(re.compile(r"Record: review\.jsonl, line \d · row c00\d")).first
        chip.wait_for(timeout=15000)
        page.screenshot(path=str(ARTIFACTS / "label-browser-similar.png"), full_page=True)
        shown = page.inner_text("body")
        browser.close()
    assert "[object Object]" not in shown
    assert re.search(r"\d+(\.\d)?%", shown)  # the neighbours' similarity scores are listed
