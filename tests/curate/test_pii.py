import json
import re

import polars as pl
import pytest

from assay.curate.pii_detectors import DETECTORS
from assay.curate.pii_scan import redact_one, resub, rust_pattern
from assay.curate.steps.base import REGISTRY, StepContext
from assay.curate.steps.pii import ALL_KINDS, PiiConfig, build_plan
from assay.schema import MESSAGE_DTYPE
from tests.conftest import SHARED_DATA

GSM8K = SHARED_DATA / "gsm8k" / "train.jsonl"


def _run(df: pl.DataFrame, cfg: PiiConfig | None = None, cols: tuple[str, ...] = ("text",)) -> pl.DataFrame:
    return REGISTRY["pii"].fn(df.lazy(), cfg or PiiConfig(), StepContext(content_columns=cols)).collect()


def _redact(texts: list[str], cfg: PiiConfig | None = None) -> list[str]:
    return _run(pl.DataFrame({"text": texts}), cfg)["text"].to_list()


POSITIVES = {
    "email": [
        ("john.doe@gmail.com", "[EMAIL]"),
        ("Write to Jane_Roe+news@mail.co.uk.", "Write to [EMAIL]."),
        ("<a href='mailto:x.y@sub.corp-mail.de'>", "<a href='mailto:[EMAIL]'>"),
    ],
    "phone": [
        ("(555) 234-5678", "[PHONE]"), ("555-234-5678", "[PHONE]"), ("555.234.5678", "[PHONE]"),
        ("+1 555 234 5678", "[PHONE]"), ("+44 20 7946 0958", "[PHONE]"), ("+33 1 42 68 53 00", "[PHONE]"),
        ("+919876543210", "[PHONE]"), ("1-800-555-0199", "[PHONE]"), ("phone: 5551234567", "phone: [PHONE]"),
        ("call 020 7946 0958 today", "call [PHONE] today"), ("Tel. +41 44 668 18 00", "Tel. [PHONE]"),
        ("mobile number 07700 900123", "mobile number [PHONE]"),
    ],
    "ipv4": [("8.8.8.8", "[IP_ADDRESS]"), ("ip=81.2.69.160:8080", "ip=[IP_ADDRESS]:8080"),
             ("(151.101.1.69).", "([IP_ADDRESS]).")],
    "ipv6": [("2001:4860:4860::8888", "[IP_ADDRESS]"), ("at 2a03:2880:f12f:83:face:b00c::25de.", "at [IP_ADDRESS]."),
             ("2607:f8b0:4005:80a:0:0:0:200e", "[IP_ADDRESS]")],
    "credit_card": [
        ("4111 1111 1111 1111", "[CREDIT_CARD]"), ("card: 4111-1111-1111-1111.", "card: [CREDIT_CARD]."),
        ("4111111111111111", "[CREDIT_CARD]"), ("378282246310005", "[CREDIT_CARD]"),
        ("3782 822463 10005", "[CREDIT_CARD]"), ("5555555555554444", "[CREDIT_CARD]"), ("6011111111111117", "[CREDIT_CARD]"),
    ],
    "ssn": [("123-45-6789", "[SSN]"), ("SSN: 123 45 6789", "SSN: [SSN]"),
            ("social security number 234567890", "social security number [SSN]")],
    "iban": [
        ("DE89 3704 0044 0532 0130 00", "[IBAN]"), ("GB82WEST12345698765432", "[IBAN]"),
        ("FR14 2004 1010 0505 0001 3M02 606", "[IBAN]"), ("to NL91ABNA0417164300.", "to [IBAN]."),
    ],
    "secret": [
        ("sk-proj-abc123DEF456ghi789JKL012", "[SECRET]"), ("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "[SECRET]"),
        ("AKIAIOSFODNN7EXAMPLE", "[SECRET]"), ("xoxb-2345678901-abcdefghij", "[SECRET]"),
        ("AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "[SECRET]"), ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[SECRET]"),
        ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
         "[SECRET]"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234567890abcdef\n-----END RSA PRIVATE KEY-----\nok",
         "[SECRET]\nok"),
        ("Authorization: Bearer 9f8e7d6c5b4a39281726354abc", "Authorization: Bearer [SECRET]"),
        ('api_key = "a8f5f167f44f4964e6c998dee827110c"', 'api_key = "[SECRET]"'),
        ("DB_PASSWORD=Tr0ub4dor&3x", "DB_PASSWORD=[SECRET]"),
        ("AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY: [SECRET]"),
        ("githubToken: 'q1w2e3r4t5y6u7i8'", "githubToken: '[SECRET]'"),
        ("mysql://admin:S3cr3t!@db.internal:3306/app", "mysql://admin:[SECRET]@db.internal:3306/app"),
    ],
}
POSITIVE_CASES = [(kind, text, want) for kind, cases in POSITIVES.items() for text, want in cases]

