import re
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import assay.curate.steps.quality.signals as Q
from assay.curate.steps import StepContext
from assay.curate.steps.base import REGISTRY
from assay.curate.steps.quality import CHECK_ORDER, QualityConfig, quality, word_signals
from assay.schema import MESSAGE_DTYPE

GSM8K = Path("/work/shared/data/gsm8k/train.jsonl")

PROSE = [
    "The old lighthouse stood at the edge of the harbour for more than a century. Every evening the keeper "
    "climbed the spiral stairs, trimmed the wick and wound the clockwork that turned the great lens.\n\n"
    "When the town council voted to automate the light, many people were sad to see him go. He had kept "
    "a logbook of every storm, every ship and every strange visitor, and the museum asked him to donate it.\n\n"
    "Today the tower is open to visitors in the summer months, and children can still see the brass "
    "handles that he polished each morning before breakfast.",
    "To repot a houseplant, choose a pot that is slightly larger than the old one and has a drainage hole. "
    "Water the plant a day before, so that the roots slide out easily. Loosen the root ball with your "
    "fingers, trim any roots that are brown or mushy, and set the plant at the same depth as before. "
    "Fill the gaps with fresh potting mix, press it down gently, and water until it drains from the bottom.",
]

# name -> (text, the reason it gets, the settings under which it passes)
JUNK = {
    "keyboard mash": (
        "asdkfjh qwpeoriu zxmcnvb lkjhgf poiuyt mnbvcx asdfgh qwerty zxcvbn lkjhg",
        "no_stop_words",
        {"min_stop_words": None},
    ),
    "one long token": (
        "asdkfjhqwpeoriuzxmcnvblkjhgfpoiuytmnbvcxasdfghqwertyzxcvbnlkjhg",
        "too_short",
        {"min_words": None, "max_mean_word_length": None, "min_stop_words": None},
    ),
    "repeated lines": (
        "Click here to subscribe!\n" * 10,
        "duplicate_lines",
        {"max_duplicate_line_fraction": None},
    ),
    "symbol soup": (
        "#### $$$ %%% &&& *** !!! ... @@@ ^^^ ~~~ +++ === <<< >>>",
        "high_symbol_ratio",
        {"max_symbol_word_ratio": None, "min_alpha_word_ratio": None, "min_stop_words": None},
    ),
    "symbols without hashes": (
        "$$$ %%% &&& *** !!! @@@ ^^^ ~~~ +++ === <<< >>> 42 the and",
        "low_alpha_ratio",
        {"min_alpha_word_ratio": None},
    ),
    "lorem repetition": (
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 12,
        "repeated_ngrams",
        {"top_ngram_max_fraction": None, "duplicate_ngram_max_fraction": None, "min_stop_words": None},
    ),
    "number dump": (
        " ".join(str(i % 10) for i in range(40)) + " the and",
        "low_mean_word_length",
        {"min_mean_word_length": None, "min_alpha_word_ratio": None},
    ),
    "base64 blob": (
        "data " + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123 " * 8 + "the and",
        "high_mean_word_length",
        {"max_mean_word_length": None, "max_duplicate_line_fraction": None},
    ),
    "repeated paragraph": (
        "Buy now.\nWe also repair bags.\nAsk in store.\nBring a receipt.\nPay by card.\n\n"
        "Our shop sells shoes and hats.\nOpen every day.\n\n"
        "Our shop sells shoes and hats.\nOpen every day.",
        "duplicate_paragraphs",
        {"max_duplicate_paragraph_fraction": None},
    ),
}


def _run(df: pl.DataFrame, cfg: QualityConfig | None = None) -> pl.DataFrame:
    cols = tuple(c for c in ("prompt", "response", "messages", "text") if c in df.columns)
    return quality(df.lazy(), cfg or QualityConfig(), StepContext(content_columns=cols)).collect()


def _texts(texts: list[str], cfg: QualityConfig | None = None) -> pl.DataFrame:
    return _run(pl.DataFrame({"text": texts}), cfg)


def _pairs(pairs: list[tuple[str | None, str | None]], cfg: QualityConfig | None = None) -> pl.DataFrame:
    return _run(pl.DataFrame(pairs, schema=["prompt", "response"], orient="row"), cfg)


