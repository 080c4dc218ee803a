"""Tests of the vendored price table, overrides, model lookup and cost arithmetic."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from llmpulse.agent.enrich.prices import ModelPrice, PriceTable
from llmpulse.agent.enrich.providers import parse_response

from tests.agent.provider_fakes import load_json_fixture

REQUIRED_MODELS = {
    "openai": [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
        "gpt-3.5-turbo",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
    ],
    "anthropic": [
        "claude-3-5-sonnet",
        "claude-3-5-haiku",
        "claude-3-7-sonnet",
        "claude-3-haiku",
        "claude-3-opus",
        "claude-sonnet-4",
        "claude-opus-4",
        "claude-opus-4-1",
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
    ],
}


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.vendored()


def test_vendored_file_is_package_data() -> None:
    doc = json.loads(resources.files("llmpulse.agent.enrich").joinpath("model_prices.json").read_text(encoding="utf-8"))
    assert doc["as_of"]
    assert doc["currency"] == "USD"
    assert "list prices" in doc["source"].lower() and "override" in doc["source"].lower()


def test_vendored_has_required_models(table: PriceTable) -> None:
    assert table.as_of
    for provider, models in REQUIRED_MODELS.items():
        for model in models:
            price = table.lookup(model)
            assert price is not None, model
            assert price.model == model
            assert price.provider == provider
            assert price.source and price.source.startswith("vendored")


def test_vendored_prices_are_sane(table: PriceTable) -> None:
    for price in table.rows():
        assert price.input_per_mtok > 0, price
        assert price.output_per_mtok >= 0, price
        if price.cache_read_per_mtok is not None:
            assert 0 < price.cache_read_per_mtok < price.input_per_mtok, price
        if price.cache_write_per_mtok is not None:
            assert price.cache_write_per_mtok > price.input_per_mtok, price  # Anthropic charges a write premium
    assert (table.lookup("gpt-4o").input_per_mtok, table.lookup("gpt-4o").output_per_mtok) == (2.5, 10.0)  # type: ignore[union-attr]
    sonnet = table.lookup("claude-sonnet-4-5")
    assert sonnet == ModelPrice("claude-sonnet-4-5", "anthropic", 3.0, 15.0, 0.3, 3.75, sonnet.source)  # type: ignore[union-attr]


def test_rows_sorted_and_complete(table: PriceTable) -> None:
    rows = table.rows()
    assert [r.model for r in rows] == sorted(r.model for r in rows)
    assert len(rows) == len(table) >= sum(len(v) for v in REQUIRED_MODELS.values())
    assert all(isinstance(r, ModelPrice) for r in rows)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        (" gpt-4o ", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # the older, pricier snapshot has its own row
        ("openai/gpt-4o", "gpt-4o"),
        ("openai/gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o3-2025-04-16", "o3"),
        ("o1-2024-12-17", "o1"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("anthropic/claude-3-haiku-20240307", "claude-3-haiku"),
        ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"),
        ("anthropic.claude-3-opus-20240229-v1:0", "claude-3-opus"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        # Not priced: a different model behind a known prefix must not inherit its sibling's price.
        ("claude-opus-4-6", None),
        ("gpt-5.1", None),
        ("gpt-4o-audio-preview", None),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", None),
        ("gpt-4", None),
        ("llama-3.1-8b", None),
        ("", None),
        (None, None),
    ],
)
def test_lookup(table: PriceTable, model: str | None, expected: str | None) -> None:
    price = table.lookup(model)
    assert (price.model if price else None) == expected


@pytest.mark.parametrize("model", [123, 4.5, object(), ["gpt-4o"]])
def test_lookup_non_string_is_none(table: PriceTable, model: Any) -> None:
    assert table.lookup(model) is None
    assert table.cost(model, 10, 10) is None


def test_cost_openai_with_cached_and_reasoning(table: PriceTable) -> None:
    # input includes cached tokens; OpenAI has no cache-write price so writes (if any) bill at input price.
    cost = table.cost("gpt-4o-2024-08-06", 1000, 200, cache_read_input_tokens=400)
    assert cost == pytest.approx((600 * 2.5 + 400 * 1.25 + 200 * 10.0) / 1e6)
    assert table.cost("gpt-4o", 1000, 0, cache_creation_input_tokens=100) == pytest.approx(1000 * 2.5 / 1e6)


def test_cost_anthropic_cache_read_and_write(table: PriceTable) -> None:
    cost = table.cost("claude-sonnet-4-5-20250929", 21 + 2048 + 248, 31, 2048, 248)
    assert cost == pytest.approx((21 * 3.0 + 2048 * 0.30 + 248 * 3.75 + 31 * 15.0) / 1e6)


def test_cost_falls_back_to_input_price(table: PriceTable) -> None:
    assert table.lookup("gpt-3.5-turbo").cache_read_per_mtok is None  # type: ignore[union-attr]
    assert table.cost("gpt-3.5-turbo", 1000, 100, cache_read_input_tokens=500) == pytest.approx(
        (1000 * 0.5 + 100 * 1.5) / 1e6
    )


def test_cost_unknowns(table: PriceTable) -> None:
    assert table.cost("no-such-model", 100, 100) is None
    assert table.cost(None, 100, 100) is None
    assert table.cost("gpt-4o", None, None) is None
    assert table.cost("gpt-4o", "many", True) is None  # type: ignore[arg-type]
    assert table.cost("text-embedding-3-small", 1_000_000, None) == pytest.approx(0.02)  # embeddings: no output
    assert table.cost("gpt-4o", None, 1000) == pytest.approx(0.01)
    assert table.cost("gpt-4o", 0, 0) == 0.0


def test_cost_inconsistent_counts_do_not_go_negative(table: PriceTable) -> None:
    # cache counts larger than the input total (a provider quirk): never bill negative uncached tokens.
    cost = table.cost("claude-3-haiku", 10, 0, cache_read_input_tokens=100)
    assert cost == pytest.approx(100 * 0.03 / 1e6)
    assert table.cost("gpt-4o", -5, -5) == 0.0


def test_cost_from_parsed_response(table: PriceTable) -> None:
    res = parse_response(load_json_fixture("openai_chat_completion.json"))
    assert res is not None
    cost = table.cost(
        res.response_model,
        res.input_tokens,
        res.output_tokens,
        res.cache_read_input_tokens,
        res.cache_creation_input_tokens,
    )
    # o4-mini: (1843 - 1536) uncached at 1.10, 1536 cached at 0.275, 212 output (incl. reasoning) at 4.40
    assert cost == pytest.approx((307 * 1.10 + 1536 * 0.275 + 212 * 4.40) / 1e6)


def test_overrides_mapping(table: PriceTable) -> None:
    custom = table.with_overrides(
        {
            "GPT-4o": {"input_per_mtok": 2.0},  # partial override of a known model, case-insensitive
            "my-finetune": {"input_per_mtok": 1, "output_per_mtok": 2, "provider": "openai"},
        }
    )
    gpt4o = custom.lookup("gpt-4o-2024-08-06")
    assert gpt4o is not None
    assert (gpt4o.model, gpt4o.input_per_mtok, gpt4o.output_per_mtok, gpt4o.cache_read_per_mtok) == (
        "gpt-4o",
        2.0,
        10.0,
        1.25,
    )
    assert gpt4o.source == "override"
    mine = custom.lookup("my-finetune")
    assert mine == ModelPrice("my-finetune", "openai", 1.0, 2.0, None, None, "override")
    assert custom.cost("my-finetune", 1_000_000, 1_000_000) == pytest.approx(3.0)
    # the original table is unchanged
    assert table.lookup("gpt-4o").input_per_mtok == 2.5  # type: ignore[union-attr]
    assert table.lookup("my-finetune") is None
    assert len(custom) == len(table) + 1
    assert table.with_overrides(None) is table


def test_overrides_can_clear_cache_price(table: PriceTable) -> None:
    custom = table.with_overrides({"gpt-4o": {"cache_read_per_mtok": None}})
    assert custom.cost("gpt-4o", 1000, 0, cache_read_input_tokens=1000) == pytest.approx(1000 * 2.5 / 1e6)


def test_overrides_from_json_file(table: PriceTable, tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps({"claude-opus-4-6": {"input_per_mtok": 5, "output_per_mtok": 25, "provider": "anthropic"}})
    )
    custom = table.with_overrides(path)
    price = custom.lookup("claude-opus-4-6")
    assert price is not None and price.source == "override:prices.json"
    assert custom.with_overrides(str(path)).lookup("claude-opus-4-6") == price
    # a file shaped like the vendored one (top-level "models") works too
    path.write_text(
        json.dumps({"as_of": "2030-01-01", "models": {"x-model": {"input_per_mtok": 1, "output_per_mtok": 1}}})
    )
    assert table.with_overrides(path).lookup("x-model") is not None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gpt-4o": {"input": 1.0}}, r"'gpt-4o'.*unknown key 'input'"),
        ({"gpt-4o": {"input_per_mtok": -1}}, r"'gpt-4o'.*'input_per_mtok'"),
        ({"gpt-4o": {"output_per_mtok": "10"}}, r"'gpt-4o'.*'output_per_mtok'"),
        ({"gpt-4o": {"output_per_mtok": True}}, r"'gpt-4o'.*'output_per_mtok'"),
        ({"gpt-4o": {"input_per_mtok": float("nan")}}, r"'gpt-4o'.*'input_per_mtok'"),
        ({"gpt-4o": {"input_per_mtok": None}}, r"'gpt-4o'.*'input_per_mtok'"),
        ({"gpt-4o": {"cache_write_per_mtok": "x"}}, r"'gpt-4o'.*'cache_write_per_mtok'"),
        ({"gpt-4o": {"provider": 3}}, r"'gpt-4o'.*'provider'"),
        ({"new-model": {"input_per_mtok": 1.0}}, r"'new-model'.*missing required key 'output_per_mtok'"),
        ({"new-model": 1.0}, r"'new-model'.*expected a mapping"),
        ({"": {"input_per_mtok": 1, "output_per_mtok": 1}}, r"non-empty string"),
        (["gpt-4o"], r"must map model name"),
    ],
)
def test_overrides_bad_shape(table: PriceTable, overrides: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        table.with_overrides(overrides)


def test_overrides_bad_json_file(table: PriceTable, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json"):
        table.with_overrides(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must map model name"):
        table.with_overrides(path)


def test_lookup_is_cached_and_bounded() -> None:
    table = PriceTable.vendored()
    for i in range(3000):
        assert table.lookup(f"unknown-{i}") is None
    assert table.lookup("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"  # type: ignore[union-attr]
    assert "gpt-4o-2024-08-06" in table
    assert "nope" not in table
