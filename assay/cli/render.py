"""Rich renderings shared by commands (tables of steps and versions)."""

from __future__ import annotations

from rich.table import Table

from assay.cli.common import escape


def steps_table(counts: dict) -> Table:
    """Rows in and out per step, with removals by reason; quarantine first."""
    table = Table(title="curation", show_lines=False)
    columns = (("step", "left"), ("in", "right"), ("out", "right"), ("changed", "right"), ("removed (reason: rows)", "left"))
    for col, justify in columns:
        table.add_column(col, justify=justify)
    table.add_row("read", f"{counts.get('input_rows', 0):,}", f"{counts.get('read', 0):,}", "",
                  f"quarantined: {counts['quarantined']:,}" if counts.get("quarantined") else "")
    for s in counts.get("steps", []):
        removed = ", ".join(f"{escape(r)}: {n:,}" for r, n in s["removed"].items())
        table.add_row(s["step"], f"{s['in']:,}", f"{s['out']:,}", f"{s['changed']:,}" if s.get("changed") else "", removed)
    table.add_row("[bold]kept[/]", "", f"[bold]{counts.get('kept', 0):,}[/]", "", f"rejected: {counts.get('rejected', 0):,}")
    return table


def versions_table(entries: list) -> Table:
    table = Table(title="dataset versions")
    for col in ("id", "kind", "rows", "tags", "parents", "created"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for e in entries:
        table.add_row(e.id, e.kind, f"{e.rows:,}" if e.rows is not None else "", escape(", ".join(e.tags)),
                      ", ".join(e.parents), e.created_at[:19].replace("T", " "))
    return table
