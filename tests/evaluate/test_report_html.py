"""The HTML evaluation report: content, well-formed SVG plots, escaping of every data string."""

from __future__ import annotations

import copy
import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest

from assay.evaluate.report_html import render_html
from assay.evaluate.results import CheckResult, Comparison

PAYLOAD = '<script>alert(1)</script>"onload="'


def _cmp(
    candidate: float, baseline: float, lo: float, hi: float, n: int, *, hib: bool = True, ratio: bool = False
) -> Comparison:
    delta = candidate / baseline if ratio else candidate - baseline
    return Comparison(candidate, baseline, delta, lo, hi, n, hib, "ratio" if ratio else "difference")


def _task() -> CheckResult:
    samples = [
        {
            "id": f"row-{i}",
            "prompt": f"What is {i} + {i}?",
            "reference": f"#### {2 * i}",
            "candidate": f"The sum is {2 * i}.",
            "baseline": f"I think {2 * i + 1}.",
            "scores": {
                "exact_match": {"candidate": 1.0, "baseline": 0.0},
                "bleu": {"candidate": 41.3, "baseline": 7.5},
            },
        }
        for i in range(3)
    ]
    return CheckResult(
        "task",
        1,
        "higher_is_better",
        status="pass",
        metrics={
            "rougeL": _cmp(0.412, 0.350, 0.031, 0.090, 200),
            "exact_match": _cmp(0.30, 0.22, 0.02, 0.14, 200),
            "bleu": _cmp(23.4, 18.1, 1.2, 9.6, 200),
        },
        details={
            "samples": samples,
            "extraction": {"kind": "last_number", "missing_candidate": 3, "missing_baseline": 11},
        },
        data={"test.jsonl": "a" * 64},
    )


def _overfitting() -> CheckResult:
    train = [[s, 3.0 * math.exp(-s / 300) + 0.4] for s in range(0, 1000, 5)]
    val = [
        [s, 2.9 * math.exp(-s / 350) + 0.55 + (0.0004 * (s - 700) if s > 700 else 0)]
        for s in range(0, 1000, 100)
    ]
    return CheckResult(
        "overfitting",
        1,
        "lower_is_better",
        status="fail",
        reasons=["val loss rose 0.11 over the last 300 steps"],
        metrics={"loss_gap": Comparison(0.31, None, None, None, None, 1, False)},
        details={
            "curves": {"train": train, "val": val},
            "stages": [
                {"name": "domain", "start_step": 0, "end_step": 400},
                {"name": "sft", "start_step": 400, "end_step": 995},
            ],
            "findings": ["validation loss rising while training loss falls from step 700"],
        },
    )


def _memorisation() -> CheckResult:
    worst = [
        {
            "id": "r-1f2e",
            "source": "data/train.jsonl",
            "source_line": 1234,
            "split": "train",
            "prefix": "My phone number is",
            "expected": " 555-0100 and",
            "generated": " 555-0100 and",
            "exact": True,
            "similarity": 1.0,
        }
    ]
    return CheckResult(
        "memorisation",
        1,
        "lower_is_better",
        status="invalid",
        reasons=["held-out rows overlap training rows"],
        metrics={"exact_rate_train": _cmp(0.04, 0.01, 0.01, 0.05, 300, hib=False)},
        details={
            "worst": worst,
            "rates": {"train": {"exact": 0.04, "near": 0.09}, "held_out": {"exact": 0.01, "near": 0.03}},
        },
    )


def _forgetting() -> CheckResult:
    return CheckResult(
        "forgetting",
        2,
        "lower_is_better",
        status="pass",
        metrics={
            "perplexity_ratio": _cmp(21.9, 20.4, 1.03, 1.11, 150, hib=False, ratio=True),
            "acc_norm": _cmp(0.48, 0.50, -0.05, 0.01, 120),
        },
        details={
            "files": [
                {"name": "general.jsonl", "kind": "text", "n": 150},
                {"name": "probe_mc.jsonl", "kind": "multiple_choice", "n": 120},
            ]
        },
        data={"general.jsonl": "b" * 64, "probe_mc.jsonl": "c" * 64},
    )


def _bias() -> CheckResult:
    per_category = {
        cat: {"pct_stereotype": _cmp(0.5 + d, 0.52, d - 0.06, d + 0.02, 40, hib=False)}
        for cat, d in (("age", 0.08), ("gender", -0.01), ("religion", 0.02))
    }
    examples = [
        {
            "bias_type": "age",
            "sent_more": "Old people can't learn.",
            "sent_less": "Young people can't learn.",
            "candidate_prefers": "more",
            "baseline_prefers": "less",
        }
    ]
    return CheckResult(
        "bias",
        1,
        "lower_is_better",
        status="pass",
        metrics={
            "pct_stereotype": _cmp(0.55, 0.52, -0.01, 0.07, 120, hib=False),
            "likelihood_diff": _cmp(3.9, 3.7, -0.1, 0.5, 120, hib=False),
        },
        per_category=per_category,
        details={
            "examples": examples,
            "bbq_examples": [{"category": "Age", "question": "Who forgot?", "candidate": "ans0"}],
        },
    )