NEGATIVES = [
    # versions, section numbers, longer dotted sequences
    "version 1.2.3.4", "v1.2.3.4", "Python 3.11.4", "1.2.3.4.5", "release 10.0.19041.1", "see section 2.1.3.4",
    # dates and times
    "2023-01-15", "01/15/2023", "15.01.2023", "2023/01/15", "20230115", "12:30:45", "2023-01-15T12:30:45Z",
    "The 2019-2020 season",
    # prices and large numbers
    "$1,234.56", "$1,234,567.89", "€1.234,56", "A 12345678901234 km trip", "10^15 = 1000000000000000",
    "x = 1234567890 + 9876543210", "3.14159265358979323846",
    # arithmetic and GSM8K calculator annotations
    "12*34=408", "3-4-5 triangle", "1+2+3+4+5+6+7+8+9=45", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.",
    "she earned 0.2 x 50 = $<<0.2*50=10>>10.", "She paid 5000-1350-450 = 3200", "+5 -3 +12 = 14",
    "5+1234567890=1234567895", "He scored 100 200 3000 points", "ratio 1:2:3:4",
    # identifiers that are not secrets outside a key assignment
    "ISBN 978-3-16-148410-0", "ISBN-13: 9780306406157", "ISBN 0-306-40615-2",
    "uuid 123e4567-e89b-12d3-a456-426614174000", "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "0xDEADBEEF",
    # code and hardware
    "std::vector<int>", "Foo::Bar::baz()", "y = x@self.weight", "out = (a@b.shape)", "00:1A:2B:3C:4D:5E", "de:ad:be:ef:00:01:02:03", "task-abcdefghijklmnopqrstuvwxyz",
    "password: ********", "token = 'abc'", '"token": "<YOUR_TOKEN>"', "api_key = os.environ['KEY']",
    "password = get_password()", "SECRET_KEY = settings.SECRET_KEY", "monkey = abc123XYZ987",
    # prose
    "the bearer of bad news", "call 911", "phone 2 times", "calls 5551234567", "user@localhost", "@username", "icon@2x.png",
    # reserved addresses and test domains (kept by default)
    "jane@example.com", "localhost 127.0.0.1", "router 192.168.1.1", "x=2001:db8::1", "::1",
]


@pytest.mark.parametrize(("kind", "text", "want"), POSITIVE_CASES)
def test_every_kind_is_found_and_redacted(kind, text, want):
    out = _run(pl.DataFrame({"text": [text]}))
    assert out["text"][0] == want
    assert out[f"pii_{kind}"][0] == 1
    assert out["pii_any"][0]
    assert sum(out[f"pii_{k}"][0] for k in ALL_KINDS) == 1


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_are_left_alone(text):
    out = _run(pl.DataFrame({"text": [text]}))
    assert out["text"][0] == text
    assert not out["pii_any"][0]


def test_checksums_and_number_rules_reject_invalid_values():
    invalid = [
        "4111 1111 1111 1112", "4111111111111112", "378282246310006",  # Luhn fails
        "0000 0000 0000 0000", "1234567812345670",  # Luhn passes, but filler / no issuer starts with 1
        "000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "SSN 000 12 3456",  # SSN rules
        "DE89 3704 0044 0532 0130 01", "GB82WEST12345698765433", "DE89370400440532013000123",  # IBAN mod-97 / length
        "256.1.1.1", "1.2.3.256", "01.02.03.04",  # octets
    ]
    out = _run(pl.DataFrame({"text": invalid}))
    assert out["text"].to_list() == invalid
    assert not out["pii_any"].any()


