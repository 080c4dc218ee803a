"""A session database seeded once for every dashboard (see seed.py), and the time range around it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from llmpulse.dashboards.macros import TimeRange

from .seed import Seeded, seed


@pytest.fixture(scope="session")
def seeded(ch, store_dsn, tmp_path_factory) -> Seeded:
    database = f"dash_{uuid.uuid4().hex[:10]}"
    return seed(ch, store_dsn, database, tmp_path_factory.mktemp("spool"))


@pytest.fixture(scope="session")
def seeded_range(seeded: Seeded) -> TimeRange:
    """Two hours up to a minute after the seed: the seed and its analyzer windows, 1-minute buckets."""
    return TimeRange(seeded.end - timedelta(hours=2), seeded.end + timedelta(minutes=1), timedelta(minutes=1))
