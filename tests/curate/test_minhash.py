"""MinHash LSH near-dedup: behaviour on tiny corpora, agreement with datasketch, properties."""

from __future__ import annotations

import random
import re
import unicodedata

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from assay.curate import minhash_signatures
from assay.curate.minhash import MinHashConfig, near_duplicates, near_duplicates_against
from assay.curate.minhash_lsh import components, jaccard, lsh_params, star_components
from assay.curate.minhash_signatures import permutations, shingles_of, signatures, signatures_of
from assay.curate.words import token_hashes
from assay.errors import ConfigError, InputError

VOCAB = [f"w{k}" for k in range(400)]


def doc(rng: random.Random, n_words: int = 60) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n_words))


def edit(rng: random.Random, text: str, n_edits: int) -> str:
    words = text.split()
    for _ in range(n_edits):
        words[rng.randrange(len(words))] = rng.choice(VOCAB)
    return " ".join(words)


def grams(text: str, n: int = 5) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[k : k + n]) for k in range(max(len(words) - n + 1, 1))}


def true_jaccard(a: str, b: str) -> float:
    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y)


@pytest.fixture
def corpus() -> list[str]:
    """Rows 0-3 distinct; 4 copies 0; 5 is 1 with one word changed; 6 is 2 with different case and punctuation."""
    rng = random.Random(0)
    base = [doc(rng) for _ in range(4)]
    return [*base, base[0], edit(rng, base[1], 1), base[2].upper().replace(" ", ", ")]


# ---- behaviour ---------------------------------------------------------------------------


def test_exact_and_near_duplicates_point_to_the_first_row(corpus):
    out = near_duplicates(corpus, MinHashConfig())
    assert out.columns == ["cluster", "keep", "duplicate_of", "similarity"]
    assert out["duplicate_of"].to_list() == [None, None, None, None, 0, 1, 2]
    assert out["cluster"].to_list() == [0, 1, 2, 3, 0, 1, 2]
    assert out["similarity"][4] == 1.0 and out["similarity"][6] == 1.0
    assert out["similarity"][5] == pytest.approx(true_jaccard(corpus[1], corpus[5]))


def test_distinct_documents_are_untouched():
    rng = random.Random(1)
    out = near_duplicates([doc(rng) for _ in range(50)], MinHashConfig())
    assert out["keep"].all()
    assert out["cluster"].to_list() == list(range(50))
    assert out["duplicate_of"].null_count() == 50 and out["similarity"].null_count() == 50


def test_duplicate_of_always_names_a_kept_row_of_the_same_cluster(corpus):
    for keep in ["first", "longest"]:
        out = near_duplicates(corpus * 3, MinHashConfig(keep=keep))
        dropped = out.filter(~pl.col("keep"))
        assert out["keep"].gather(dropped["duplicate_of"]).all()
        assert dropped["duplicate_of"].to_list() == dropped["cluster"].to_list()
        assert (
            out.filter(pl.col("keep"))["cluster"].to_list()
            == out.with_row_index().filter(pl.col("keep"))["index"].cast(pl.Int64).to_list()
        )


def test_keep_longest_and_keep_score():
    rng = random.Random(2)
    text = doc(rng, 80)
    longer = text + " and one more"
    rows = [text, longer, edit(rng, text, 1)]
    assert near_duplicates(rows, MinHashConfig(keep="longest"))["cluster"].to_list() == [1, 1, 1]
    out = near_duplicates(rows, MinHashConfig(keep="score"), score=np.array([0.1, 0.2, 0.9]))
    assert out["cluster"].to_list() == [2, 2, 2]
    assert out["keep"].to_list() == [False, False, True]
    tie = near_duplicates(rows, MinHashConfig(keep="score"), score=np.array([0.5, 0.5, np.nan]))
    assert tie["cluster"].to_list() == [1, 1, 1]  # score tie: the longer text wins; NaN scores lose


def test_verification_removes_a_false_candidate():
    rng = random.Random(3)
    a = doc(rng, 60)
    b = " ".join(a.split()[:30] + doc(rng, 30).split())  # shares half its text: J about 0.3
    assert true_jaccard(a, b) < 0.5
    loose = dict(bands=128, rows=1)  # a single equal min-hash value makes a candidate
    assert near_duplicates([a, b], MinHashConfig(verify=False, **loose))["keep"].to_list() == [True, False]
    assert near_duplicates([a, b], MinHashConfig(verify=True, **loose))["keep"].to_list() == [True, True]


