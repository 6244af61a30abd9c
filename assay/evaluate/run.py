"""`assay eval run`: score a model version and its baseline with the suite, gate, sign, publish.

    outcome = evaluate_model(ws, "mv-1a2b3c4d5e6f")                  # default suite and policy
    outcome.report_id, outcome.decision.passed, outcome.decision.reasons

In order: resolve the model and its baseline; load suite and policy (all file problems at once,
before any model loads); measure contamination (no model needed) so a contaminated eval set is
known before it is scored; load the base once with the adapter; run each enabled check on both
sides; apply the policy; write the report (JSON + HTML), signed over the model's weight files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.evaluate import checks as _registered  # noqa: F401  (registers every check)
from assay.evaluate.checks.base import REGISTRY, EvalContext
from assay.evaluate.gate import Decision, apply_policy
from assay.evaluate.loading import open_sides, resolve_baseline
from assay.evaluate.policy import Policy, load_policy
from assay.evaluate.results import SCHEMA, CheckResult
from assay.evaluate.suite import Suite, describe, load_suite
from assay.store.manifest import now_iso

Progress = Callable[[str], None]


@dataclass
class Outcome:
    report_id: str
    model: str
    baseline: dict[str, Any]
    decision: Decision
    checks: list[CheckResult]
    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {"report": self.report_id, "model": self.model, "baseline": self.baseline, "gate": self.decision.to_dict(),
                "checks": [c.to_dict() for c in self.checks], "path": str(self.path)}


def evaluate_model(
    ws: Any, model_ref: str, *, baseline: str | None = None, suite: Path | None = None, policy: Path | None = None,
    config: Any = None, name: str | None = None, progress: Progress | None = None,
) -> Outcome:
    """Evaluate a model version against its baseline and publish a signed report (see module doc)."""
    cfg = (config or ws.config).eval
    say = progress or (lambda message: None)
    model = ws.models.get(model_ref)
    other = resolve_baseline(ws, model, baseline or cfg.baseline)
    loaded_suite = load_suite(suite or _path(cfg.suite))
    loaded_suite.check_formats()
    loaded_policy = load_policy(policy or _path(cfg.policy))
    say(f"loading {model.id} and its baseline")
    began = time.monotonic()
    sides = open_sides(ws, model, other, scoring_settings(cfg), remember=cfg.cache_baseline)
    ctx = EvalContext(ws, model, sides, loaded_suite, cfg.seed, cfg.confidence, cfg.resamples, say)
    results, timings = run_checks(ctx)
    decision = apply_policy(loaded_policy.config, results)
    body = report_body(ws, model, sides, loaded_suite, loaded_policy, decision, results,
                       {"device": str(sides.scorer.device), "dtype": sides.scorer.settings.dtype, "seconds": round(time.monotonic() - began, 1), "per_check": timings,
                        "baseline_cache": sides.cache_stats()})
    from assay.evaluate.attest import publish

    report = publish(ws, model, body, baseline=other.id if other is not None else None)
    if name:
        ws.reports.tag(report.id, name)
    return Outcome(report.id, model.id, body["baseline"], decision, results, report.path)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def scoring_settings(cfg: Any) -> Any:
    """The Scorer's settings from `[eval]`: a GPU and bf16 when available and not told otherwise."""
    import torch

    from assay.evaluate.scoring import ScoringSettings

    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = cfg.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
    return ScoringSettings(batch_size=cfg.batch_size, device=device, dtype=dtype)


def run_checks(ctx: EvalContext) -> tuple[list[CheckResult], dict[str, float]]:
    """Contamination first (it can invalidate the others' data), then every other enabled check."""
    enabled = ctx.suite.config.enabled()
    order = sorted(enabled, key=lambda name: name != "contamination")
    results, timings = [], {}
    for name in order:
        spec = REGISTRY[name]
        ctx.progress(f"check {name}")
        start = time.monotonic()
        result = spec.fn(ctx, enabled[name])
        timings[name] = round(time.monotonic() - start, 2)
        results.append(_mark_invalid(result, ctx.contaminated))
    return results, timings


def _mark_invalid(result: CheckResult, contaminated: dict[str, str]) -> CheckResult:
    """A check that used a contaminated eval set is `invalid` (the gate fails it)."""
    bad = [f"{name}: {why}" for name in result.data if (why := contaminated.get(name))]
    if bad and result.name != "contamination":
        result.status, result.reasons = "invalid", [*result.reasons, *bad]
    return result


def report_body(ws: Any, model: Any, sides: Any, suite: Suite, policy: Policy, decision: Decision,
                results: list[CheckResult], runtime: dict[str, Any]) -> dict[str, Any]:
    """The report: what was judged (with hashes), against what, how, and the verdict."""
    from assay.evaluate.loading import adapter_files

    m = model.manifest
    return {
        "schema": SCHEMA,
        "created_at": now_iso(),
        "model": {"id": model.id, "method": m.get("method"), "base": {k: m["base"].get(k) for k in ("name", "sha256", "source")},
                  "files": adapter_files(model), "params": m.get("params"), "datasets": _datasets(ws, model),
                  "review": {"skipped_reason": m.get("review_skipped_reason")}},
        "baseline": sides.info.to_dict(),
        "suite": {"path": suite.path, "sha256": suite.sha256, "checks": describe(suite.config)},
        "policy": {"path": policy.path, "sha256": policy.sha256, "values": policy.config.model_dump(mode="json")},
        "gate": decision.to_dict() | {"forced": None},
        "checks": [r.to_dict() for r in results],
        "runtime": runtime,
    }


def _datasets(ws: Any, model: Any) -> dict[str, Any]:
    out = {}
    for vid in model.entry.parents:
        version = ws.datasets.get(vid)
        review = version.manifest.get("review") or {}
        out[vid] = {"kind": version.kind, "manifest_sha256": version.entry.manifest_sha256,
                    "responses_sha256": review.get("responses_sha256")}
    return out