def test_luhn_valid_and_invalid_side_by_side():
    assert _redact(["pay 4111-1111-1111-1111 not 4111-1111-1111-1112"]) == ["pay [CREDIT_CARD] not 4111-1111-1111-1112"]


def test_placeholders_are_exact_and_configurable():
    text = "Mail a.b@corp.io, call 555-234-5678, card 4111 1111 1111 1111, ip 8.8.8.8"
    assert _redact([text]) == ["Mail [EMAIL], call [PHONE], card [CREDIT_CARD], ip [IP_ADDRESS]"]
    cfg = PiiConfig(placeholders={"email": "<EMAIL>", "phone": "$1 <PHONE>"})
    assert cfg.placeholders["ssn"] == "[SSN]"
    assert _redact([text], cfg) == ["Mail <EMAIL>, call $1 <PHONE>, card [CREDIT_CARD], ip [IP_ADDRESS]"]


def test_counts_sum_over_all_content_columns():
    df = pl.DataFrame({
        "prompt": ["a@corp.io and b@corp.io, 555-234-5678", "nothing here", None],
        "response": ["c@corp.io", "ip 8.8.8.8 and 8.8.4.4", "fine"],
    })
    out = _run(df, cols=("prompt", "response"))
    assert out["pii_email"].to_list() == [3, 0, 0]
    assert out["pii_phone"].to_list() == [1, 0, 0]
    assert out["pii_ipv4"].to_list() == [0, 2, 0]
    assert out["pii_any"].to_list() == [True, True, False]
    assert out["pii_email"].dtype == pl.Int32
    assert out["prompt"].to_list() == ["[EMAIL] and [EMAIL], [PHONE]", "nothing here", None]


def test_messages_content_is_redacted_and_counted():
    msgs = pl.Series("messages", [
        [{"role": "user", "content": "mail me at a.b@corp.io"}, {"role": "assistant", "content": "ok, call 555-234-5678"}],
        [], None, [{"role": "user", "content": None}],
    ], dtype=MESSAGE_DTYPE)
    out = _run(msgs.to_frame(), cols=("messages",))
    assert out["messages"][0].to_list() == [{"role": "user", "content": "mail me at [EMAIL]"},
                                            {"role": "assistant", "content": "ok, call [PHONE]"}]
    assert out["messages"].to_list()[1:] == [[], None, [{"role": "user", "content": None}]]
    assert out["pii_email"].to_list() == [1, 0, 0, 0] and out["pii_phone"].to_list() == [1, 0, 0, 0]


def test_drop_mode_rejects_with_kinds_and_counts_and_keeps_content():
    texts = ["a@corp.io b@corp.io ssn 234-56-7890", "clean text"]
    out = _run(pl.DataFrame({"text": texts}), PiiConfig(action="drop"))
    assert out["text"].to_list() == texts
    assert out["_reason"].to_list() == ["pii", None]
    assert out["_detail"].to_list() == ["email=2, ssn=1", None]


def test_flag_mode_only_records():
    texts = ["a@corp.io and 8.8.8.8", "clean"]
    out = _run(pl.DataFrame({"text": texts}), PiiConfig(action="flag"))
    assert out["text"].to_list() == texts
    assert out["_reason"].to_list() == [None, None]
    assert out["pii_email"].to_list() == [1, 0] and out["pii_ipv4"].to_list() == [1, 0]


def test_kinds_can_be_disabled():
    out = _run(pl.DataFrame({"text": ["a@corp.io 555-234-5678"]}), PiiConfig(kinds=["email"]))
    assert out["text"][0] == "[EMAIL] 555-234-5678"
    assert [c for c in out.columns if c.startswith("pii_")] == ["pii_email", "pii_any"]


def test_allow_lists_and_reserved_addresses():
    text = "help@corp.io, jane@example.com, 555-234-5678, 10.0.0.1"
    assert _redact([text], PiiConfig(allow_values=["HELP@corp.io", "555-234-5678"])) == [
        "help@corp.io, jane@example.com, 555-234-5678, 10.0.0.1"]
    strict = PiiConfig(allow_domains=[], keep_reserved_ips=False)
    assert _redact([text], strict) == ["[EMAIL], [EMAIL], [PHONE], [IP_ADDRESS]"]