def test_batch_against_existing():
    rng = random.Random(4)
    existing = [doc(rng) for _ in range(5)]
    fresh, other = doc(rng), doc(rng)
    new = [edit(rng, existing[3], 1), fresh, existing[0], fresh + " !", other, edit(rng, existing[3], 1)]
    out = near_duplicates_against(new, existing, MinHashConfig())
    assert out.columns == ["keep", "duplicate_of_existing", "duplicate_of", "similarity"]
    assert out["keep"].to_list() == [False, True, False, False, True, False]
    assert out["duplicate_of_existing"].to_list() == [3, None, 0, None, None, 3]
    assert out["duplicate_of"].to_list() == [None, None, None, 1, None, None]
    assert out["similarity"][2] == 1.0 and out["similarity"][3] == 1.0
    assert out["similarity"][0] == pytest.approx(true_jaccard(new[0], existing[3]))


def test_batch_against_existing_ignores_duplicates_inside_existing():
    rng = random.Random(5)
    text = doc(rng)
    out = near_duplicates_against([doc(rng)], [text, text], MinHashConfig())
    assert out["keep"].to_list() == [True]
    assert near_duplicates_against([], [text], MinHashConfig()).height == 0
    assert near_duplicates_against([text], [], MinHashConfig())["keep"].to_list() == [True]


def test_empty_input_and_single_document():
    out = near_duplicates([], MinHashConfig())
    assert out.height == 0 and out.columns == ["cluster", "keep", "duplicate_of", "similarity"]
    assert near_duplicates(["just one"], MinHashConfig()).row(0) == (0, True, None, None)


def test_documents_shorter_than_n_are_one_shingle():
    rows = ["A b, c!", "a b c", "a b d", "", "   ", "a"]
    out = near_duplicates(rows, MinHashConfig())
    assert out["duplicate_of"].to_list() == [None, 0, None, None, 3, None]


def test_char_shingles_see_inside_words():
    rng = random.Random(6)
    text = " ".join(rng.choice(["colour", "flavour", "harbour", "neighbour"]) for _ in range(40))
    american = text.replace("our", "or")
    word = near_duplicates([text, american], MinHashConfig(threshold=0.5))
    char = near_duplicates([text, american], MinHashConfig(shingle="char", ngram=3, threshold=0.5))
    assert word["keep"].to_list() == [True, True]
    assert char["keep"].to_list() == [True, False]


def reference_words(text: str) -> list[str]:
    """The documented word tokens: runs of letters, marks, numbers, `_`, lowercased char by char."""
    out, word = [], ""
    for char in text:
        if unicodedata.category(char)[0] in "LMN" or unicodedata.category(char) == "Pc":
            word += char.lower()
        elif word:
            out, word = [*out, word], ""
    return [*out, word] if word else out


@pytest.mark.parametrize(
    "text",
    [
        "Hello, WORLD! 48/2 = 24 it's_ok",
        "Ünïcode CAFÉ—naïve “quoted” x²½ ΟΔΟ é",
        "日本語のテキスト、です。emoji 😀 here\u00a0there\ttab\nline",
        "",
        "   ",
    ],
)
def test_word_tokens_follow_the_documented_definition(text):
    hashes, counts = token_hashes(pl.Series([text, "After"]), "word")
    expected = [token_hashes(pl.Series([w]), "word")[0][0] for w in reference_words(text)]
    assert counts.tolist() == [len(expected), 1]
    assert hashes[: counts[0]].tolist() == expected
    assert hashes[-1] == token_hashes(pl.Series(["after"]), "word")[0][0]


def test_inputs_are_checked():
    with pytest.raises(ValidationError, match="bands"):
        MinHashConfig(bands=4)
    with pytest.raises(ValidationError, match="exceeds"):
        MinHashConfig(bands=20, rows=10)
    with pytest.raises(ValidationError):
        MinHashConfig(shingle="token")
    with pytest.raises(ConfigError, match="score"):
        near_duplicates(["a"], MinHashConfig(keep="score"))
    with pytest.raises(ConfigError, match="ignores"):
        near_duplicates(["a"], MinHashConfig(), score=np.array([1.0]))
    with pytest.raises(InputError, match="index 1"):
        near_duplicates(pl.Series(["a", None]), MinHashConfig())