def _chats(chats: list[list[tuple[str, str]]], cfg: QualityConfig | None = None) -> pl.DataFrame:
    rows = [[{"role": r, "content": c} for r, c in chat] for chat in chats]
    return _run(pl.Series("messages", rows, dtype=MESSAGE_DTYPE).to_frame(), cfg)


def test_registered_as_a_filter():
    assert REGISTRY["quality"].is_filter and REGISTRY["quality"].config is QualityConfig


def test_ordinary_prose_and_instructions_are_kept():
    assert _texts(PROSE)["_reason"].to_list() == [None, None]
    out = _pairs(
        [
            ("What is the capital of France?", "The capital of France is Paris."),
            (
                "Write a Python function that adds two numbers.",
                "```python\ndef add(a, b):\n    return a + b\n```",
            ),
            (
                "Summarise the text.\n\n" + PROSE[0],
                "A keeper ran the lighthouse for years; now it is a museum.",
            ),
        ]
    )
    assert out["_reason"].to_list() == [None, None, None]


@pytest.mark.parametrize("name", sorted(JUNK))
def test_junk_is_removed_with_its_reason(name):
    text, reason, _ = JUNK[name]
    out = _texts([text])
    assert out["_reason"][0] == reason, out["_detail"][0]


@pytest.mark.parametrize("name", sorted(JUNK))
def test_each_threshold_can_be_turned_off(name):
    text, _, off = JUNK[name]
    out = _texts([text], QualityConfig(**off))
    assert out["_reason"][0] is None, out["_detail"][0]


def test_length_bounds_and_detail_text():
    out = _texts(["a b c", "word " * 30], QualityConfig(max_words=20))
    assert out["_reason"].to_list() == ["too_short", "too_long"]
    assert "words=3 < min_words=5" in out["_detail"][0]
    assert "chars=5 < min_chars=10" in out["_detail"][0]
    assert out["_detail"][1].startswith("words=30 > max_words=20")
    assert _texts(["x" * 50], QualityConfig(max_chars=40, min_words=None))["_detail"][0].startswith(
        "chars=50 > max_chars=40"
    )


def test_first_failed_check_wins_and_detail_lists_all():
    out = _texts(["!!! ??? ### ... $$$ %%% ***"])  # 7 words: symbols, no letters, no stop words
    assert out["_reason"][0] == "high_symbol_ratio"
    parts = out["_detail"][0].split("; ")
    assert parts[0] == "symbol_ratio=0.286 > max_symbol_word_ratio=0.1"
    assert (
        "alpha_ratio=0.0 < min_alpha_word_ratio=0.4" in parts and "stop_words=0 < min_stop_words=2" in parts
    )
    assert CHECK_ORDER.index("high_symbol_ratio") < CHECK_ORDER.index("low_alpha_ratio")


def test_kept_rows_have_null_reason_and_detail():
    out = _texts(PROSE[:1])
    assert out["_reason"][0] is None and out["_detail"][0] is None


def test_signals_are_columns_and_rerun_replaces_them():
    out = _texts(PROSE)
    expected = {
        "q_chars",
        "q_words",
        "q_mean_word_len",
        "q_alpha_ratio",
        "q_symbol_ratio",
        "q_stop_words",
        "q_dup_line_frac",
        "q_dup_para_frac",
        "q_top_2gram_frac",
        "q_top_3gram_frac",
        "q_top_4gram_frac",
        "q_dup_5gram_frac",
        "q_dup_10gram_frac",
    }
    assert expected <= set(out.columns)
    assert out["q_words"][1] == len(PROSE[1].split()) and out["q_chars"][1] == len(PROSE[1])
    again = _run(out.drop("_reason", "_detail"), QualityConfig(duplicate_ngram_max_fraction={6: 0.5}))
    assert "q_dup_5gram_frac" not in again.columns and "q_dup_6gram_frac" in again.columns
    assert again.columns.count("q_words") == 1


def test_ngram_checks_skip_short_rows_but_catch_long_repetition():
    qa = ("What is the capital of France?", "The capital of France is Paris.")
    assert _pairs([qa])["_reason"][0] is None
    assert _pairs([qa], QualityConfig(ngram_min_words=0))["_reason"][0] == "repeated_ngrams"
    loop = "I think the answer is four. " * 12
    out = _pairs([("How many legs does a dog have?", loop)])
    assert out["_reason"][0] == "repeated_ngrams"
    assert (
        "dup_5gram_frac=" in out["_detail"][0] and "duplicate_ngram_max_fraction[5]=0.6" in out["_detail"][0]
    )


