"""Every `tests/engine/cases/*.case`: the engine's invoices equal the hand-computed ones, with
both back ends (compiled closures and the reference interpreter)."""

from __future__ import annotations

from pathlib import Path

import pytest
from billing_cases import CASES, parse_case, render, run_case

CASE_FILES = sorted(CASES.glob("*.case"))


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
@pytest.mark.parametrize("backend", ["compiled", "reference"])
def test_case(path: Path, backend: str, tmp_path: Path) -> None:
    sections = parse_case(path.read_text(encoding="utf-8"))
    result = run_case(sections, tmp_path, backend)
    assert render(result) == sections["expect"]


def test_there_are_cases() -> None:
    assert len(CASE_FILES) >= 10
