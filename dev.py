#!/usr/bin/env python3
"""Bootstrap and run Barème's main jobs with nothing but Python installed.

    python3 dev.py demo    # the whole cycle on the bundled example, in an embedded SQLite store
    python3 dev.py test    # ruff, mypy and the whole pytest suite
    python3 dev.py bareme ARGS...   # any bareme command inside the project's virtualenv
    python3 dev.py build   # only the setup below

Each command creates .venv and installs the project (with its dev tools) when missing or when
pyproject.toml changed since the last install, then compiles the evaluator's hot modules with
mypyc when the sources changed since the last build (engine/evaluator/native.py; without a C
compiler Barème runs in pure Python, slower): running it again costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".bareme-installed"


def ensure_env() -> None:
    if not PY.exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    print("dev.py: installing Barème and its tools into .venv", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(digest)


def ensure_native() -> None:
    """Compile the evaluator for the current sources (a no-op when already built)."""
    code = subprocess.run(
        [str(PY), "-c", "import sys; from engine.evaluator.native import main; sys.exit(main(['build']))"],
        cwd=ROOT,
        env={**os.environ, "BAREME_NATIVE": "0"},
    ).returncode
    if code != 0:
        if os.environ.get("BAREME_REQUIRE_NATIVE") == "1":
            sys.exit("dev.py: the compiled evaluator did not build (BAREME_REQUIRE_NATIVE=1)")
        print("dev.py: the compiled evaluator did not build; running in pure Python", file=sys.stderr)


def run(*cmd: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run(list(cmd), cwd=ROOT, env={**os.environ, **(env or {})}).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    ensure_env()
    ensure_native()
    what, rest = argv[0], argv[1:]
    if what == "build":
        return 0
    if what == "demo":
        return run(str(BIN / "bareme"), "demo", *rest)
    if what == "test":
        pure = {"BAREME_NATIVE": "0"}
        steps: list[tuple[dict[str, str], list[str]]] = [
            ({}, [str(BIN / "ruff"), "check", "."]),
            ({}, [str(BIN / "mypy")]),
            ({}, [str(PY), "-m", "pytest", "-q", *rest]),
            # the tests that patch the evaluator's internals, on its pure-Python modules
            (pure, [str(PY), "-m", "pytest", "-q", "-m", "pure_python", *rest]),
        ]
        for env, step in steps:
            shown = [f"{k}={v}" for k, v in env.items()] + [Path(step[0]).name, *step[1:]]
            print("dev.py:", " ".join(shown), flush=True)
            code = run(*step, env=env)
            if code == 5 and env is pure:
                continue  # pytest's "no tests collected": none of the selected tests patches
            if code != 0:
                return code
        return 0
    if what == "bareme":
        return run(str(BIN / "bareme"), *rest)
    print(f"dev.py: unknown command {what!r} (demo, test, bareme, build)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
