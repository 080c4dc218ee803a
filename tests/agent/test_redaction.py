from __future__ import annotations

import pytest
from llmpulse.agent.redaction import Redaction, redact_builtin


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
