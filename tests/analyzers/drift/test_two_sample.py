"""The drift alarm's aggregated two-sample test: level, power, determinism, API and input checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from llmpulse.analyzers.drift import two_sample_test
from llmpulse.analyzers.drift.two_sample import AggregatedResult, aggregated_test


def unit_rows(rng: np.random.Generator, n: int, d: int = 16, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(n, d))
    x[:, 0] += shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_false_positive_rate_is_near_alpha_under_no_drift() -> None:
    """150 seeded null splits (200 permutations each): binomial 99.9% range for alpha 0.05 is about 0.01-0.11."""
    rng = np.random.default_rng(3)
    p_values = np.array(
        [aggregated_test(unit_rows(rng, 60), unit_rows(rng, 70), permutations=200, seed=i).p_value for i in range(150)]
    )
    assert 0.005 <= np.mean(p_values < 0.05) <= 0.11
    assert 0.35 <= np.mean(p_values) <= 0.65  # roughly uniform


def test_detects_a_clear_shift() -> None:
    rng = np.random.default_rng(2)
    result = two_sample_test(unit_rows(rng, 80), unit_rows(rng, 80, shift=2.0), seed=0)
    assert result.p_value < 0.01  # discrete tail counts can tie with the observed split: not always 1 / 501
    assert result.statistic > 2 and result.mmd2 > 0.01


def test_detects_a_small_share_from_another_source() -> None:
    """Ordinary rows gather around one direction; 10 % of the current window is spread everywhere (another
    source, each text far from the rest): the isolated-text counts see it."""
    rng = np.random.default_rng(5)
    current = np.concatenate([unit_rows(rng, 270, shift=3.0), unit_rows(rng, 30)])
    result = two_sample_test(current, unit_rows(rng, 300, shift=3.0), seed=1)
    assert result.p_value < 0.01
    tails = [p for name, p in zip(result.components, result.component_p_values, strict=True) if "isolated" in name]
    assert min(tails) < 0.01


def test_is_deterministic_for_a_seed_and_caps_the_sample() -> None:
    rng = np.random.default_rng(4)
    x, y = unit_rows(rng, 300), unit_rows(rng, 200, shift=0.2)
    first = aggregated_test(x, y, permutations=200, seed=9, max_samples=120)
    assert first == aggregated_test(x, y, permutations=200, seed=9, max_samples=120)
    assert (first.n_current, first.n_reference) == (120, 120)
    assert two_sample_test(x, y, seed=1) == two_sample_test(x, y, seed=1)


@pytest.mark.parametrize("scales", [(1.0, 4.0), (0.5, 1.0, 3.0)])
def test_kernels_derived_from_the_widest_equal_kernels_computed_alone(scales: tuple[float, ...]) -> None:
    """The kernels share one buffer (the narrower ones are powers of the widest): each MMD^2 must equal the
    one a test with that bandwidth alone computes, for powers of two and for other ratios."""
    rng = np.random.default_rng(8)
    x, y = unit_rows(rng, 90), unit_rows(rng, 70, shift=0.5)
    together = aggregated_test(x, y, permutations=50, gaussian_scales=scales, tail_shares=())
    for scale, value in zip(scales, together.component_values, strict=True):
        alone = aggregated_test(x, y, permutations=50, gaussian_scales=(scale,), tail_shares=())
        assert value == pytest.approx(alone.component_values[0], rel=1e-4, abs=1e-7)
    assert together.components == tuple(f"mmd2_gaussian_{s:g}x_median" for s in scales)


def test_result_shape() -> None:
    rng = np.random.default_rng(6)
    result = two_sample_test(unit_rows(rng, 50), unit_rows(rng, 40), seed=0)
    assert isinstance(result, AggregatedResult) and dataclasses.is_dataclass(result)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.p_value = 0.0  # type: ignore[misc]
    assert 0.0 < result.p_value <= 1.0 and result.statistic >= 0.0
    assert result.permutations == 500 and (result.n_current, result.n_reference) == (50, 40)
    assert len(result.components) == len(result.component_values) == len(result.component_p_values) == 6
    assert result.components[0] == "mmd2_gaussian_1x_median" and result.bandwidth > 0
    assert result.statistic == pytest.approx(-np.log10(min(result.component_p_values)))


@pytest.mark.parametrize(
    ("current", "reference", "message"),
    [
        (np.empty((0, 4)), np.ones((5, 4)), "at least 2 rows per sample, current has 0"),
        (np.ones((5, 4)), np.ones((1, 4)), "at least 2 rows per sample, reference has 1"),
        (np.ones((5, 4)), np.ones((5, 3)), "differ in width: 4 vs 3 dimensions"),
        (np.ones(5), np.ones((5, 3)), "current must be a 2-D matrix"),
        (np.full((3, 2), np.nan), np.ones((5, 2)), "current contains NaN or infinite values"),
    ],
)
def test_bad_input_is_named(current: np.ndarray, reference: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        two_sample_test(current, reference)


def test_needs_a_component_and_a_permutation() -> None:
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="permutations must be at least 1"):
        aggregated_test(x, x, permutations=0)
    with pytest.raises(ValueError, match="at least one Gaussian scale or tail share"):
        aggregated_test(x, x, gaussian_scales=(), tail_shares=())
