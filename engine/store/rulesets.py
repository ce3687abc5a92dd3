"""Ruleset versions in the store: every file's text, stored once per SHA-256 content hash.

A ruleset version is the root file plus every file it imports (as the loader read them) plus
the data files its declarations name (rate decks). Paths are kept relative to the root file's
directory, so the same ruleset checked out anywhere has the same hash. A stored version can be
compiled again without the original files (``compile_stored``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dsl import nodes
from engine.pipeline import CompiledRuleset, compile_ruleset
from engine.store.schema import Ruleset, RulesetFile

__all__ = ["RulesetSource", "compile_stored", "ruleset_source", "store_ruleset"]


@dataclass(frozen=True)
class RulesetSource:
    root: str  # the root file as displayed when read ("rulesets/acme.bareme")
    name: str | None
    files: tuple[tuple[str, str], ...]  # (path relative to the root's directory, text), sorted
    sha256: str


def _relative(path: Path, base: Path) -> str:
    return PurePosixPath(Path(os.path.relpath(path, base)).as_posix()).as_posix()


def _digest(root_name: str, files: tuple[tuple[str, str], ...]) -> str:
    h = hashlib.sha256()
    h.update(b"bareme-ruleset-v1\0root\0" + root_name.encode() + b"\0")
    for path, text in files:
        data = text.encode("utf-8")
        h.update(path.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


def ruleset_source(compiled: CompiledRuleset) -> RulesetSource:
    """The files of a compiled ruleset (sources as loaded, plus referenced data files)."""
    program = compiled.program
    root_dir = Path(program.root).resolve().parent
    files: dict[str, str] = {}
    for display, text in program.sources.items():
        files[_relative(Path(display).resolve(), root_dir)] = text
    for decl in program.decls():
        if not isinstance(decl, nodes.BlockDecl):
            continue
        value = getattr(decl.first("file"), "value", None)
        if not isinstance(value, str):
            continue
        target = (Path(decl.span.file).resolve().parent / value).resolve()
        try:
            text = target.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue  # a missing data file is the checker's business, not the store's
        files.setdefault(_relative(target, root_dir), text)
    ordered = tuple(sorted(files.items()))
    root_name = _relative(Path(program.root).resolve(), root_dir)
    return RulesetSource(
        root=program.root,
        name=compiled.catalogue.name,
        files=ordered,
        sha256=_digest(root_name, ordered),
    )


def store_ruleset(session: Session, source: RulesetSource) -> Ruleset:
    """The stored version with this content, inserted when new (safe against a concurrent
    insert of the same version)."""
    found = session.scalars(select(Ruleset).where(Ruleset.sha256 == source.sha256)).first()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            ruleset = Ruleset(
                sha256=source.sha256,
                name=source.name,
                root=source.root,
                created_at=dt.datetime.now(dt.UTC),
            )
            ruleset.files = [
                RulesetFile(
                    path=path, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), text=text
                )
                for path, text in source.files
            ]
            session.add(ruleset)
            session.flush()
        return ruleset
    except IntegrityError:
        return session.scalars(select(Ruleset).where(Ruleset.sha256 == source.sha256)).one()


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def compile_stored(ruleset: Ruleset) -> CompiledRuleset:
    """Compile a stored version from its stored texts (file names in diagnostics and traces
    are the ones it had when stored, relative paths)."""
    root = PurePosixPath(Path(ruleset.root).as_posix())
    root_parts = [p for p in root.parts[:-1] if p not in ("/", "..", ".")]
    if root.is_absolute():
        root_parts = []
    climb = max(
        (sum(1 for part in PurePosixPath(f.path).parts if part == "..") for f in ruleset.files),
        default=0,
    )
    base_parts = [f"up{i}" for i in range(max(0, climb - len(root_parts)))] + root_parts
    with tempfile.TemporaryDirectory(prefix="bareme-ruleset-") as tmp:
        base = Path(tmp).joinpath(*base_parts)
        for f in ruleset.files:
            target = (base / f.path).resolve()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.text, encoding="utf-8")
        root_file = base / root.name
        with _working_directory(Path(tmp)):
            return compile_ruleset(root_file.relative_to(tmp))