def test_empty_response():
    out = _pairs(
        [("Explain photosynthesis in plants.", "  \n "), ("Explain photosynthesis in plants.", None)]
    )
    assert out["_reason"].to_list() == ["empty_response", "empty_response"]
    assert (
        _pairs([("Explain photosynthesis in plants.", "")], QualityConfig(reject_empty_response=False))[
            "_reason"
        ][0]
        == "too_short"
    )


def test_prompt_equals_response():
    out = _pairs(
        [
            ("Repeat after me: the cat sat on the mat", "repeat after me:  The cat sat\non the mat"),
            ("Repeat after me: the cat sat on the mat", "The cat sat on the mat"),
        ]
    )
    assert out["_reason"].to_list() == ["prompt_equals_response", None]
    off = _pairs(
        [("Repeat after me: the cat sat on the mat", "repeat after me: the cat sat on the mat")],
        QualityConfig(
            reject_prompt_equals_response=False,
            max_duplicate_paragraph_fraction=None,
            max_duplicate_line_fraction=None,
        ),
    )
    assert off["_reason"][0] is None


@pytest.mark.parametrize(
    "answer",
    [
        "I'm sorry, but I can't help with that.",
        "I’m sorry, but I cannot provide that information.",
        "As an AI language model, I do not have personal opinions.",
        "I cannot assist with that request.",
        "Sorry, I can't do that.",
        "I apologize, but I am unable to comply.",
        '"I am an AI and cannot browse the internet."',
    ],
)
def test_short_boilerplate_responses_are_rejected(answer):
    out = _pairs([("Tell me how to pick the lock on my neighbour's door.", answer)])
    assert out["_reason"][0] == "boilerplate_response"
    assert out["_detail"][0].startswith('starts with boilerplate "')


def test_long_helpful_answers_that_mention_refusals_are_kept():
    helpful = (
        "I'm sorry, but I can't give a diagnosis over chat. However, here is what usually helps with a tension "
        "headache: drink a glass of water, rest in a quiet and dark room, and place a cool cloth on your forehead. "
        "Over-the-counter pain relief can help if you follow the dose on the packet. If the headache is sudden and "
        "severe, or comes with fever, a stiff neck or confusion, see a doctor straight away."
    )
    mentions = (
        "Models often answer with phrases such as 'As an AI language model' or 'I cannot assist with that'. "
        "To avoid them, give the model a clear role, examples of the answers you want, and permission to "
        "say when it does not know."
    )
    out = _pairs(
        [("I have a headache, what should I do?", helpful), ("Why do chatbots refuse so often?", mentions)]
    )
    assert out["_reason"].to_list() == [None, None]
    anywhere = QualityConfig(boilerplate_max_chars=None)
    assert (
        _pairs([("I have a headache, what should I do?", helpful)], anywhere)["_reason"][0]
        == "boilerplate_response"
    )


def test_boilerplate_patterns_are_configurable():
    pair = [("Say something nice about the weather.", "Certainly! The sun is shining and the air is warm.")]
    assert _pairs(pair)["_reason"][0] is None
    assert (
        _pairs(pair, QualityConfig(boilerplate_patterns=[r"certainly!"]))["_reason"][0]
        == "boilerplate_response"
    )
    assert (
        _pairs(
            [("Tell me a secret about you.", "I cannot assist with that.")],
            QualityConfig(boilerplate_patterns=[]),
        )["_reason"][0]
        is None
    )


def test_messages_use_the_last_assistant_turn():
    out = _chats(
        [
            [
                ("user", "Tell me a joke about cats."),
                ("assistant", "I cannot assist with that."),
                ("user", "Please, a harmless one about cats."),
                ("assistant", "Why did the cat sit on the computer? To keep an eye on the mouse!"),
            ],
            [
                ("user", "Tell me a joke about cats."),
                ("assistant", "Why did the cat sit on the computer?"),
                ("user", "Go on, tell me about that cat."),
                ("assistant", "I'm sorry, but I can't continue this."),
            ],
            [
                ("system", "You are a helpful and friendly assistant."),
                ("user", "Hello there, how are you today?"),
                ("assistant", " "),
            ],
            [("user", "Hello there, how are you doing this fine morning?")],
            [
                ("user", "Please say exactly this: good morning to you all"),
                ("assistant", "Please say exactly this: good morning to you all"),
            ],
        ]
    )
    assert out["_reason"].to_list() == [
        None,
        "boilerplate_response",
        "empty_response",
        "empty_response",
        "prompt_equals_response",
    ]


