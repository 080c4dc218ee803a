"""One duration grammar for every command and setting (issue 12)."""

from __future__ import annotations

import pytest
from llmpulse.agent.store.duration import canonical, seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", 0.5),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1.5h", 5400.0),
        ("7d", 604800.0),
        ("1w", 604800.0),
        ("90", 90.0),
        (" 3 h ", 10800.0),
    ],
)
def test_seconds(text: str, expected: float) -> None:
    assert seconds(text) == expected


@pytest.mark.parametrize("text", ["", "fast", "1hour", "-1h", "1y", "h", "1 w 2"])
def test_bad_durations_name_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"use a number and ms, s, m, h, d or w"):
        seconds(text)


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("1w", "7d"),
        ("2w", "14d"),
        ("1.5h", "90m"),
        ("90", "90s"),
        ("3600s", "3600s"),  # already a form every reader takes: unchanged
        ("24h", "24h"),
        ("36h", "36h"),
        ("0.5s", "0.5s"),  # not a whole number of seconds: the reader reports it
        ("0w", "0w"),
        ("a while", "a while"),
        ("99999999999999d", "99999999999999d"),
    ],
)
def test_canonical_form(text: str, form: str) -> None:
    assert canonical(text) == form
