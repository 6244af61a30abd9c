import polars as pl

from assay.store.arrowtext import utf8_buffers


def _rows(series: pl.Series) -> list[bytes]:
    offsets, data = utf8_buffers(series)
    assert offsets[0] == 0 and len(offsets) == series.len() + 1 and offsets[-1] == len(data)
    return [bytes(data[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def test_utf8_buffers_hold_each_rows_bytes():
    texts = ["plain", "", None, "naïve 東京 🙂", "x" * 40]
    series = pl.Series(texts)
    assert _rows(series) == [(t or "").encode() for t in texts]
    assert _rows(series.slice(2, 3)) == [b"", "naïve 東京 🙂".encode(), b"x" * 40]  # a slice starts at its rows
    chunked = pl.concat([series.head(2), series.tail(3)], rechunk=False)
    assert chunked.n_chunks() == 2 and _rows(chunked) == _rows(series)
    assert _rows(pl.Series([], dtype=pl.String)) == [] and _rows(pl.Series([None, None], dtype=pl.String)) == [b"", b""]