def test_skip_lists_separate_text_and_instruction_rows():
    mash = JUNK["keyboard mash"][0]
    frame = pl.DataFrame(
        {"prompt": ["Type some random letters for me.", None], "response": [mash, None], "text": [None, mash]}
    )
    default = _run(frame)
    assert default["_reason"].to_list() == [None, "no_stop_words"]  # the prompt brings stop words
    assert _run(frame, QualityConfig(text_skip=["no_stop_words"]))["_reason"].to_list() == [None, None]
    bare = pl.DataFrame({"prompt": ["zxcv qwer asdf"], "response": [mash]})
    assert _run(bare)["_reason"][0] == "no_stop_words"
    assert _run(bare, QualityConfig(instruction_skip=["no_stop_words"]))["_reason"][0] is None
    with pytest.raises(ValidationError):
        QualityConfig(text_skip=["not_a_check"])


def test_config_is_validated():
    with pytest.raises(ValidationError, match="extra"):
        QualityConfig(min_word=3)
    with pytest.raises(ValidationError, match="2 <= n"):
        QualityConfig(top_ngram_max_fraction={1: 0.2})
    with pytest.raises(ValidationError, match="fraction"):
        QualityConfig(duplicate_ngram_max_fraction={5: 1.5})
    with pytest.raises(ValidationError, match="not a single token"):
        QualityConfig(stop_words=["the", "don't"])
    with pytest.raises(ValidationError, match="not a valid regex"):
        QualityConfig(boilerplate_patterns=["(unclosed"])
    assert QualityConfig(top_ngram_max_fraction={"3": 0.2}).top_ngram_max_fraction == {3: 0.2}  # TOML keys
    for name, field in QualityConfig.model_fields.items():
        assert field.description, name


def test_stop_word_lists():
    text = ["it is what it is and so on"]
    assert word_signals(pl.Series(text), stop_words=QualityConfig().stop_word_list())["q_stop_words"][0] == 8
    assert (
        word_signals(pl.Series(text), stop_words=QualityConfig(stop_words="gopher").stop_word_list())[
            "q_stop_words"
        ][0]
        == 1
    )
    assert (
        word_signals(pl.Series(["Der Hund und die Katze"]), stop_words=["der", "die", "und"])["q_stop_words"][
            0
        ]
        == 3
    )


def test_tokens_ignore_case_and_punctuation():
    out = word_signals(
        pl.Series(["The (the) THE, the.", "a\nA!\n\n(a)", "Éa éa"]), stop_words=["the"], top_ns=(2,)
    )
    assert out["q_stop_words"].to_list() == [4, 0, 0]
    assert out["q_dup_line_frac"].to_list() == [0.0, pytest.approx(2 / 3), 0.0]
    assert out["q_mean_word_len"][0] == 3.0 and out["q_alpha_ratio"].to_list() == [1.0, 1.0, 1.0]


def test_empty_and_null_rows():
    out = word_signals(pl.Series(["", None, "   \n", "ok"]), stop_words=["the"], top_ns=(2,), dup_ns=(5,))
    assert out["q_words"].to_list() == [0, 0, 0, 1]
    assert out["q_mean_word_len"].to_list()[:3] == [None, None, None]
    assert _texts(["", "   "])["_reason"].to_list() == ["too_short", "too_short"]
    assert word_signals(pl.Series([], dtype=pl.String), stop_words=[]).height == 0


def test_rows_beyond_the_byte_cap_are_measured_on_their_start():
    out = _texts(["word " * 250_000])
    assert out["_reason"][0] == "too_long"
    assert 200_000 < out["q_words"][0] < 250_000