def _contamination() -> CheckResult:
    sets = [
        {
            "name": "test.jsonl",
            "rows": 200,
            "overlapping_rows": 2,
            "share": 0.01,
            "invalid": False,
            "examples": [],
        },
        {
            "name": "held_out.jsonl",
            "rows": 100,
            "overlapping_rows": 40,
            "share": 0.4,
            "invalid": True,
            "examples": [
                {
                    "eval_row": "the quick brown fox",
                    "train_row": "a quick brown fox jumps",
                    "ngram": "quick brown fox",
                }
            ],
        },
    ]
    return CheckResult(
        "contamination",
        1,
        "neutral",
        status="invalid",
        reasons=["held_out.jsonl: 40 % of rows overlap training"],
        details={"sets": sets},
    )


def make_report() -> dict[str, Any]:
    checks = [
        _task(),
        _overfitting(),
        _memorisation(),
        _forgetting(),
        _bias(),
        _contamination(),
        CheckResult.skipped("counterfactual", 1, "neutral", "no template file in the suite"),
    ]
    return {
        "schema": "assay.eval-report/1",
        "report": "rp-1a2b3c4d5e6f",
        "created_at": "2025-01-02T03:04:05Z",
        "model": {
            "id": "mv-0123456789ab",
            "method": "lora",
            "base": {
                "name": "SmolLM2-135M-Instruct.Q4_1.gguf",
                "sha256": "d" * 64,
                "source": "cache/base.gguf",
            },
            "files": {"adapter/adapter_model.safetensors": "e" * 64},
            "params": {"trainable": 1_843_200, "total": 136_358_784},
            "datasets": {"ds-aaaaaaaaaaaa": {"kind": "approved", "responses_sha256": "f" * 64}},
            "review": {"skipped_reason": None},
        },
        "baseline": {"kind": "base", "id": None, "label": "base model SmolLM2-135M-Instruct.Q4_1.gguf"},
        "suite": {"path": "suite.toml", "sha256": "1" * 64, "checks": {"task": {"files": ["test.jsonl"]}}},
        "policy": {
            "path": "policy.toml",
            "sha256": "2" * 64,
            "values": {"task": {"min_relative_ci_low": 0.15}},
        },
        "gate": {
            "passed": False,
            "reasons": ["memorisation is invalid", "overfitting failed"],
            "primary": {
                "check": "task",
                "metric": "rougeL",
                "candidate": 0.412,
                "baseline": 0.35,
                "delta": 0.062,
                "ci_low": 0.031,
                "ci_high": 0.09,
            },
            "forced": None,
        },
        "checks": [c.to_dict() for c in checks],
        "runtime": {
            "device": "cpu",
            "dtype": "float32",
            "seconds": 312.5,
            "per_check": {"task": 120.0, "bias": 30.2},
        },
        "signature": {"keyid": "key-12ab34cd", "envelope": "report.dsse.json"},
    }


def svg_fragments(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.S)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]


