import polars as pl

from assay.curate.steps import REGISTRY, StepContext
from assay.curate.steps.exact_dedup import ExactDedupConfig
from assay.curate.steps.normalize import NormalizeConfig
from assay.schema import MESSAGE_DTYPE, content_text


def _run(name, df, cfg, cols):
    return REGISTRY[name].fn(df.lazy(), cfg, StepContext(content_columns=cols)).collect()


def test_normalize_unicode_whitespace_and_control():
    df = pl.DataFrame({"prompt": ["e\u0301te\u0301  \t with\u00a0space \r\nline2\n\n\n\nend  ", "a\x00b\x07c"],
                       "response": ["  ok  ", None]})
    out = _run("normalize", df, NormalizeConfig(), ("prompt", "response"))
    assert out["prompt"].to_list() == ["\u00e9t\u00e9 with space\nline2\n\nend", "abc"]
    assert out["response"].to_list() == ["ok", None]


def test_normalize_options_can_be_turned_off():
    df = pl.DataFrame({"text": ["e\u0301  x\x01"]})
    out = _run("normalize", df, NormalizeConfig(unicode_form="none", strip_control=False, collapse_whitespace=False), ("text",))
    assert out["text"][0] == "e\u0301  x\x01"
    assert _run("normalize", pl.DataFrame({"text": ["\ufb01"]}), NormalizeConfig(unicode_form="NFKC"), ("text",))["text"][0] == "fi"


def test_normalize_messages_content():
    msgs = pl.Series("messages", [[{"role": "user", "content": " hi   there "}, {"role": "assistant", "content": "yo\u00a0!"}]], dtype=MESSAGE_DTYPE)
    out = _run("normalize", msgs.to_frame(), NormalizeConfig(), ("messages",))
    assert out["messages"][0].to_list() == [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "yo !"}]


def test_exact_dedup_marks_later_copies_with_the_kept_id():
    df = pl.DataFrame({"id": ["a", "b", "c", "d"], "prompt": ["q", "q", "Q", "q"], "response": ["r", "r", "r", "x"]})
    out = _run("exact_dedup", df, ExactDedupConfig(), ("prompt", "response"))
    assert out["_reason"].to_list() == [None, "exact_duplicate", None, None]
    assert out["_duplicate_of"].to_list() == [None, "a", None, None]
    folded = _run("exact_dedup", df, ExactDedupConfig(casefold=True), ("prompt", "response"))
    assert folded["_duplicate_of"].to_list() == [None, "a", "a", None]


def test_content_text_covers_every_shape():
    df = pl.DataFrame({"prompt": ["p", None, None], "response": ["r", None, None], "text": [None, "t", None],
                       "messages": pl.Series([None, None, [{"role": "user", "content": "m"}]], dtype=MESSAGE_DTYPE)})
    got = df.select(content_text(("prompt", "response", "messages", "text"))).to_series().to_list()
    assert got == ["p\n\nr", "t", "user: m"]


def test_normalize_html_remnants_and_quotes():
    df = pl.DataFrame({"text": ["Tom &amp; Jerry&#39;s &lt;b&gt; caf&eacute;&nbsp;x", "“Hi” ‘there’ «x»", "a<br/>b <b>bold</b>", "no &entity here"]})
    out = _run("normalize", df, NormalizeConfig(), ("text",))["text"].to_list()
    assert out[0] == "Tom & Jerry's <b> café x"
    assert out[1] == "\"Hi\" 'there' \"x\""
    assert out[2] == "a<br/>b <b>bold</b>", "tags are kept by default"
    assert out[3] == "no &entity here"
    tags = _run("normalize", df, NormalizeConfig(html_tags=True), ("text",))["text"].to_list()
    assert tags[2] == "a\nb bold"
    raw = _run("normalize", df, NormalizeConfig(html_entities=False, smart_quotes=False), ("text",))["text"].to_list()
    assert raw[0].startswith("Tom &amp; Jerry&#39;s") and raw[1].startswith("“Hi”")