def test_chunk_and_block_boundaries_do_not_change_results(monkeypatch):
    texts = pl.Series([*PROSE, *(t for t, _, _ in JUNK.values()), "", None, "a b a b a b a b a b a b"] * 7)
    args = dict(stop_words=QualityConfig().stop_word_list(), top_ns=(2, 3), dup_ns=(5, 7))
    whole = word_signals(texts, **args)
    monkeypatch.setattr(Q, "_CHUNK_BYTES", 300)
    monkeypatch.setattr(Q, "_BLOCK_BYTES", 1000)
    assert word_signals(texts, **args).equals(whole)
    singles = pl.concat([word_signals(texts.slice(i, 1), **args) for i in range(len(texts))])
    assert singles.equals(whole)


@pytest.mark.skipif(not GSM8K.exists(), reason="needs /work/shared/data/gsm8k")
def test_defaults_keep_gsm8k():
    df = pl.read_ndjson(GSM8K).rename({"question": "prompt", "answer": "response"})
    out = _run(df)
    removed = out["_reason"].drop_nulls()
    print(dict(Counter(removed.to_list())), f"{removed.len()}/{out.height}")
    assert removed.len() < 0.01 * out.height


# --- properties -------------------------------------------------------------------------------------

VOCAB = ["the", "cat", "Sat", "on", "a", "mat", "dog", "RAN", "x", "42", "été", "naïve"]
SEPS = [" ", " ", " ", ", ", ". ", "\n", "\n\n", "  ", " (", ") ", " - "]
TOKEN = re.compile(r"[A-Za-z0-9\x80-\U0010FFFF]+")
FRACTIONS = [
    "q_alpha_ratio",
    "q_dup_line_frac",
    "q_dup_para_frac",
    "q_top_2gram_frac",
    "q_top_3gram_frac",
    "q_top_4gram_frac",
    "q_dup_5gram_frac",
    "q_dup_6gram_frac",
    "q_dup_10gram_frac",
]

texts_strategy = st.lists(
    st.lists(st.tuples(st.sampled_from(VOCAB), st.sampled_from(SEPS)), max_size=60).map(
        lambda parts: "".join(w + s for w, s in parts)
    )
    | st.text(max_size=80),
    min_size=1,
    max_size=12,
)


def _tokens(text: str) -> list[str]:
    return [t.lower() if t.isascii() else t for t in TOKEN.findall(text)]


def _reference_dup(tokens: list[str], n: int) -> float:
    seen, covered = set(), [False] * len(tokens)
    for i in range(len(tokens) - n + 1):
        gram = tuple(tokens[i : i + n])
        if gram in seen:
            covered[i : i + n] = [True] * n
        seen.add(gram)
    total = sum(map(len, tokens))
    return sum(len(t) for t, c in zip(tokens, covered, strict=True) if c) / max(total, 1)


def _reference_top(tokens: list[str], n: int) -> float:
    counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    best = max((c * sum(map(len, g)) for g, c in counts.items() if c > 1), default=0)
    return min(best / max(sum(map(len, tokens)), 1), 1.0)


def _reference_lines(text: str) -> float:
    lines = [tuple(_tokens(line)) for line in text.split("\n")]
    lines = [line for line in lines if line]
    return (len(lines) - len(set(lines))) / len(lines) if lines else 0.0


@settings(max_examples=60, deadline=None)
@given(texts_strategy)
def test_signals_are_fractions_and_match_a_plain_python_reference(texts):
    out = word_signals(pl.Series(texts), stop_words=["the", "a"], top_ns=(2, 3, 4), dup_ns=(5, 6, 10))
    for col in FRACTIONS:
        values = out[col].drop_nulls()
        assert ((values >= 0) & (values <= 1)).all(), col
    for text, row in zip(texts, out.iter_rows(named=True), strict=True):
        ascii_ws = re.split(r"[\x00-\x20]+", text.strip("".join(map(chr, range(0x21)))))
        assert row["q_words"] == len([w for w in ascii_ws if w])
        tokens = _tokens(text)
        assert row["q_stop_words"] == sum(t in ("the", "a") for t in tokens)
        assert row["q_dup_line_frac"] == pytest.approx(_reference_lines(text))
        for n in (5, 6, 10):
            assert row[f"q_dup_{n}gram_frac"] == pytest.approx(_reference_dup(tokens, n)), n
        for n in (2, 3, 4):
            assert row[f"q_top_{n}gram_frac"] == pytest.approx(_reference_top(tokens, n)), n
