"""`assay eval run | show | verify | checks | policy | public-key`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from assay.cli.common import (
    ConfigOpt,
    DatasetArg,
    JsonOpt,
    WorkspaceOpt,
    emit_json,
    err,
    escape,
    handle_errors,
    open_workspace,
    out,
    settings,
)

app = typer.Typer(help="Evaluate model versions against their baseline, gate them, and check signed reports.", no_args_is_help=True)

RUN_EXAMPLE = """Examples:

  assay eval run mv-1a2b3c4d5e6f

  assay eval run train-lora --baseline promoted --suite eval/suite.toml --policy eval/policy.toml --json

Exit codes: 0 the gate passed, 1 it failed (the reasons are printed), 2 bad input.
"""


@app.command("run", epilog=RUN_EXAMPLE)
@handle_errors
def run(
    model: Annotated[str, typer.Argument(help="Model version id, unique prefix, or alias.")],
    baseline: Annotated[str | None, typer.Option("--baseline", help="base, promoted, auto or a model version id (default: eval.baseline = auto: the promoted model if any, else the base).", show_default=False)] = None,
    suite: Annotated[Path | None, typer.Option("--suite", help="Suite file (default: eval.suite, else every check on assay's probe sets).", show_default=False)] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Gate policy file (default: eval.policy, else the documented defaults).", show_default=False)] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Tag the report with this name.")] = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a model version and its baseline with the suite, apply the gate policy, and write a signed report
    (JSON + a self-contained HTML page). Exit 1 when the gate fails."""
    from assay.evaluate.run import evaluate_model

    ws = open_workspace(workspace)
    cfg = settings(ws, config)
    say = None if as_json else (lambda message: err.print(f"[dim]{escape(message)}[/]"))
    outcome = evaluate_model(ws, model, baseline=baseline, suite=suite, policy=policy, config=cfg, name=name, progress=say)
    if as_json:
        emit_json({"ok": outcome.decision.passed, **outcome.to_dict()})
    else:
        _render(outcome.to_dict())
    if not outcome.decision.passed:
        raise typer.Exit(1)


def _render(result: dict[str, Any]) -> None:
    from rich.table import Table

    gate = result["gate"]
    verdict = "[bold green]PASS[/]" if gate["passed"] else "[bold red]FAIL[/]"
    out.print(f"{verdict}  {result['model']} vs {escape(result['baseline']['label'])}")
    for reason in gate["reasons"]:
        out.print(f"  - {escape(reason)}")
    table = Table(title="checks")
    for col in ("check", "status", "metric", "candidate", "baseline", "delta", "95% CI", "n"):
        table.add_column(col, justify="left" if col in ("check", "status", "metric") else "right")
    for check in result["checks"]:
        metrics = check["metrics"] or {"-": {}}
        for i, (name, m) in enumerate(metrics.items()):
            table.add_row(check["name"] if i == 0 else "", check["status"] if i == 0 else "", name, _num(m.get("candidate")),
                          _num(m.get("baseline")), _num(m.get("delta")), _ci(m), str(m.get("n", "")))
    out.print(table)
    out.print(f"report {result['report']}: {escape(Path(result['path']) / 'report.html')}")


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _ci(m: dict[str, Any]) -> str:
    if m.get("ci_low") is None:
        return "-"
    return f"[{m['ci_low']:.4g}, {m['ci_high']:.4g}]"