def test_same_input_same_result(corpus):
    cfg = MinHashConfig(keep="longest")
    assert near_duplicates(corpus, cfg).equals(near_duplicates(pl.Series(corpus), cfg))


# ---- agreement with datasketch -------------------------------------------------------------


def test_signatures_equal_datasketch_affine32():
    from datasketch import MinHash

    rng = np.random.default_rng(0)
    h32 = rng.integers(0, 2**32, 3000, dtype=np.uint32)
    offsets = np.array([0, 1, 40, 3000])  # the last document spans several scratch blocks
    sig = signatures(h32, offsets, permutations(64, 7))
    for d in range(3):
        m = MinHash(num_perm=64, seed=7, hashfunc=lambda x: x)
        m.update_batch(h32[offsets[d] : offsets[d + 1]].tolist())
        assert np.array_equal(m.hashvalues, sig[:, d])


def test_lsh_params_match_datasketch_without_the_recall_floor():
    from datasketch.lsh import _optimal_param

    for threshold in [0.3, 0.5, 0.8, 0.95]:
        for weights in [(0.5, 0.5), (0.1, 0.9)]:
            ours = lsh_params(threshold, 128, min_recall=0.0, fp_weight=weights[0], fn_weight=weights[1])
            assert ours == _optimal_param(threshold, 128, *weights)
    bands, rows = lsh_params(0.8, 128)
    assert 1 - (1 - 0.8**rows) ** bands >= 0.995
    assert MinHashConfig(verify=False).lsh() == _optimal_param(0.8, 128, 0.5, 0.5)


def test_chunking_does_not_change_signatures_or_shingles(monkeypatch):
    rng = random.Random(7)
    texts = pl.Series([doc(rng, rng.randint(1, 30)) for _ in range(40)] + ["", "Ünïcode İstanbul"])
    whole = signatures_of(texts, kind="word", n=5, num_perm=32, seed=1)
    every = shingles_of(texts, np.arange(len(texts)), kind="word", n=5)
    monkeypatch.setattr(minhash_signatures, "_CHUNK_DOCS", 3)
    monkeypatch.setattr(minhash_signatures, "_POLY_BLOCK", 7)
    assert np.array_equal(whole, signatures_of(texts, kind="word", n=5, num_perm=32, seed=1))
    some = shingles_of(texts, np.array([41, 3, 3, 0]), kind="word", n=5)
    for row in [0, 3, 41]:
        (mine, _), (ref, _) = some.segments(np.array([row])), every.segments(np.array([row]))
        assert np.array_equal(some.hashes[mine], every.hashes[ref])


# ---- properties ----------------------------------------------------------------------------


