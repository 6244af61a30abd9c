"""Review fixtures for the label tests; the session's real Argilla server (`argilla_server`, `review_workspace`) is in tests/conftest.py."""

from __future__ import annotations

import pytest

# -- review (push/pull) fixtures: a workspace whose embedded server is the session's server -------------------


def _review_rows(n: int, shape: str) -> list[dict]:
    rows = []
    for i in range(n):
        row = {"id": f"{shape[0]}{i:03d}", "source": "review.jsonl", "source_line": i + 1,
               "split": "val" if i % 5 == 4 else "train", "dup_cluster": f"c{i}",
               "q_chars": 40 + 7 * i, "q_words": 8 + i, "q_alpha_ratio": 0.6 + i / 100,
               "pii_email": int(i == 2), "pii_any": i == 2}
        if shape == "chat":
            row["messages"] = [{"role": "user", "content": f"chat question {i}"}, {"role": "assistant", "content": f"chat answer {i}"}]
        elif shape == "text":
            row["text"] = f"plain domain text number {i} about sourdough bread"
        else:
            row |= {"prompt": f"review prompt {i}: what is {i} times three?", "response": f"It is {3 * i}."}
        rows.append(row)
    return rows


@pytest.fixture
def write_review_version():
    """Write a small curated version (shape prompt | chat | text) into a workspace; returns its id."""
    import polars as pl

    def write(ws, n: int = 12, shape: str = "prompt", tag: str = "") -> str:
        frame = pl.DataFrame(_review_rows(n, shape))
        config = {"quality": {"min_chars": 40, "min_words": 5, "min_alpha_word_ratio": 0.4}, "tag": tag}
        return ws.datasets.write(frame, kind="curated", config=config).version.id

    return write
