"""Threshold colours and steps the panels share."""

from __future__ import annotations

from llmpulse.dashboards.model import Threshold

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"


def steps(*cuts: tuple[float, str], base: str = GREEN) -> tuple[Threshold, ...]:
    """Threshold steps: ``base`` from minus infinity, then each (value, colour) from its value upwards."""
    return (Threshold(None, base), *(Threshold(value, color) for value, color in cuts))
