"""The compiled evaluator (engine.evaluator.native): same results as the pure-Python modules,
byte for byte, and only ever loaded for the exact sources it was built from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from engine import calendar, proration, rounding
from engine.evaluator import native
from engine.evaluator import run as evaluator_run

ROOT = Path(__file__).resolve().parents[2]

# Bills the bundled example and synthetic data sets (prices for new subscriptions included)
# over three periods, with the forecast's in-advance revenue: one digest of it all. With
# "stdlib", quicktions cannot be imported: the standard library's fractions (dsl/exact.py).
SCRIPT = """
import hashlib, json, sys
if sys.argv[2] == "stdlib":
    sys.modules["quicktions"] = None
from pathlib import Path
from dsl.exact import Fraction
from engine.evaluator import native
from engine.evaluator.run import bill, recurring_revenue
from engine.pipeline import compile_ruleset, load_data
from simulator.synthetic import synthetic_dataset
root = Path(sys.argv[1])
cat = compile_ruleset(root / "rulesets" / "acme.bareme").catalogue
sets = [
    load_data(root / "rulesets" / "acme-data", cat).dataset,
    synthetic_dataset(cat, "2026-12", customers=300, subscriptions=1500, seed=11),
    synthetic_dataset(cat, "2027-07", customers=300, subscriptions=1500, seed=12),
]
h = hashlib.sha256()
lines = 0
for data in sets:
    for period in ("2026-12", "2027-01", "2027-07"):
        result = bill(cat, data, period)
        lines += sum(len(i.lines) for i in result.invoices)
        h.update(json.dumps(result.as_dict()).encode())
        h.update(repr(recurring_revenue(cat, data, period)).encode())
print(json.dumps({"digest": h.hexdigest(), "lines": lines, "native": native.is_active(),
                  "fractions": Fraction.__module__}))
"""


@cache
def _bill_digest(pure: bool, fractions: str = "quicktions") -> dict[str, object]:
    env = {**os.environ, "BAREME_NATIVE": "0" if pure else "1"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT), fractions],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_compiled_and_pure_python_bill_alike() -> None:
    if not native.is_active():
        pytest.skip("the compiled evaluator is not built (python3 dev.py build)")
    for module in (evaluator_run, calendar, proration, rounding):  # both packages the build serves
        assert module.__file__ is not None and not module.__file__.endswith(".py")
    compiled, pure = _bill_digest(pure=False), _bill_digest(pure=True)
    assert compiled["native"] is True and pure["native"] is False
    assert isinstance(compiled["lines"], int) and compiled["lines"] > 5000  # a real comparison
    assert compiled == {**pure, "native": True}


def test_quicktions_and_the_standard_library_fractions_bill_alike() -> None:
    fast, stdlib = _bill_digest(pure=True), _bill_digest(pure=True, fractions="stdlib")
    assert (fast["fractions"], stdlib["fractions"]) == ("quicktions", "fractions")
    assert isinstance(fast["lines"], int) and fast["lines"] > 5000
    assert fast == {**stdlib, "fractions": "quicktions"}


@pytest.fixture
def fake_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BAREME_NATIVE_DIR", str(tmp_path))
    monkeypatch.delenv("BAREME_NATIVE", raising=False)
    monkeypatch.delenv("BAREME_REQUIRE_NATIVE", raising=False)
    monkeypatch.setitem(native._state, "active", native._state["active"])
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def test_only_a_complete_build_of_these_sources_is_loaded(fake_builds: Path) -> None:
    key = native.digest()
    path: list[str] = ["/src/engine/evaluator"]
    (fake_builds / "0123456789abcdef0123").mkdir()  # another version of the sources
    (fake_builds / "0123456789abcdef0123" / "COMPLETE").write_text("x")
    assert native.activate(path, "engine.evaluator") is False
    (fake_builds / key).mkdir()  # being built: not complete yet
    assert native.activate(path, "engine.evaluator") is False and path == ["/src/engine/evaluator"]
    (fake_builds / key / "COMPLETE").write_text(key)
    assert native.activate(path, "engine.evaluator") is True
    assert path == [str(fake_builds / key / "engine" / "evaluator"), "/src/engine/evaluator"]
    engine_path: list[str] = ["/src/engine"]  # the package of the compiled calendar
    assert native.activate(engine_path, "engine") is True
    assert engine_path == [str(fake_builds / key / "engine"), "/src/engine"]
    assert not any(p.startswith(str(fake_builds)) for p in sys.path)  # see the test below


def test_switched_off_or_required(fake_builds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = native.digest()
    monkeypatch.setenv("BAREME_REQUIRE_NATIVE", "1")
    with pytest.raises(ImportError, match="no compiled evaluator"):
        native.activate([], "engine.evaluator")
    (fake_builds / key).mkdir()
    (fake_builds / key / "COMPLETE").write_text(key)
    monkeypatch.setenv("BAREME_NATIVE", "0")  # off wins over required: the pure-Python pass
    path: list[str] = []
    assert native.activate(path, "engine.evaluator") is False and path == []


def test_the_digest_follows_every_engine_and_language_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("engine", "dsl"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(native, "ROOT", tmp_path)
    before = native.digest()
    assert before == native.digest()
    # not a compiled module, but one whose types the compiled code checks at run time
    catalogue = tmp_path / "engine" / "catalogue.py"
    catalogue.write_text(catalogue.read_text() + "\n# edited\n")
    edited = native.digest()
    assert edited != before
    (tmp_path / "dsl" / "new_module.py").write_text("X = 1\n")
    assert native.digest() not in (before, edited)


def test_a_failed_build_leaves_nothing_to_load(
    fake_builds: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(native, "COMPILED", ("engine/evaluator/no_such_module.py",))
    assert native.build() == 1
    assert "no_such_module" in capsys.readouterr().err  # mypyc's own message, shown
    assert list(fake_builds.iterdir()) == []  # no build, no half-built folder
    assert native.activate([], "engine") is False


SPAWNED = """
import multiprocessing, importlib, sys
import engine.evaluator
from engine.evaluator import native
if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(
        target=importlib.import_module, args=("engine.evaluator.reference",)
    )
    child.start()
    child.join()
    print(native.is_active(), child.exitcode)
"""


def test_a_spawned_process_finds_every_evaluator_module(tmp_path: Path) -> None:
    """A process started elsewhere than the project (Barème found through its editable
    install), and a process it spawns with its sys.path (a dask worker): the compiled
    modules' folder must not shadow the package (it once did: `engine/` with only the
    compiled modules, so `engine.evaluator.reference` was missing)."""
    (tmp_path / "spawner.py").write_text(SPAWNED)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "spawner.py"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(native.is_active()), "0"], out.stderr
