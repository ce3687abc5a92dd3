"""The package's public names, as the command line imports them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_package_reexports_the_api():
    import simulator

    for name in ("simulate", "Simulation", "Anomaly", "AnomalyConfig", "Kpis", "render_summary"):
        assert hasattr(simulator, name), name


def test_package_imports_in_a_fresh_interpreter():
    code = (
        "from simulator import simulate, Simulation, Anomaly, AnomalyConfig, Kpis, render_summary"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
