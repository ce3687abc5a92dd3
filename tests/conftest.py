"""Hypothesis profiles: `ci` (default, bounded) keeps the suite fast; `fuzz` is for long runs by
hand: HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/dsl -k robust"""

import os

import pytest
from hypothesis import HealthCheck, settings

from engine.evaluator import native

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not native.is_active():
        return
    skip = pytest.mark.skip(reason="patches evaluator internals: run by the BAREME_NATIVE=0 pass")
    for item in items:
        if item.get_closest_marker("pure_python"):
            item.add_marker(skip)