def test_secret_entropy_threshold_is_configurable():
    text = "password: abc12345"
    assert _redact([text]) == ["password: [SECRET]"]
    assert _redact([text], PiiConfig(secret_min_entropy=3.5)) == [text]


def test_repeated_and_overlapping_values_in_one_row():
    text = "8.8.8.8 x8.8.8.8 8.8.8.888 8.8.8.8, a@corp.io,a@corp.io"
    assert _redact([text]) == ["[IP_ADDRESS] x8.8.8.8 8.8.8.888 [IP_ADDRESS], [EMAIL],[EMAIL]"]


def test_prefilter_hints_are_necessary_conditions():
    texts = [t for _, t, _ in POSITIVE_CASES] + NEGATIVES
    texts += [" ".join(texts[i : i + 5]) for i in range(0, len(texts), 5)]
    plan = build_plan(PiiConfig())
    fast = plan.scan(pl.Series(texts))
    slow = type(plan)(plan.detectors, plan.placeholders, plan.options, prefilter=False).scan(pl.Series(texts))
    assert fast.to_list() == slow.to_list()


def _parity_corpus() -> list[str]:
    texts = [t for _, t, _ in POSITIVE_CASES] + NEGATIVES + ["café 8.8.8.8 naïve été a@corp.io", "x\u00a0555-234-5678"]
    if GSM8K.exists():
        rows = [json.loads(line) for line in GSM8K.read_text().splitlines()[:1500]]
        texts += [r["question"] + "\n" + r["answer"] for r in rows]
    return texts


def test_python_and_polars_regex_engines_agree():
    texts = _parity_corpus()
    series = pl.Series(texts)
    for det in DETECTORS:
        rx = re.compile(det.pattern, re.ASCII)
        rust = series.str.extract_all(rust_pattern(det.pattern)).to_list()
        assert rust == [[m.group(0) for m in rx.finditer(t)] for t in texts], det.name


def test_redaction_falls_back_when_engines_disagree():
    rx = re.compile(DETECTORS[-1].pattern, re.ASCII)  # ipv4
    assert redact_one(rx, "ip 8.8.8.8", ["8.8.8.8", "9.9.9.9"], [True, True], "[IP]") == "ip [IP]"
    assert resub(rx, "ip 8.8.8.8 and 1.1.1.1", {"8.8.8.8", "2.2.2.2"}, "[IP]") == "ip [IP] and 1.1.1.1"


@pytest.mark.skipif(not GSM8K.exists(), reason="shared GSM8K data not present")
def test_gsm8k_has_almost_no_detections():
    rows = pl.read_ndjson(GSM8K)
    df = rows.select(pl.col("question").alias("prompt"), pl.col("answer").alias("response"))
    out = _run(df, PiiConfig(action="flag"), cols=("prompt", "response"))
    assert out.height == 7473
    assert out["pii_any"].sum() <= 3


def test_runner_turns_drop_decisions_into_rejects():
    from assay.curate.config import CurateConfig
    from assay.curate.pipeline import run_steps

    class Config(CurateConfig):  # the `pii` field as the curate config carries it once the step is wired
        pii: PiiConfig = PiiConfig()

    rows = pl.DataFrame({"id": ["1", "2", "3"], "prompt": ["hi a@corp.io", "ok", "x"],
                         "response": ["r", "call 555-234-5678", "y"]})
    kept, rejects, stats = run_steps(rows, Config(steps=["normalize", "pii"], pii=PiiConfig(action="drop")))
    assert kept["id"].to_list() == ["3"]
    assert rejects.select("id", "step", "reason", "detail").rows() == [("1", "pii", "pii", "email=1"),
                                                                      ("2", "pii", "pii", "phone=1")]
    assert stats[-1].removed == {"pii": 2}


def test_config_rejects_an_empty_kind_list_with_a_hint():
    with pytest.raises(ValueError, match="remove `pii` from `steps`"):
        PiiConfig(kinds=[])