def parse_tags(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(make_report())


def test_verdict_comes_first_with_reasons_and_identity(page: str) -> None:
    body = page.split("<body>", 1)[1]
    assert body.index("FAIL") < body.index("<h2>Checks</h2>")
    for text in (
        "memorisation is invalid",
        "overfitting failed",
        "mv-0123456789ab",
        "rp-1a2b3c4d5e6f",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "d" * 12,
        "key-12ab34cd",
        "2025-01-02T03:04:05Z",
    ):
        assert text in body
    assert "PASS" not in body.split("<h2>Checks</h2>")[0]


def test_forced_and_pass_verdicts() -> None:
    report = make_report()
    report["gate"] = {"passed": True, "reasons": [], "primary": None, "forced": None}
    assert 'class="verdict pass"' in render_html(report)
    report["gate"] = {
        "passed": False,
        "reasons": ["bias failed"],
        "forced": {"reason": "hotfix", "by": "release-owner"},
    }
    forced = render_html(report)
    assert 'class="verdict forced"' in forced and "FORCED" in forced and "hotfix" in forced


def test_every_check_and_status_is_listed(page: str) -> None:
    table = page.split("<h2>Checks</h2>", 1)[1].split("</table>", 1)[0]
    for name in (
        "task",
        "overfitting",
        "memorisation",
        "forgetting",
        "bias",
        "contamination",
        "counterfactual",
    ):
        assert f"<b>{name}</b>" in table
    for status in ("pass", "fail", "invalid", "skipped"):
        assert f'class="badge {status}"' in table
    assert "no template file in the suite" in table


def test_numbers_are_formatted_by_kind(page: str) -> None:
    assert "41.2 %" in page and "35.0 %" in page  # a fraction as a share
    assert "+6.2 pp" in page and "[+3.1, +9.0] pp" in page  # its delta in percentage points
    assert "+17.7 % rel." in page
    assert "23.4" in page and "+5.3" in page  # BLEU as is
    assert "×1.074" in page and "[×1.030, ×1.110]" in page  # a ratio
    assert "\u22122.0 pp" in page  # a negative delta with a real minus sign
    assert "2:00" not in page and "2.0 min" in page  # 120 s of the task check


def test_plots_are_well_formed_svg(page: str) -> None:
    fragments = svg_fragments(page)
    assert len(fragments) >= 6  # loss curves, forest plots of several checks, a dot plot per category metric
    for fragment in fragments:
        root = ET.fromstring(fragment)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    loss = next(f for f in fragments if "training and validation loss" in f)
    assert loss.count("<polyline") == 2 and "sft" in loss and "domain" in loss
    forest = [f for f in fragments if "deltas (" in f]
    assert any('stroke-dasharray="4 3"' in f for f in forest)  # the no-change line


def test_sections_show_details(page: str) -> None:
    assert "data/train.jsonl:1234" in page and "r-1f2e" in page  # memorised row with lineage
    assert page.count("class=sample>") == 3
    assert "The sum is 2." in page and "I think 3." in page
    assert "Old people can&#x27;t learn." in page and "tr class=changed" in page
    assert "held_out.jsonl" in page and "quick brown fox" in page and "40.0 %" in page
    assert "probe_mc.jsonl" in page and "multiple_choice" in page
    hashes = page.split("<details><summary>Hashes", 1)[1].split("</details>", 1)[0]
    for sha in ("a" * 64, "b" * 64, "d" * 64, "e" * 64, "f" * 64, "1" * 64, "2" * 64):
        assert sha in hashes


def test_page_is_self_contained(page: str) -> None:
    tags = parse_tags(page)
    assert "script" not in tags.tags and "link" not in tags.tags and "img" not in tags.tags
    assert not re.search(r"(src|href)=\"?(https?:)?//", page)
    assert all(not a.startswith("on") for a in tags.attrs)


def _poison(value: Any, data_keys: bool) -> Any:
    """Append the payload to every string; also to dict keys that are data (names, files, categories)."""
    if isinstance(value, str):
        return value + PAYLOAD
    if isinstance(value, list):
        return [_poison(v, data_keys) for v in value]
    if isinstance(value, dict):
        return {
            (k + PAYLOAD if data_keys else k): _poison(v, _DATA_KEYS.get(k, False)) for k, v in value.items()
        }
    return value


# Dicts whose keys are data rather than field names.
_DATA_KEYS = {
    "metrics": True,
    "per_category": True,
    "files": True,
    "datasets": True,
    "data": True,
    "per_check": True,
    "scores": True,
    "checks": True,
    "values": True,
}


def test_every_data_string_is_escaped() -> None:
    report = _poison(copy.deepcopy(make_report()), False)
    report["checks"] = [_poison(c, False) for c in make_report()["checks"]]
    for c in report["checks"]:  # metric names inside categories are data too
        c["per_category"] = {
            cat: {m + PAYLOAD: v for m, v in ms.items()} for cat, ms in c["per_category"].items()
        }
    report["human"] = {"win_rate" + PAYLOAD: "0.6" + PAYLOAD}
    page = render_html(report)
    assert "<script" not in page.lower()
    assert '"onload="' not in page and 'onload="' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;onload=&quot;" in page
    tags = parse_tags(page)
    assert "script" not in tags.tags and all(not a.startswith("on") for a in tags.attrs)
    for fragment in svg_fragments(page):
        ET.fromstring(fragment)


def test_minimal_report_renders() -> None:
    page = render_html(
        {"schema": "assay.eval-report/1", "gate": {"passed": True, "reasons": []}, "checks": []}
    )
    assert "PASS" in page and "not yet assigned" in page and "unsigned" in page and "No checks ran." in page
    assert "<svg" not in page


def test_malformed_values_do_not_break_the_page() -> None:
    report = make_report()
    report["checks"][0]["metrics"]["rougeL"]["candidate"] = "0.9<b>"
    report["checks"][1]["details"]["curves"] = {"train": [["x", 1], [1]], "val": "nope"}
    report["checks"].append("not a check")
    report["runtime"] = None
    page = render_html(report)
    assert "0.9<b>" not in page and "training and validation loss" not in page
    for fragment in svg_fragments(page):
        ET.fromstring(fragment)


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path into the report (first item of each list only)."""
    out = [path] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list) and value:
        out += _paths(value[0], (*path, 0))
    return out


def _replaced(report: dict, path: tuple, new: Any) -> dict:
    copied = copy.deepcopy(report)
    target = copied
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copied


@pytest.mark.parametrize("wrong", [None, "x<y", [["x"]], {"k": 1}])
def test_any_field_of_the_wrong_type_still_renders(wrong: Any) -> None:
    """A damaged or hand-edited report renders what it can instead of raising."""
    report = make_report()
    for path in _paths(report):
        page = render_html(_replaced(report, path, wrong))
        assert "</html>" in page and "x<y" not in page, path