@st.composite
def corpora(draw) -> list[str]:
    """A few random documents and mutated copies (0-6 substituted words) in random order."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    base = [doc(rng, rng.randint(20, 60)) for _ in range(draw(st.integers(1, 8)))]
    copies = [edit(rng, rng.choice(base), rng.randint(0, 6)) for _ in range(draw(st.integers(0, 8)))]
    rows = base + copies
    rng.shuffle(rows)
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpora())
def test_recall_and_precision_against_brute_force(rows):
    cfg = MinHashConfig(threshold=0.7)
    out = near_duplicates(rows, cfg)
    cluster = out["cluster"].to_list()
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            if true_jaccard(rows[a], rows[b]) >= 0.85:  # threshold + margin: misses have P < 1e-4
                assert cluster[a] == cluster[b]
    for row in range(len(rows)):  # every merged row has a verified neighbour in its cluster
        mates = [k for k in range(len(rows)) if k != row and cluster[k] == cluster[row]]
        assert not mates or max(true_jaccard(rows[row], rows[k]) for k in mates) >= cfg.threshold


@settings(max_examples=30, deadline=None)
@given(corpora(), st.randoms(use_true_random=False))
def test_keep_longest_does_not_depend_on_input_order(rows, rnd):
    order = list(range(len(rows)))
    rnd.shuffle(order)
    cfg = MinHashConfig(keep="longest", threshold=0.6)
    kept = near_duplicates(rows, cfg)["cluster"].to_list()
    kept_shuffled = near_duplicates([rows[k] for k in order], cfg)["cluster"].to_list()
    assert [rows[kept[k]] for k in order] == [rows[order[c]] for c in kept_shuffled]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)), max_size=40))
def test_components_match_a_graph_search(edges):
    i = np.array([a for a, _ in edges], np.int64)
    j = np.array([b for _, b in edges], np.int64)
    label = components(30, i, j)
    neighbours: dict[int, set[int]] = {k: set() for k in range(30)}
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    for start in range(30):
        seen, todo = {start}, [start]
        while todo:
            for nxt in neighbours[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        assert label[start] == min(seen)


@settings(max_examples=30, deadline=None)
@given(corpora())
def test_jaccard_matches_python_sets(rows):
    shingles = shingles_of(pl.Series(rows, dtype=pl.String), np.arange(len(rows)), kind="word", n=5)
    i, j = np.triu_indices(len(rows), 1)
    expected = [true_jaccard(rows[a], rows[b]) for a, b in zip(i, j, strict=True)]
    assert np.allclose(jaccard(shingles, i, j), expected)


def test_thread_count_does_not_change_results(monkeypatch, corpus):
    from assay.curate import minhash_lsh, threads

    rows = corpus * 20
    expected = near_duplicates(rows, MinHashConfig(keep="longest"))
    for n in [1, 3]:
        monkeypatch.setattr(threads, "cores", lambda n=n: n)
        monkeypatch.setattr(minhash_lsh, "cores", lambda n=n: n)
        monkeypatch.setattr(minhash_signatures, "_CHUNK_DOCS", 5)
        monkeypatch.setattr(minhash_lsh, "_MIN_KEYS", 1)
        monkeypatch.setattr(minhash_lsh, "_MIN_PAIRS", 1)
        assert near_duplicates(rows, MinHashConfig(keep="longest")).equals(expected)


def test_a_text_hash_collision_is_not_taken_for_a_copy():
    from assay.curate.minhash import DocKeys, _first_copy

    texts = pl.Series(["a", "b", "a", "c", "b"])
    keys = DocKeys(texts.hash(1).to_numpy(), texts.hash(2).to_numpy(), np.ones(5, np.int64), np.zeros((1, 5), np.uint64))
    assert _first_copy(keys).tolist() == [0, 1, 0, 3, 1]
    collided = DocKeys(np.zeros(5, np.uint64), keys.key2, keys.length, keys.bands)  # the first hash collides for all
    assert _first_copy(collided).tolist() == [0, 1, 0, 3, 1]


def test_keys_of_blocks_are_the_keys_of_the_whole():
    """The streaming engine computes keys a block at a time; they must equal the whole corpus' keys."""
    from assay.curate.minhash import DocKeys, doc_keys

    texts = pl.Series([f"doc {i} " + "word " * (i % 7) for i in range(50)])
    whole = doc_keys(texts, MinHashConfig())
    blocks = DocKeys.concat([doc_keys(texts.slice(s, 13), MinHashConfig()) for s in range(0, 50, 13)])
    for name in ("key", "key2", "length", "bands"):
        assert np.array_equal(getattr(whole, name), getattr(blocks, name))


def test_verifying_candidates_in_small_batches_changes_nothing(monkeypatch):
    """Candidates are verified a batch of pairs at a time (bounded memory); the batch size must not matter."""
    from assay.curate import minhash_texts

    rows = [f"the {w} cat sat on the mat near the {w} door today" for w in ["red", "blue", "red", "green"]] * 6
    rows += ["completely different words here and there", "the red cat sat on the mat near the red door"]
    expected = near_duplicates(rows, MinHashConfig(threshold=0.5, ngram=2))
    assert expected["keep"].sum() < len(rows) - 10  # many pairs to verify
    monkeypatch.setattr(minhash_texts, "VERIFY_BATCH", 3)
    assert near_duplicates(rows, MinHashConfig(threshold=0.5, ngram=2)).equals(expected)


