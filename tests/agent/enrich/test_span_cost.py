"""The cost a span records is computed in one place, for the SDK's spans and the receiver's (issue 12)."""

from __future__ import annotations

import pytest
from llmpulse.agent.enrich.prices import PriceTable
from llmpulse.agent.sidecar.otlp_decode import _add_cost

PRICES = PriceTable.vendored()


def test_span_cost_prices_the_first_known_model_rounded_as_stored() -> None:
    dated = PRICES.span_cost(("gpt-4o-2024-08-06", "gpt-4o"), 1000, 200, 400, None)
    assert dated == round(PRICES.cost("gpt-4o-2024-08-06", 1000, 200, 400), 10)
    assert PRICES.span_cost((None, "", 7, "gpt-4o"), 1000, 200) == round(PRICES.cost("gpt-4o", 1000, 200), 10)
    assert PRICES.span_cost(("no-such-model",), 1000, 200) is None
    assert PRICES.span_cost(("gpt-4o",), None, None) is None
    assert PRICES.span_cost(("gpt-4o",), None, 1000) == pytest.approx(0.01)


def test_the_receiver_records_the_sdk_cost() -> None:
    attrs = {
        "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": "2317",  # OTLP attributes may carry counts as text
        "gen_ai.usage.output_tokens": 31,
        "gen_ai.usage.cache_read.input_tokens": 2048,
        "gen_ai.usage.cache_creation.input_tokens": 248,
    }
    unpriced: list[int] = []
    _add_cost(attrs, PRICES, lambda: unpriced.append(1))
    sdk = PRICES.span_cost(("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"), 2317, 31, 2048, 248)
    assert attrs["llmpulse.cost.usd"] == sdk and not unpriced