@app.command("show", epilog="Example: assay eval show rp-1a2b3c4d5e6f --json")
@handle_errors
def show(
    report: Annotated[str, typer.Argument(help="Report id, unique prefix, or tag.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a report: verdict, reasons, every check's metrics; the path of its HTML page."""
    from assay.evaluate.attest import read

    version, body = read(open_workspace(workspace), report)
    result = {"report": version.id, "model": body["model"]["id"], "baseline": body["baseline"], "gate": body["gate"],
              "checks": body["checks"], "path": str(version.path)}
    if as_json:
        emit_json({"ok": True, **result})
    else:
        _render(result)


@app.command("verify", epilog="Example: assay eval verify rp-1a2b3c4d5e6f --key signing.pub.pem")
@handle_errors
def verify(
    report: Annotated[str, typer.Argument(help="Report id, unique prefix, or tag.")],
    key: Annotated[Path | None, typer.Option("--key", help="Public key (PEM) to verify with (default: this workspace's).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a report offline: its signature, that the signed report is the stored one, and that the model's
    files still match what was judged. Exit 1 on any mismatch, each named."""
    from assay.evaluate.attest import verify as verify_api

    ws = open_workspace(workspace)
    problems = verify_api(ws, report, public_pem=key.read_text() if key else None)
    if as_json:
        emit_json({"ok": not problems, "report": ws.reports.get(report).id, "problems": problems})
    elif problems:
        for problem in problems:
            out.print(f"[red]problem:[/] {escape(problem)}")
    else:
        out.print(f"report {ws.reports.get(report).id}: signature, report and model files verified")
    if problems:
        raise typer.Exit(1)


@app.command("checks", epilog="Example: assay eval checks --json")
@handle_errors
def checks(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List the registered checks with their version and direction."""
    from assay.evaluate.checks import REGISTRY

    rows = [{"name": s.name, "version": s.version, "direction": s.direction, "description": s.doc} for s in REGISTRY.values()]
    if as_json:
        emit_json({"ok": True, "checks": rows})
        return
    for r in rows:
        out.print(f"[bold]{r['name']}[/] v{r['version']} ({r['direction']}): {escape(r['description'])}")


@app.command("policy", epilog="Example: assay eval policy > policy.toml")
@handle_errors
def policy(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Print the default gate policy: every threshold, its default and what it reads."""
    from assay.evaluate.policy import PolicyConfig, policy_toml

    if as_json:
        emit_json({"ok": True, "policy": PolicyConfig().model_dump(mode="json")})
    else:
        typer.echo(policy_toml(), nl=False)


@app.command("public-key", epilog="Example: assay eval public-key > signing.pub.pem")
@handle_errors
def public_key(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Print the workspace's public key (PEM), so others can verify its reports with `assay eval verify --key`."""
    from assay.evaluate.attest import public_key as public_key_api
    from assay.evaluate.signing_keys import key_id, load_public_key

    pem = public_key_api(open_workspace(workspace))
    if as_json:
        emit_json({"ok": True, "public_key": pem, "keyid": key_id(load_public_key(pem))})
    else:
        typer.echo(pem, nl=False)


WATCH_EXAMPLE = """Examples:

  assay eval watch production --data data/fresh-2026-12.jsonl

  assay eval watch mv-1a2b3c4d5e6f --data ds-1a2b3c4d5e6f --batch batch.toml --json

Exit codes: 0 within the policy's watch threshold, 1 crossed (the reason is printed), 2 bad input.
"""


@app.command("watch", epilog=WATCH_EXAMPLE)
@handle_errors
def watch(
    model: Annotated[str, typer.Argument(help="Model version id, unique prefix, or alias (e.g. production).")],
    data: Annotated[str, typer.Option("--data", help="Fresh data: files, a folder or glob (curated first), or a dataset version.")],
    batch: Annotated[Path | None, typer.Option("--batch", help="Curate and score with this batch file's settings (default: the workspace's).")] = None,
    suite: Annotated[Path | None, typer.Option("--suite", help="Suite whose task settings are used (default: eval.suite).", show_default=False)] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy with the primary metric and the watch threshold (default: eval.policy).", show_default=False)] = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a model on fresh data with the suite's task check and compare with its promotion report; the result
    joins the model's monitoring history (`assay models show`). Exit 1 when the policy's watch threshold is crossed."""
    from assay.evaluate.watch import watch as watch_api

    ws = open_workspace(workspace)
    if batch is not None:
        from assay.batch import load_batch

        cfg = load_batch(ws, batch).config
    else:
        cfg = settings(ws, config)
    say = None if as_json else (lambda message: err.print(f"[dim]{escape(message)}[/]"))
    result = watch_api(ws, model, data, config=cfg, suite=suite, policy=policy, progress=say)
    if as_json:
        emit_json({"ok": not result.crossed, **result.to_dict()})
    else:
        verdict = "[bold red]CROSSED[/]" if result.crossed else "[green]ok[/]"
        out.print(f"{verdict} {result.model} on {result.data} ({result.n} rows): {escape(result.reason)}")
    if result.crossed:
        raise typer.Exit(1)


human_app = typer.Typer(help="Blind side-by-side human evaluation in Argilla: push answers, follow progress, pull a signed report.",
                        no_args_is_help=True)
app.add_typer(human_app, name="human")

HUMAN_PUSH_EXAMPLE = """Examples:

  assay eval human push mv-1a2b3c4d5e6f --sample 50

  assay eval human push production --baseline base --prompts data/prompts.jsonl --dataset compare-oct --json
"""


@human_app.command("push", epilog=HUMAN_PUSH_EXAMPLE)
@handle_errors
def human_push(
    model: Annotated[str, typer.Argument(help="Model version id, unique prefix, or alias.")],
    baseline: Annotated[str | None, typer.Option("--baseline", help="base, promoted, auto or a model version id (default: eval.baseline).", show_default=False)] = None,
    sample: Annotated[int | None, typer.Option("--sample", help="Prompts to compare (default: eval.human.sample).", show_default=False)] = None,
    prompts: Annotated[str | None, typer.Option("--prompts", help="A file or dataset version with prompt/response rows (default: the model's test split).", show_default=False)] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Argilla dataset name (default: compare-<session>).", show_default=False)] = None,
    min_submitted: Annotated[int | None, typer.Option("--min-submitted", help="Raters per record (default: eval.human.min_submitted).", show_default=False)] = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate the candidate's and the baseline's answers and push them to Argilla as A and B in random order per
    record; which side is which stays in the workspace."""
    from assay.evaluate.human.push import push_comparison

    ws = open_workspace(workspace)
    cfg = settings(ws, config, **{"eval.human.min_submitted": min_submitted})
    say = None if as_json else (lambda message: err.print(f"[dim]{escape(message)}[/]"))
    pushed = push_comparison(ws, model, baseline=baseline, sample=sample, prompts=prompts, dataset=dataset, config=cfg, progress=say)
    if as_json:
        emit_json({"ok": True, **pushed.to_dict()})
        return
    out.print(f"pushed {pushed.records:,} blind comparisons of {pushed.model} vs {escape(pushed.baseline['id'] or 'the base model')} "
              f"to Argilla dataset [bold]{escape(pushed.dataset)}[/] ({pushed.min_submitted} raters per record)")
    out.print(f"raters: {escape(pushed.url)}\nthen: assay eval human progress {escape(pushed.dataset)}   and   assay eval human pull {escape(pushed.dataset)}")


@human_app.command("progress", epilog="Example: assay eval human progress compare-1a2b3c4d5e6f --json")
@handle_errors
def human_progress(
    name: DatasetArg,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Votes per rater, completed records, and the win rate so far."""
    from assay.evaluate.human.pull import progress_comparison

    ws = open_workspace(workspace)
    p = progress_comparison(ws, name, config=settings(ws, config))
    if as_json:
        emit_json({"ok": True, **p})
        return
    out.print(f"[bold]{escape(name)}[/] ({p['model']}): {p['completed']:,} of {p['records']:,} records complete "
              f"({p['min_submitted']} raters each); votes: {escape(', '.join(f'{r}: {n}' for r, n in p['votes'].items()) or 'none')}")
    if p["summary"]:
        _human_summary(p["summary"])


def _human_summary(s: dict[str, Any]) -> None:
    win = s["win_rate"]
    out.print(f"win rate (ties as half) {win['estimate']:.1%} [{win['low']:.1%}, {win['high']:.1%}] over {win['n']} votes; "
              + ", ".join(f"{k} {v['estimate']:.1%}" for k, v in s["rates"].items()))
    bias = s["position_bias"]["chose_a"]
    if bias["estimate"] is not None:
        out.print(f"answer A chosen {bias['estimate']:.1%} [{bias['low']:.1%}, {bias['high']:.1%}] of decided votes (0.5: no position bias)")


@human_app.command("pull", epilog="Example: assay eval human pull compare-1a2b3c4d5e6f --policy eval/policy.toml --json")
@handle_errors
def human_pull(
    name: DatasetArg,
    policy: Annotated[Path | None, typer.Option("--policy", help="Gate policy (default: eval.policy); its [human] rule applies.", show_default=False)] = None,
    report_name: Annotated[str | None, typer.Option("--name", "-n", help="Tag the new report with this name.")] = None,
    config: ConfigOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn the raters' votes into win / tie / loss rates with intervals, agreement and position bias, as a new signed
    report of the model that refers to its automatic report. Exit 1 when the gate (with its human rule) fails."""
    from assay.evaluate.human.pull import pull_comparison

    ws = open_workspace(workspace)
    outcome = pull_comparison(ws, name, policy=policy, config=settings(ws, config), name=report_name)
    if as_json:
        emit_json({"ok": outcome.decision.passed, **outcome.to_dict()})
    else:
        verdict = "[bold green]PASS[/]" if outcome.decision.passed else "[bold red]FAIL[/]"
        out.print(f"{verdict} {outcome.model}: report {outcome.report_id} ({escape(outcome.path / 'report.html')})")
        _human_summary(outcome.human)
        for reason in outcome.decision.reasons:
            out.print(f"  - {escape(reason)}")
    if not outcome.decision.passed:
        raise typer.Exit(1)