def test_candidate_texts_held_in_a_file_give_the_same_result(monkeypatch, tmp_path):
    """Small candidate sets stay in memory; beyond IN_MEMORY_TEXT_BYTES they go to a file in the
    scratch folder (read back a batch at a time), with the same result and no file left."""
    from assay.curate import minhash_texts
    from assay.curate.minhash import doc_keys, near_duplicates_of_keys
    from assay.curate.minhash_texts import gather_texts

    rows = [f"the {w} cat sat on the mat near the {w} door today" for w in ["red", "blue", "red", "green"]] * 6
    rows += ["completely different words here and there", "the red cat sat on the mat near the red door"]
    texts, cfg = pl.Series(rows), MinHashConfig(threshold=0.5, ngram=2)
    expected = near_duplicates(rows, cfg)
    written = []
    real_write = minhash_texts._write_texts
    monkeypatch.setattr(minhash_texts, "_write_texts", lambda path, pieces: (written.append(path), real_write(path, pieces))[1])
    pieces = lambda sel: (texts.gather(sel[k : k + 2]) for k in range(0, len(sel), 2))  # noqa: E731  several pieces
    assert near_duplicates_of_keys(doc_keys(texts, cfg), gather_texts(texts), cfg, scratch=tmp_path).equals(expected)
    assert written == []  # small: held in memory
    monkeypatch.setattr(minhash_texts, "IN_MEMORY_TEXT_BYTES", 0)
    monkeypatch.setattr(minhash_texts, "VERIFY_BATCH", 3)
    assert near_duplicates_of_keys(doc_keys(texts, cfg), pieces, cfg, scratch=tmp_path).equals(expected)
    assert len(written) == 1 and not list(tmp_path.iterdir())  # went through a file, removed at the end


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=60), st.integers(1, 4))
def test_star_rounds_over_partitions_give_the_union_find_labels(edges, parts):
    i = np.array([a for a, b in edges if a != b], np.int64)
    j = np.array([b for a, b in edges if a != b], np.int64)
    assert star_components(40, i, j, parts=parts).tolist() == components(40, i, j).tolist()


def test_star_rounds_join_a_long_shuffled_chain() -> None:
    # A path is the slowest shape for star rounds; shuffled, its labels are far from its nodes.
    n, rng = 5_000, np.random.default_rng(3)
    order = rng.permutation(n)
    i, j = order[:-1], order[1:]
    label = star_components(n, i, j, parts=3)
    assert (label == order.min()).all()
    assert label.tolist() == components(n, i, j).tolist()


def test_keep_first_is_each_components_label() -> None:
    """near_duplicates_of_keys keeps a component's label for keep = "first": the sorted pick agrees."""
    from assay.curate.minhash import DocKeys, _kept_rows

    rng = np.random.default_rng(3)
    n = 2_000
    i, j = rng.integers(0, n, 1_500), rng.integers(0, n, 1_500)
    label = components(n, i, j)
    keys = DocKeys(rng.integers(0, 2**63, n).astype(np.uint64), np.zeros(n, np.uint64), rng.integers(1, 50, n), np.zeros((0, n), np.uint64))
    assert len(np.unique(label)) < n - 500  # many multi-row components
    np.testing.assert_array_equal(_kept_rows(label, keys, MinHashConfig(keep="first"), None), label)
    assert not np.array_equal(_kept_rows(label, keys, MinHashConfig(keep="longest"), None), label)


def test_candidate_text_file_reads_back_any_rows(tmp_path):
    from assay.curate.minhash_texts import _read_texts, _write_texts

    texts = ["", "plain", "naïve café 東京", "", "x" * 5000, "emoji 🙂 end", "last"]
    offsets = _write_texts(tmp_path / "t.txt", iter([pl.Series(texts[:3]), pl.Series(texts[3:3]), pl.Series(texts[3:])]))
    assert offsets.tolist()[-1] == (tmp_path / "t.txt").stat().st_size and len(offsets) == len(texts) + 1
    for positions in ([0, 1, 2, 3, 4, 5, 6], [6, 2, 0], [1, 2, 5], [4], []):
        got = _read_texts(tmp_path / "t.txt", offsets, np.array(positions, np.int64))
        assert got.dtype == pl.String and got.to_list() == [texts[p] for p in positions]


def test_candidate_text_file_reads_through_short_reads(tmp_path, monkeypatch):
    """A read may return fewer bytes than asked (one read is capped near 2 GiB): the reader goes on."""
    import os

    from assay.curate import minhash_texts

    texts = ["alpha beta", "gamma", "delta epsilon zeta", "eta"]
    offsets = minhash_texts._write_texts(tmp_path / "t.txt", iter([pl.Series(texts)]))
    real = os.pread
    monkeypatch.setattr(minhash_texts.os, "pread", lambda fd, n, off: real(fd, min(n, 3), off))
    assert minhash_texts._read_texts(tmp_path / "t.txt", offsets, np.arange(4)).to_list() == texts
    monkeypatch.setattr(minhash_texts.os, "pread", lambda fd, n, off: b"")
    with pytest.raises(OSError, match="bytes short"):
        minhash_texts._read_texts(tmp_path / "t.txt", offsets, np.arange(4))
