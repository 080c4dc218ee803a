from __future__ import annotations

import pytest
from llmpulse.agent.enrich.redaction import CATEGORIES, Redaction, may_hold_secret, redact_builtin


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnopqrstuvwx1234",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
        "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
    ],
)
def test_api_keys_are_removed(secret: str) -> None:
    out = redact_builtin(f"my key is {secret} ok")
    assert secret not in out and "[REDACTED_API_KEY]" in out


def test_emails_bearer_and_assignments() -> None:
    text = "mail jane.doe+x@corp.example.org, Authorization: Bearer abcdefghijklmnop1234, password=hunter22"
    out = redact_builtin(text)
    assert "jane.doe" not in out and "[REDACTED_EMAIL]" in out
    assert "abcdefghijklmnop1234" not in out
    assert "hunter22" not in out and "password=[REDACTED_SECRET]" in out


def test_ordinary_text_is_untouched() -> None:
    text = "The sky-blue task force met at 10:30; risk-free rate is 4%."
    assert redact_builtin(text) == text


def test_user_hooks_run_after_builtin() -> None:
    redaction = Redaction([lambda t: t.replace("ACME", "[CLIENT]")])
    assert redaction("ACME wrote from a@b.co") == "[CLIENT] wrote from [REDACTED_EMAIL]"
    with pytest.raises(TypeError, match="returned NoneType"):
        Redaction([lambda t: None])("x")


# --- issue 10, defect 4: formats the old rules missed ------------------------------------------------

R = Redaction()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"password": "hunter2hunter2"}', "hunter2hunter2"),
        ("api_key=abcdef123456", "abcdef123456"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("x-api-key: abcd1234efgh", "abcd1234efgh"),
        ("Cookie: session=abc123xyz789", "abc123xyz789"),
        ('"client_secret": "s3cr3t-value"', "s3cr3t-value"),
        (
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "eyJhbGciOiJIUzI1NiJ9",
        ),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "dozjgNryP4J3jVmNHl0w5N",
        ),  # a bare JWT, no key or scheme in front
        ("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
        ("export AWS_SECRET_ACCESS_KEY='wJalrXUtnFEMI/K7MDENG'", "wJalrXUtnFEMI"),
        ("mysql://root:s3cret@localhost/db and redis://:p4ss@cache:6379", "s3cret"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXk"),
        ("stripe sk_live_abcdefghijklmnop1234", "sk_live_abcdefghijklmnop1234"),
        ("sts ASIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7EXAMPLE"),
        ("ghr_abcdefghijklmnopqrstuvwxyz0123456789", "ghr_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("postgres://admin:pw@db:5432/app", "pw@"),
        ("mail 用户@例子.广告 now", "用户@例子"),
        ("contact josé.müller@bücher.de", "josé.müller"),
        ("to=jane.doe%40example.com", "jane.doe%40example.com"),
        ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "ｊａｎｅ"),  # noqa: RUF001 - full-width on purpose
        ('\\"password\\": \\"hunter2\\"', "hunter2"),  # JSON inside a JSON string
    ],
)
def test_formats_the_old_rules_missed(text: str, secret: str) -> None:
    out = R(text)
    assert secret not in out, out
    assert "[REDACTED" in out


def test_key_aware_walk_redacts_whatever_the_shape() -> None:
    value = {
        "password": 12345678,
        "api_key": ["a", "b"],
        "nested": [{"Authorization": "anything at all", "note": "mail a@b.co"}],
        "max_tokens": 100,
        "token_count": 7,
        "enabled": True,
    }
    out = R.value(value)
    assert out["password"] == out["api_key"] == "[REDACTED_SECRET]"
    assert out["nested"] == [{"Authorization": "[REDACTED_SECRET]", "note": "mail [REDACTED_EMAIL]"}]
    assert (out["max_tokens"], out["token_count"], out["enabled"]) == (100, 7, True)
    assert value["password"] == 12345678, "the walk returns a copy"


@pytest.mark.parametrize(
    "text",
    [
        "The sky-blue task force met at 10:30; risk-free rate is 4%.",
        "Basic understanding of Bearer instruments helps; the token count is 12 and max_tokens=100.",
        "Enter your password: it is required. The secret to success is practice.",
        "def f(key, value):\n    return {key: value}  # tokenize(text) -> list[str]",
        "trace 4bf92f3567b34d19a9f1e6b1c9e4d5a2 span 00f067aa0ba902b7",
        "uuid 123e4567-e89b-12d3-a456-426614174000, version 1.2.3, 2024-01-15, 3.14159, 4111",
        "see https://example.com/docs?q=1#top and ssh://github.com:22/org/repo.git",
        "Paris is the capital of France. 42 is the answer; 1,000,000 rows per second.",
    ],
)
def test_ordinary_text_is_not_altered(text: str) -> None:
    assert R(text) == text


def test_opt_in_categories() -> None:
    text = "card 4111 1111 1111 1111, not 4111 1111 1111 1112; IBAN DE89 3704 0044 0532 0130 00; ip 192.168.1.10"
    assert R(text) == text, "categories are off by default"
    full = Redaction(categories={"credit_card", "iban", "phone", "ip"})
    out = full(text + "; call +1 415-555-2671; v6 2001:db8::1; at 10:30:45 on 2024-01-15")
    assert "4111 1111 1111 1111" not in out and "4111 1111 1111 1112" in out, "Luhn-checked"
    assert "DE89" not in out and "192.168" not in out and "415-555" not in out and "2001:db8" not in out
    assert "10:30:45" in out and "2024-01-15" in out
    with pytest.raises(ValueError, match="unknown redaction categories"):
        Redaction(categories={"ssn"})


@pytest.mark.parametrize(
    "text",
    [
        "The meeting is at 10:30 on 2024-01-15; version 1.2.3 costs 4.99 and 12345 people came.",
        "Order placed 2024-01-15 10:30:45, shipped 15.01.2024 12 days later.",
        "ISBN 978-3-16-148410-0, build 2024.01.15, v10.2.3 and 3.14159265.",
        "max_tokens=4096, token_count 1500, temperature 0.7, 1,000,000 rows",
    ],
)
def test_prose_with_numbers_survives_the_categories(text: str) -> None:
    assert Redaction(categories=CATEGORIES)(text) == text


def test_secrets_in_dict_form_whatever_the_key_spelling() -> None:
    value = {
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
        "x-api-key": "abcd",
        "clientSecret": "s",
        "Cookie": "sid=1",
        "headers": {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
        "password_policy": "min 12 chars",
        "token_type": "bearer",
    }
    out = R.value(value)
    for key in ("AWS_SECRET_ACCESS_KEY", "x-api-key", "clientSecret", "Cookie"):
        assert out[key] == "[REDACTED_SECRET]", key
    assert out["headers"] == {"Authorization": "[REDACTED_SECRET]"}
    assert (out["password_policy"], out["token_type"]) == ("min 12 chars", "bearer")


def test_long_runs_of_key_words_are_scanned_once() -> None:
    # "tokentoken…" made the key-value rule backtrack quadratically (11 s for 50,000 characters).
    text = "token" * 20_000 + " api_key=abcdef123"
    assert R(text).endswith("=[REDACTED_SECRET]")


def test_fast_precheck_skips_ordinary_text() -> None:
    assert not may_hold_secret("What is the capital of France? Paris.")
    assert R.is_clean("What is the capital of France? Paris.")
    assert not Redaction(categories={"ip"}).is_clean("at 10.0.0.1")
