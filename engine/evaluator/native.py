"""The evaluator's hot modules compiled to C with mypyc, used when built for the sources at hand.

The run's inner loops (recurring charges, discounts, invoices, and the calendar, proration and
rounding helpers they call for every line) are plain typed Python; mypyc compiles those same
sources to a C extension that bills about 1.4x faster (bench/SIMULATE.md). Nothing else
changes: the pure-Python modules stay the reference, and a test bills the same data with both
and compares the results byte for byte (tests/engine/test_native.py).

- `build()` compiles `COMPILED` (it needs mypy and a C compiler) into
  `<sys.prefix>/bareme-native/<digest>/`; `python3 dev.py` runs it whenever the sources change
  (`python3 dev.py build` alone). Without a compiler the engine runs in pure Python, slower.
- `activate(package_path, package)`, called by `engine/__init__.py` and
  `engine/evaluator/__init__.py`, puts the build's folder of the package first on its search
  path when it holds a build of exactly the current sources: `digest()`
  covers every module of `engine/` and `dsl/`, because compiled code checks at run time the
  types it was compiled against, and calls the other compiled modules directly. A stale build
  is never loaded, a source edit falls back to pure Python until the next build.
- `BAREME_NATIVE=0` turns it off (pure Python, e.g. to monkeypatch the evaluator in a test);
  `BAREME_REQUIRE_NATIVE=1` makes a missing or stale build an error (CI: never slow silently).

`main(['build'])` returns 0 when built or already up to date, 1 when the build failed (its
log is printed).
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: What mypyc compiles: the stages a run spends its time in (engine.evaluator.run's bill).
COMPILED = (
    "engine/evaluator/charges.py",
    "engine/evaluator/discounts.py",
    "engine/evaluator/invoicing.py",
    "engine/evaluator/recurring.py",
    "engine/evaluator/run.py",
    "engine/calendar.py",
    "engine/proration.py",
    "engine/rounding.py",
)

_state = {"active": False}


def digest() -> str:
    """sha256 of the sources the compiled modules were built from or against, and of the
    interpreter: a build is only valid for exactly these."""
    h = hashlib.sha256(f"{sys.version}\n{sys.implementation.cache_tag}\n".encode())
    for folder in ("engine", "dsl"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            h.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def build_root() -> Path:
    return Path(os.environ.get("BAREME_NATIVE_DIR") or Path(sys.prefix) / "bareme-native")


def build_dir(key: str | None = None) -> Path:
    return build_root() / (key or digest())


def is_active() -> bool:
    """Whether the evaluator modules of this process are the compiled ones."""
    return _state["active"]


def activate(package_path: list[str], package: str) -> bool:
    """Put the build's folder of `package` first on its search path (see the module's doc)."""
    if os.environ.get("BAREME_NATIVE", "1") == "0":
        return False
    folder = build_dir()
    if not (folder / "COMPLETE").exists():
        if os.environ.get("BAREME_REQUIRE_NATIVE") == "1":
            raise ImportError(
                f"no compiled evaluator for these sources in {folder}: run `python3 dev.py build`"
            )
        return False
    # The modules' shims import their shared library as a top-level module: loaded here from
    # its file, not by putting the folder on sys.path, where its `engine/` (compiled modules
    # only) would shadow the real package in processes that find Barème through an editable
    # install's finder (a dask worker, a spawned process).
    for library in folder.iterdir():
        name, _, suffix = library.name.partition(".")
        if name.endswith("__mypyc") and "." + suffix in EXTENSION_SUFFIXES and name not in sys.modules:
            spec = spec_from_file_location(name, library)
            assert spec is not None and spec.loader is not None
            module = module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[name] = module
    package_path.insert(0, str(folder.joinpath(*package.split("."))))
    _state["active"] = True
    return True


def build(verbose: bool = False) -> int:
    # Imported here: every process that imports the evaluator runs `activate`, few build.
    import shutil
    import subprocess
    import tempfile

    key = digest()
    target = build_dir(key)
    if (target / "COMPLETE").exists():
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        script = (
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            f"paths = {[str(ROOT / p) for p in COMPILED] + ['--config-file', str(ROOT / 'pyproject.toml')]!r}\n"
            "setup(name='bareme-native', ext_modules=mypycify(paths, opt_level='3'),\n"
            f"      script_args=['build_ext', '--build-lib', {str(work / 'out')!r}, '--build-temp', {str(work / 'tmp')!r}])\n"
        )
        (work / "setup_native.py").write_text(script)
        env = {**os.environ, "BAREME_NATIVE": "0", "MYPY_CACHE_DIR": str(work / "mypy-cache")}
        proc = subprocess.run(
            [sys.executable, "setup_native.py"], cwd=work, env=env, capture_output=True, text=True
        )
        if proc.returncode != 0:
            print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n", file=sys.stderr)
            return 1
        if verbose:
            print(proc.stdout)
        # Marked complete, then renamed into place in one step: a process never sees half a
        # build, and of two builds of the same sources at once, the first one renamed stays.
        (work / "out" / "COMPLETE").write_text(key + "\n")
        if target.exists() and not (target / "COMPLETE").exists():
            shutil.rmtree(target, ignore_errors=True)  # left by a build that was killed
        try:
            (work / "out").rename(target)
        except OSError:
            if not (target / "COMPLETE").exists():
                raise
        for old in target.parent.iterdir():  # builds of other sources
            if old != target and old.is_dir() and not old.name.startswith(".building-"):
                shutil.rmtree(old, ignore_errors=True)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        return build(verbose="-v" in argv)
    print("usage: main(['build']) | main(['build', '-v'])", file=sys.stderr)
    return 2
