"""`assay eval watch`: does a model still do its task on fresh data? Models drift; retrain when they do.

    result = watch(ws, "production", "data/fresh-2026-12.jsonl")
    result.crossed, result.reason

The fresh data is curated with the workspace's (or a batch's) settings, unless it already is a dataset
version; the suite's task check runs on all of its prompt/answer rows with the model alone (no
baseline is needed); the primary metric is compared with its value in the model's promotion report
(the report it was promoted on, else its latest report). The result is appended to the model's
monitoring history (`<workspace>/derived/monitoring/<model>.jsonl`, shown by `assay models show`),
and the policy's `watch` threshold decides whether it is crossed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, InputError, NotFoundError
from assay.store.atomic import write_bytes_atomic
from assay.store.manifest import now_iso


@dataclass
class WatchResult:
    model: str
    data: str
    metric: str
    value: float
    reference: float | None
    reference_report: str | None
    drop: float | None
    threshold: float
    crossed: bool
    reason: str
    n: int
    at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def history_path(ws: Any, model_id: str) -> Path:
    return ws.layout.derived / "monitoring" / f"{model_id}.jsonl"


def history(ws: Any, model_id: str) -> list[dict[str, Any]]:
    path = history_path(ws, model_id)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def watch(ws: Any, model_ref: str, data: str, *, config: Any = None, suite: Path | None = None, policy: Path | None = None,
          progress: Any = None) -> WatchResult:
    """Score the model on fresh data, compare with its promotion report, record, decide (see module doc)."""
    from assay.evaluate.policy import load_policy
    from assay.evaluate.suite import TaskSettings, load_suite

    cfg = config or ws.config
    model = ws.models.get(model_ref)
    loaded_policy = load_policy(policy or (Path(cfg.eval.policy) if cfg.eval.policy else None))
    check, metric = loaded_policy.config.primary
    if check != "task":
        raise ConfigError(f"watch follows the task check, but the policy's primary metric is {check}.{metric}",
                          hint='set gate.primary = "task.<metric>" in the policy')
    task = load_suite(suite or (Path(cfg.eval.suite) if cfg.eval.suite else None)).config.checks.task or TaskSettings()
    version = _fresh_version(ws, data, cfg)
    value, n = _score(ws, model, version, task, metric, cfg, progress)
    reference, report_id = _reference(ws, model.id, metric)
    threshold = loaded_policy.config.watch.max_primary_drop
    drop = None if reference is None else reference - value
    crossed = drop is not None and drop > threshold
    reason = (f"{metric} on fresh data is {value:.4f}, {drop:+.4f} below {reference:.4f} in report {report_id} "
              f"(more than the allowed {threshold})" if crossed else
              f"{metric} on fresh data is {value:.4f}" + (f" ({-drop:+.4f} vs {reference:.4f} in report {report_id})" if drop is not None else
                                                          " (no report to compare with yet)"))
    result = WatchResult(model.id, version.id, metric, value, reference, report_id, drop, threshold, crossed, reason, n, now_iso())
    _append(ws, result)
    return result


def _fresh_version(ws: Any, data: str, cfg: Any) -> Any:
    try:
        return ws.datasets.get(data)
    except NotFoundError:
        pass
    if not Path(data).exists() and not any(ch in data for ch in "*?["):
        raise InputError(f"{data} is neither a dataset version nor a file", hint="pass a file, folder, glob or version id")
    from assay.curate.pipeline import curate

    return curate(ws, [data], cfg.curate).write.version


def _score(ws: Any, model: Any, version: Any, task: Any, metric: str, cfg: Any, progress: Any) -> tuple[float, int]:
    from assay.evaluate.checks.rows import items, prompt_text
    from assay.evaluate.extract import extract_answers
    from assay.evaluate.loading import open_sides
    from assay.evaluate.metrics import score
    from assay.evaluate.run import scoring_settings
    from assay.evaluate.scoring import GenerationSettings

    found = items(version.data().collect(), limit=task.max_examples)
    if not found:
        raise InputError(f"the fresh data ({version.id}) has no prompt/answer rows", hint="watch needs prompt/response or messages rows")
    sides = open_sides(ws, model, None, scoring_settings(cfg.eval))
    if progress:
        progress(f"watch: {len(found)} answers from {model.id}")
    generation = GenerationSettings(until=tuple(task.stop), max_new_tokens=task.max_new_tokens)
    with sides.candidate() as scorer:
        answers = scorer.generate([(prompt_text(sides.tokenizer, item), generation) for item in found])
    predicted = extract_answers(answers, task.extract).answers
    refs = extract_answers([item.reference for item in found], task.reference_extract).answers
    return score(metric, predicted, refs).corpus, len(found)


def _reference(ws: Any, model_id: str, metric: str) -> tuple[float | None, str | None]:
    """The primary metric's value in the report the model was promoted on (else its latest report)."""
    promoted = [e["report_id"] for e in ws.catalog.events() if e["version_id"] == model_id and e["action"] == "promote" and e["report_id"]]
    reports = promoted[-1:] or [e.id for e in ws.reports.for_model(model_id)][:1]
    if not reports:
        return None, None
    from assay.evaluate.attest import read

    _, body = read(ws, reports[0])
    task = next((c for c in body["checks"] if c["name"] == "task"), None)
    value = (task or {}).get("metrics", {}).get(metric, {}).get("candidate")
    return value, reports[0]


def _append(ws: Any, result: WatchResult) -> None:
    path = history_path(ws, result.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.is_file() else ""
    write_bytes_atomic(path, (old + json.dumps(result.to_dict(), sort_keys=True) + "\n").encode())
