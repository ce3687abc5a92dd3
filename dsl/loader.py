"""Load a ruleset and everything it imports into one `Program`.

`load_ruleset(path)` reads the root file, follows `import "x.bareme"` statements (relative to
the importing file) depth-first and returns the files in a deterministic order: every file after
the files it imports, each file once. Problems are collected, never stopped at the first: every
reachable file is parsed even when another one has a syntax error, and a single `RulesetError`
carries all of them:

- E106: an import that cannot be found, read, or decoded as UTF-8 (span: the import statement);
- E105: an import cycle, shown as `a.bareme -> b.bareme -> a.bareme` (span: the import closing
  the cycle);
- every syntax error of every reachable file (E001...E012 from the parser).

File names in spans (and keys of `Program.sources`) are display paths: relative to the current
directory when the file is below it (`rulesets/acme.bareme`), absolute otherwise.

The error raised is a `LoadError` (a `RulesetError`) that also carries the sources read so far,
so a caller can render the diagnostics with their source lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from dsl import nodes as n
from dsl.diagnostics import Diagnostic, RulesetError
from dsl.parser import parse_text

__all__ = ["LoadError", "Program", "display_path", "load_ruleset", "load_text"]


@dataclass(frozen=True)
class Program:
    """A root ruleset and every file it imports, imports first."""

    root: str  # display path of the root file
    files: tuple[n.RulesetFile, ...]
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def decls(self) -> Iterator[n.Decl]:
        """Every declaration of every file, in file order then source order."""
        for f in self.files:
            yield from f.decls

    def root_file(self) -> n.RulesetFile | None:
        for f in self.files:
            if f.path == self.root:
                return f
        return None

    def header(self) -> n.RulesetHeader | None:
        """The `ruleset "..." { ... }` header in force: the root file's, else the first one."""
        root = self.root_file()
        ordered = ([root] if root is not None else []) + list(self.files)
        for f in ordered:
            for d in f.decls:
                if isinstance(d, n.RulesetHeader):
                    return d
        return None


class LoadError(RulesetError):
    """A `RulesetError` raised by the loader; `sources` holds the text of every file read."""

    def __init__(self, diagnostics: list[Diagnostic], sources: Mapping[str, str]):
        super().__init__(diagnostics)
        self.sources: Mapping[str, str] = MappingProxyType(dict(sources))


def display_path(path: Path) -> str:
    """`path` relative to the current directory when it lies below it, else absolute."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(resolved)


def _whole_file_span(file: str) -> n.Span:
    return n.Span(file, 1, 1, 1, 1)


def _read(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, reason) for a file that cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, "not found"
    except IsADirectoryError:
        return None, "is a directory, not a file"
    except PermissionError:
        return None, "cannot be read (permission denied)"
    except OSError as e:
        return None, f"cannot be read ({e.strerror or e})"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"is not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})"
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, None


class _Loader:
    def __init__(self) -> None:
        self.files: list[n.RulesetFile] = []
        self.sources: dict[str, str] = {}
        self.diagnostics: list[Diagnostic] = []
        self.done: set[Path] = set()
        self.stack: list[tuple[Path, str]] = []  # (resolved path, display path) being visited

    def visit(self, text: str, real: Path | None, display: str, base: Path) -> None:
        """Parse one file's text, then its imports (depth-first), then record the file."""
        self.sources[display] = text
        try:
            tree = parse_text(text, display)
        except RulesetError as e:
            self.diagnostics.extend(e.diagnostics)
            if real is not None:
                self.done.add(real)
            return
        if real is not None:
            self.stack.append((real, display))
        for decl in tree.decls:
            if isinstance(decl, n.Import):
                self.follow(decl, base)
        if real is not None:
            self.stack.pop()
            self.done.add(real)
        self.files.append(tree)

    def follow(self, imp: n.Import, base: Path) -> None:
        target = base / imp.path
        real = target.resolve()
        on_stack = [r for r, _ in self.stack]
        if real in on_stack:
            start = on_stack.index(real)
            cycle = [d for _, d in self.stack[start:]] + [self.stack[start][1]]
            self.diagnostics.append(
                Diagnostic(
                    "E105",
                    "import cycle: " + " -> ".join(cycle),
                    imp.span,
                    "a file cannot import itself, directly or through other files",
                )
            )
            return
        if real in self.done:
            return
        display = display_path(target)
        text, problem = _read(real)
        if text is None:
            hint = None
            if problem == "not found":
                hint = f"looked for {display} (imports are relative to the importing file)"
            self.diagnostics.append(
                Diagnostic("E106", f'import "{imp.path}": {display} {problem}', imp.span, hint)
            )
            self.done.add(real)
            return
        self.visit(text, real, display, real.parent)


def load_ruleset(path: Path) -> Program:
    """Load the root ruleset at `path` and its imports. Raises `LoadError` on any problem."""
    path = Path(path)
    display = display_path(path)
    real = path.resolve()
    text, problem = _read(real)
    if text is None:
        raise LoadError(
            [Diagnostic("E106", f"ruleset {display} {problem}", _whole_file_span(display))], {}
        )
    loader = _Loader()
    loader.visit(text, real, display, real.parent)
    if loader.diagnostics:
        raise LoadError(loader.diagnostics, loader.sources)
    return Program(display, tuple(loader.files), MappingProxyType(dict(loader.sources)))


def load_text(text: str, path: str = "<string>") -> Program:
    """A program from text (for tests and tools). Imports are resolved relative to the
    directory of `path` when it names a file, else relative to the current directory."""
    base = Path.cwd() if path.startswith("<") else Path(path).resolve().parent
    real = None if path.startswith("<") else Path(path).resolve()
    loader = _Loader()
    loader.visit(text, real, path, base)
    if loader.diagnostics:
        raise LoadError(loader.diagnostics, loader.sources)
    return Program(path, tuple(loader.files), MappingProxyType(dict(loader.sources)))
