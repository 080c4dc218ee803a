"""litellm's bundled price list prices the models the vendored table lacks: overrides > vendored > litellm's,
read from the installed file (litellm is never imported, nothing is fetched)."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from llmpulse.agent.enrich import litellm_prices
from llmpulse.agent.enrich.prices import PriceTable

from tests.conftest import PYTHON

DOCUMENT = {
    "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "mode": "one of: chat, embedding"},
    "acme-chat-1": {
        "litellm_provider": "acme",
        "mode": "chat",
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "cache_read_input_token_cost": 1.25e-06,
        "cache_creation_input_token_cost": 3.125e-06,
        "input_cost_per_token_batches": 1e-06,
    },
    "acme-embed": {"litellm_provider": "acme", "mode": "embedding", "input_cost_per_token": 1e-07},
    "acme-image": {"litellm_provider": "acme", "mode": "image_generation", "output_cost_per_image": 0.04},
    "gpt-4o": {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 9e-06,
        "output_cost_per_token": 9e-06,
    },
}


def test_per_token_fields_become_per_million_token_prices() -> None:
    prices = litellm_prices.parse(DOCUMENT, source="litellm:test")
    chat = prices["acme-chat-1"]
    assert (chat.input_per_mtok, chat.output_per_mtok, chat.cache_read_per_mtok, chat.cache_write_per_mtok) == (
        2.5,
        10.0,
        1.25,
        3.125,
    )
    assert chat.provider == "acme" and chat.source == "litellm:test"
    assert prices["acme-embed"].output_per_mtok == 0.0, "embeddings are priced on input alone"
    assert "acme-image" not in prices and "sample_spec" not in prices, "no per-token price, nothing to use"


def test_overrides_then_vendored_then_litellm() -> None:
    table = PriceTable(PriceTable.vendored()._prices, fallback=lambda: litellm_prices.parse(DOCUMENT))
    assert table.lookup("gpt-4o").source.startswith("vendored"), "the vendored table wins over litellm's"
    assert table.lookup("acme-chat-1").source == "litellm"
    assert table.cost("acme-chat-1", 1_000_000, 0) == pytest.approx(2.5)
    assert table.lookup("acme-chat-1-20250101").model == "acme-chat-1", "snapshot names match litellm's too"
    assert table.lookup("unknown-model") is None
    overridden = table.with_overrides({"acme-chat-1": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}})
    assert overridden.cost("acme-chat-1", 1_000_000, 0) == pytest.approx(1.0), "the user's override wins"
    assert overridden.lookup("acme-embed").source == "litellm", "overrides keep the fallback"


def test_the_fallback_is_read_once_and_only_when_a_model_is_missing() -> None:
    calls: list[int] = []

    def load() -> dict:
        calls.append(1)
        return litellm_prices.parse(DOCUMENT)

    table = PriceTable(PriceTable.vendored()._prices, fallback=load)
    assert table.lookup("gpt-4o-mini") is not None and calls == []
    assert table.lookup("acme-chat-1") is not None and table.lookup("acme-embed") is not None
    assert table.lookup("nothing-knows-this") is None and calls == [1]


def test_a_broken_price_file_leaves_the_vendored_prices() -> None:
    def load() -> dict:
        raise OSError("unreadable")

    table = PriceTable(PriceTable.vendored()._prices, fallback=load)
    assert table.lookup("acme-chat-1") is None and table.lookup("gpt-4o") is not None


def test_the_installed_litellm_list_prices_a_model_only_it_knows_without_network_or_import() -> None:
    pytest.importorskip("litellm", reason="needs litellm's bundled price list")
    script = textwrap.dedent(
        """
        import socket, sys
        attempts = []
        def refuse(*args, **kwargs):
            attempts.append(args)
            raise OSError("network attempted")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from llmpulse.agent.enrich.prices import PriceTable
        table = PriceTable.default()
        assert "deepseek-chat" not in PriceTable.vendored()
        price = table.lookup("deepseek-chat")
        print(price.source.split(":")[0], price.input_per_mtok > 0, table.lookup("gpt-4o").source.split(":")[0])
        print(sorted(m for m in sys.modules if m.split(".")[0] == "litellm"), attempts)
        """
    )
    result = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["litellm True vendored", "[] []"]


def test_without_litellm_there_is_no_fallback_price(monkeypatch) -> None:
    monkeypatch.setattr(litellm_prices, "bundled_file", lambda: None)
    assert litellm_prices.load() == {}
    assert PriceTable.default().lookup("deepseek-chat") is None
