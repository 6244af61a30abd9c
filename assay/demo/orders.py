"""The demo's task: turn a short order note into one line of JSON with fixed keys.

    note:   "Hi team, we need 12 green lamps delivered in Lima before Tuesday. Thanks!"
    answer: {"quantity": 12, "item": "lamp", "colour": "green", "city": "Lima", "day": "Tuesday"}

Chosen because a 135M instruction model does not follow the format before training (it writes
multi-line JSON, keeps the plural, mixes the colour into the item, drops keys) and learns it within
a few CPU minutes, so the gain is real and measurable with exact match and token F1.

The raw file carries the faults curation exists for: exact and near copies, personal data in notes,
junk answers, a few wrong answers (caught by the simulated reviewers, which read the note), rows
copied from the held-out set, and malformed lines. Everything is generated here from a seed.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from assay.store.atomic import write_bytes_atomic

# The instruction is short and comes after the note, so rows share no long word sequence just because
# they share it (decontamination compares 13-word windows; a long shared instruction would match them all).
INSTRUCTION = "JSON keys: quantity, item, colour, city, day."
ITEMS = [("mug", "mugs"), ("lamp", "lamps"), ("notebook", "notebooks"), ("kettle", "kettles"), ("chair", "chairs"),
         ("towel", "towels"), ("backpack", "backpacks"), ("umbrella", "umbrellas"), ("candle", "candles"),
         ("blanket", "blankets"), ("bottle", "bottles"), ("pillow", "pillows"), ("scarf", "scarves"), ("box", "boxes")]
COLOURS = ["red", "blue", "green", "black", "white", "yellow", "grey", "orange", "purple", "brown"]
CITIES = ["Oslo", "Lima", "Cairo", "Porto", "Quito", "Hanoi", "Perth", "Accra", "Dakar", "Riga", "Turin", "Osaka",
          "Bergen", "Leeds", "Graz", "Split"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
# Every template puts several slots in its last words, so two rows share a 13-word window only when
# they are (nearly) the same order.
NOTES = [
    "Please can you send {q} {c} {items} to {city} by {day}.",
    "Hi team, we need {q} {c} {items} delivered in {city} before {day}.",
    "Order for the {city} team: {q} x {c} {items}, ship them by {day}.",
    "By {day}, could our {city} office get {q} {c} {items}?",
    "{city} store: out of {c} {items}, please restock {q} by {day}.",
    "Reminder that the {city} warehouse needs {q} {c} {items} by {day}.",
    "For the {city} branch we would like {q} {c} {items} on {day}.",
]
_COLOURED_ITEMS = re.compile(r"\b(?P<c>" + "|".join(COLOURS) + r") (?P<items>\w+)", re.IGNORECASE)


def prompt(note: str) -> str:
    return f"Order note: {note}\n{INSTRUCTION}"


def answer(q: int, item: str, colour: str, city: str, day: str) -> str:
    return json.dumps({"quantity": q, "item": item, "colour": colour, "city": city, "day": day})


def make_row(rng: random.Random) -> dict[str, str]:
    (item, items), colour = rng.choice(ITEMS), rng.choice(COLOURS)
    q, city, day = rng.randint(2, 40), rng.choice(CITIES), rng.choice(DAYS)
    note = rng.choice(NOTES).format(q=q, c=colour, items=items, city=city, day=day)
    return {"instruction": prompt(note), "output": answer(q, item, colour, city, day)}


def truth(text: str) -> dict[str, Any] | None:
    """What the note in a prompt asks for, read the way a careful reviewer reads it (None: not a note)."""
    note = re.split(r"(?i)order note:", text, maxsplit=1)[-1].split(INSTRUCTION, 1)[0]
    quantity, fields = re.search(r"\b\d+\b", note), _COLOURED_ITEMS.search(note)
    city = next((c for c in CITIES if re.search(rf"\b{c}\b", note)), None)
    day = next((d for d in DAYS if re.search(rf"\b{d}\b", note)), None)
    singular = {plural: one for one, plural in ITEMS}.get(fields["items"].lower()) if fields else None
    if not quantity or not singular or not city or not day:
        return None
    return {"quantity": int(quantity[0]), "item": singular, "colour": fields["c"].lower(), "city": city, "day": day}


def rows(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        row = make_row(rng)
        if row["instruction"] not in seen:
            seen.add(row["instruction"])
            out.append(row)
    return out


def faults(train: list[dict[str, str]], held_out: list[dict[str, str]], rng: random.Random) -> list[dict[str, str]]:
    """Rows with the problems curation and review exist for (each kind counted in the demo's output)."""
    copies = [dict(r) for r in rng.sample(train, 10)]
    near = [{**r, "instruction": _restyle(r["instruction"])} for r in rng.sample(train, 6)]
    pii = [{**r, "instruction": r["instruction"].replace("\n", f" Questions: call 415-555-01{i:02d} or write to buyer{i}@mailbox.org.\n", 1)}
           for i, r in enumerate(rng.sample(train, 6))]
    junk = [{"instruction": prompt("Send the usual."), "output": ""},
            {"instruction": prompt("asdf qwer zxcv"), "output": "As an AI language model, I cannot process orders."}]
    wrong = []
    for r in rows(8, seed=rng.randint(1000, 9999)):  # a wrong field that only reading the note reveals
        fixed = json.loads(r["output"])
        fixed["city"] = next(c for c in CITIES if c != fixed["city"])
        wrong.append({**r, "output": json.dumps(fixed)})
    leaked = [dict(r) for r in held_out[:4]]
    return copies + near + pii + junk + wrong + leaked


def left_for_people(record: dict[str, Any]) -> bool:
    """A stable ~8 % of the records (by their row id), which the simulated reviewers leave alone."""
    import hashlib

    return int(hashlib.sha256(str(record.get("external_id")).encode()).hexdigest()[:4], 16) % 12 == 0


def _restyle(instruction: str) -> str:
    """The same note typed differently (case and final punctuation): a near copy, not an exact one."""
    head, rest = instruction.split("Order note: ", 1)
    note, tail = rest.split("\n", 1)
    return f"{head}Order note: {note[0].lower()}{note[1:].rstrip('.!?')}!\n{tail}"


def write_data(folder: Path, *, train_rows: int = 110, held_out_rows: int = 40, seed: int = 0) -> tuple[Path, Path]:
    """`orders.jsonl` (the raw pool, faults and two malformed lines included) and `held_out.jsonl`."""
    rng = random.Random(seed + 1)
    pool = rows(train_rows + held_out_rows, seed)
    train, held_out = pool[:train_rows], pool[train_rows:]
    lines = [json.dumps(r) for r in train + faults(train, held_out, rng)]
    rng.shuffle(lines)
    lines.insert(17, '{"instruction": "Extract the order as JSON', )  # a truncated line
    lines.insert(60, '["not", "an", "object"]')
    folder.mkdir(parents=True, exist_ok=True)
    raw, test = folder / "orders.jsonl", folder / "held_out.jsonl"
    write_bytes_atomic(raw, ("\n".join(lines) + "\n").encode())
    write_bytes_atomic(test, "".join(json.dumps(r) + "\n" for r in held_out).encode())
    return raw, test


def judge(reviewer: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """A simulated reviewer: approve a correct answer, fix a wrong one, reject what is not an order.

    The second reviewer is stricter about personal data left in a prompt (redacted placeholders are
    fine), so the two disagree on a few rows, as people do. About one record in twelve is left for a
    person: the demo's curator login finds them pending in the review UI.
    """
    if left_for_people(record):
        return None
    fields = record.get("fields") or {}
    text, response = str(fields.get("prompt") or ""), str(fields.get("response") or "")
    expected = truth(text)
    if expected is None:
        return {"decision": "reject", "issues": ["off_topic"]}
    if reviewer.endswith("2") and re.search(r"\[(?:PHONE|EMAIL)\]", text):
        return {"decision": "reject", "issues": ["pii"]}
    try:
        given = json.loads(response)
    except ValueError:
        given = None
    if given == expected:
        return {"decision": "approve", "quality": 5}
    return {"decision": "edit", "corrected_response": json.dumps(expected), "quality": 3, "issues": ["factual_error"]}
