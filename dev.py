#!/usr/bin/env python3
"""Bootstrap and run Barème's main jobs with nothing but Python installed.

    python3 dev.py demo    # the whole cycle on the bundled example, in an embedded SQLite store
    python3 dev.py test    # ruff, mypy and the whole pytest suite
    python3 dev.py bareme ARGS...   # any bareme command inside the project's virtualenv

Each command creates .venv and installs the project (with its dev tools) when missing or when
pyproject.toml changed since the last install: running it again costs nothing.
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


def run(*cmd: str) -> int:
    return subprocess.run(list(cmd), cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    ensure_env()
    what, rest = argv[0], argv[1:]
    if what == "demo":
        return run(str(BIN / "bareme"), "demo", *rest)
    if what == "test":
        for step in (
            [str(BIN / "ruff"), "check", "."],
            [str(BIN / "mypy")],
            [str(PY), "-m", "pytest", "-q", *rest],
        ):
            print("dev.py:", " ".join(Path(step[0]).name if i == 0 else s for i, s in enumerate(step)), flush=True)
            code = run(*step)
            if code != 0:
                return code
        return 0
    if what == "bareme":
        return run(str(BIN / "bareme"), *rest)
    print(f"dev.py: unknown command {what!r} (demo, test, bareme)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
