"""Task metrics against their reference implementations, and the `evaluate` modules against the functions."""

from __future__ import annotations

import doctest
import json
import socket

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from assay.errors import ConfigError, InputError
from assay.evaluate.metrics import (
    MODULES,
    REGISTRY,
    ROUGE_TYPES,
    compare,
    corpus_bleu_from_stats,
    load_module,
    match,
    module_path,
    overlap,
    registry,
    score,
    score_many,
)
from assay.evaluate.metrics.match import exact_match_score, f1_score, normalize_answer
from assay.evaluate.stats import paired_bootstrap_loop

CASES = [
    {"prediction": "The cat sat on the mat.", "references": ["The cat is on the mat.", "There is a cat on the mat."]},
    {"prediction": "A quick brown fox jumps over the lazy dog", "references": ["The quick brown fox jumped over the lazy dog."]},
    {"prediction": "Paris", "references": ["Paris"]},
    {"prediction": "paris, france", "references": ["Paris", "the city of Paris"]},
    {"prediction": "", "references": ["An empty generation scores nothing."]},
    {"prediction": "running runs ran", "references": ["run running ran"]},
    {"prediction": "first sentence here.\nsecond sentence there.", "references": ["second sentence there.\nfirst one here."]},
    {"prediction": "It is a guide to action which ensures that the military always obeys the commands of the party.",
     "references": ["It is a guide to action that ensures that the military will forever heed Party commands."]},
    {"prediction": "12", "references": ["12 "]},
    {"prediction": "completely unrelated words", "references": ["nothing shared at all"]},
]  # fmt: skip


@pytest.fixture
def cases(tmp_path):
    """The cases above, read back from a small JSONL file as a task file would be."""
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in CASES), encoding="utf-8")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r["prediction"] for r in rows], [r["references"] for r in rows]


def first_refs(refs):
    return [r[0] for r in refs]


def test_docstring_examples_hold():
    for module in (match, overlap, registry):
        assert doctest.testmod(module).failed == 0, module.__name__


@pytest.mark.parametrize("use_stemmer", [False, True])
def test_rouge_equals_rouge_score(cases, use_stemmer):
    preds, refs = cases
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    single = [scorer.score(r[0], p) for p, r in zip(preds, refs, strict=True)]
    multi = [scorer.score_multi(r, p) for p, r in zip(preds, refs, strict=True)]
    got_single = overlap.rouge(preds, first_refs(refs), use_stemmer=use_stemmer)
    got_multi = overlap.rouge(preds, refs, use_stemmer=use_stemmer)
    for kind in ROUGE_TYPES:
        assert got_single[kind].per_example == [s[kind].fmeasure for s in single]
        assert got_multi[kind].per_example == [s[kind].fmeasure for s in multi]
        assert got_multi[kind].corpus == pytest.approx(np.mean([s[kind].fmeasure for s in multi]))
    assert got_multi["rougeLsum"].per_example != got_multi["rougeL"].per_example  # newline sentences count


def test_rouge_known_value_and_custom_tokenizer():
    assert score("rouge1", ["the cat sat"], ["the cat sat down"]).corpus == pytest.approx(6 / 7)
    same = (["Привет, мир"], ["Привет, мир"])
    assert score("rouge1", *same).corpus == 0.0  # rouge-score's tokenizer keeps only ASCII letters and digits
    assert score("rouge1", *same, tokenizer=str.split).corpus == 1.0
    with pytest.raises(ConfigError, match="rouge3"):
        overlap.rouge(["a"], ["a"], rouge_types=["rouge3"])


def test_bleu_equals_sacrebleu(cases):
    preds, refs = cases
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(max(map(len, refs)))]
    result = score("bleu", preds, refs)
    assert result.corpus == pytest.approx(sacrebleu.corpus_bleu(preds, streams).score, abs=1e-9)
    assert result.per_example == [sacrebleu.sentence_bleu(p, r).score for p, r in zip(preds, refs, strict=True)]
    assert result.corpus != pytest.approx(np.mean(result.per_example))  # corpus BLEU is not a mean
    single = score("bleu", preds, first_refs(refs), tokenize="char", lowercase=True)
    expected = sacrebleu.corpus_bleu(preds, [first_refs(refs)], tokenize="char", lowercase=True).score
    assert single.corpus == pytest.approx(expected, abs=1e-9)


def test_corpus_bleu_of_a_resample_equals_sacrebleu_on_those_items(cases):
    preds, refs = cases
    stats = score("bleu", preds, first_refs(refs)).stats
    picks = [[7, 7, 0, 1], [2, 3, 5, 5, 5], list(range(len(preds)))]
    got = corpus_bleu_from_stats(np.stack([stats[p[:4]] for p in picks]))
    for value, p in zip(got, picks, strict=True):
        expected = sacrebleu.corpus_bleu([preds[i] for i in p[:4]], [[refs[i][0] for i in p[:4]]]).score
        assert value == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("prediction", "reference", "normalised", "em", "f1"),
    [
        ("The Cat!", "cat", "cat", 1.0, 1.0),
        ("an apple a day", "Apple day.", "apple day", 1.0, 1.0),
        ("the cat sat", "a cat sat down", "cat sat", 0.0, 0.8),
        ("cat cat dog", "cat dog dog", "cat cat dog", 0.0, 2 / 3),
        ("theatre", "the atre", "theatre", 0.0, 0.0),  # articles only as whole words
        ("", "", "", 1.0, 0.0),  # SQuAD v1.1: F1 is 0 when nothing is left (v2.0 would say 1)
    ],
)
def test_squad_definitions(prediction, reference, normalised, em, f1):
    assert normalize_answer(prediction) == normalised
    assert exact_match_score(prediction, reference) == em
    assert f1_score(prediction, reference) == pytest.approx(f1)


