"""Hypothesis profiles: `ci` (default, bounded) keeps the suite fast; `fuzz` is for long runs by
hand: HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/dsl -k robust"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