def test_squad_takes_the_best_reference_and_accuracy_does_not_normalise():
    assert score("token_f1", ["the cat sat"], [["dog", "a cat sat down", "cat"]]).per_example == [0.8]
    assert score("exact_match", ["Paris."], [["London", "paris"]]).per_example == [1.0]
    acc = score("accuracy", ["42", "42", "Paris"], [["42"], ["42 "], ["paris", "Paris"]])
    assert acc.per_example == [1.0, 0.0, 1.0]
    assert acc.corpus == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_metrics_give_per_example_and_corpus(cases, name):
    preds, refs = cases
    spec = REGISTRY[name]
    result = score(name, preds, refs)
    assert result.name == name and result.n == len(preds)
    assert all(0.0 <= v <= spec.scale + 1e-9 for v in result.per_example)  # sacrebleu can give 100 + 4e-14
    assert spec.higher_is_better and spec.version >= 1 and spec.description
    if spec.corpus_is_mean:
        assert result.corpus == pytest.approx(np.mean(result.per_example))
    else:
        assert result.corpus == pytest.approx(float(spec.corpus_from_stats(result.stats)))


def test_score_many_equals_one_at_a_time(cases):
    preds, refs = cases
    many = score_many(["rouge2", "rougeL", "bleu", "token_f1"], preds, refs)
    for name, result in many.items():
        single = score(name, preds, refs)
        assert (result.corpus, result.per_example) == (single.corpus, single.per_example)


def test_bad_calls_are_refused():
    with pytest.raises(ConfigError, match="known metrics"):
        score("bleurt", ["a"], ["a"])
    with pytest.raises(InputError, match="2 predictions but 1 references"):
        score("exact_match", ["a", "b"], ["a"])
    with pytest.raises(InputError, match="no predictions"):
        score("bleu", [], [])
    with pytest.raises(InputError, match="no reference"):
        score("token_f1", ["a"], [[]])
    with pytest.raises(ConfigError, match="tokenizer"):
        score("bleu", ["a"], ["a"], tokenize="no-such-tokenizer")


def test_compare_pairs_examples(cases):
    preds, refs = cases
    base = score("token_f1", preds, refs)
    same = compare(base, score("token_f1", preds, refs))
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    better = compare(score("token_f1", first_refs(refs), refs), base)
    assert better.estimate == pytest.approx(1.0 - base.corpus)
    assert better.low > 0


def test_compare_bleu_recomputes_corpus_bleu_per_resample(cases):
    preds, refs = cases
    refs = first_refs(refs)
    cand, base = score("bleu", refs, refs), score("bleu", preds, refs)
    fast = compare(cand, base, n_resamples=30, seed=5)
    assert fast.estimate == pytest.approx(cand.corpus - base.corpus)

    def from_strings(c_items: np.ndarray, b_items: np.ndarray) -> float:
        pick = [int(i) for i in b_items]
        return sacrebleu.corpus_bleu([refs[i] for i in pick], [[refs[i] for i in pick]]).score - sacrebleu.corpus_bleu(
            [preds[i] for i in pick], [[refs[i] for i in pick]]
        ).score

    ids = np.arange(len(preds))
    slow = paired_bootstrap_loop(ids, ids, from_strings, n_resamples=30, seed=5)
    assert (fast.estimate, fast.low, fast.high) == pytest.approx((slow.estimate, slow.low, slow.high), abs=1e-9)


@pytest.fixture
def offline(monkeypatch):
    """No network at all while `evaluate` loads and runs the modules."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("name", MODULES)
def test_evaluate_load_by_path_works_offline_and_equals_the_functions(cases, offline, name):
    import evaluate

    preds, refs = cases
    by_folder = evaluate.load(str(module_path(name)), keep_in_memory=True)
    by_file = evaluate.load(str(module_path(name) / f"{name}.py"), keep_in_memory=True)
    assert type(by_file).__name__ == type(by_folder).__name__ == type(load_module(name)).__name__
    for references in (refs, first_refs(refs)):
        got = by_folder.compute(predictions=preds, references=references)
        plain = score_many(["bleu"] if name == "bleu" else ROUGE_TYPES if name == "rouge" else [name], preds, references)
        for metric, result in plain.items():
            assert got[metric] == result.corpus
            assert got["per_example"]["sentence_bleu" if metric == "bleu" else metric] == result.per_example
        assert by_file.compute(predictions=preds, references=references) == got


def test_evaluate_modules_pass_options_through(cases, offline):
    preds, refs = cases
    got = load_module("rouge").compute(predictions=preds, references=refs, rouge_types=["rouge1"], use_stemmer=True)
    assert set(got) == {"rouge1", "per_example"}
    assert got["rouge1"] == score("rouge1", preds, refs, use_stemmer=True).corpus
    bleu_char = load_module("bleu").compute(predictions=preds, references=refs, tokenize="char")
    assert bleu_char["bleu"] == score("bleu", preds, refs, tokenize="char").corpus
    with pytest.raises(ConfigError):
        module_path("sacrebleu")
