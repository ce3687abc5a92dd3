"""Diagnostics: errors as values, rendered in one place.

Every stage (parser, import resolver, checker, data loader) reports `Diagnostic`s with a stable
code, a message, a source span and an optional hint, and collects them instead of stopping at
the first. `render_text` prints the `file:line:col: error CODE: message` form with the source
line and a caret; `render_json` gives the same fields as data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dsl.nodes import Span


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    hint: str | None = None
    severity: str = "error"  # error | warning

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.file, self.span.line, self.span.column, self.code)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


class RulesetError(Exception):
    """Raised by the parser, loader and checker: carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(sorted(diagnostics, key=Diagnostic.sort_key))
        super().__init__("\n".join(f"{d.span}: {d.code}: {d.message}" for d in self.diagnostics))


def source_line(sources: Mapping[str, str], file: str, line: int) -> str | None:
    text = sources.get(file)
    if text is None or line < 1:
        return None
    lines = text.splitlines()
    if line > len(lines):
        return ""
    return lines[line - 1]


def render_one(d: Diagnostic, sources: Mapping[str, str]) -> str:
    out = [f"{d.span.file}:{d.span.line}:{d.span.column}: {d.severity} {d.code}: {d.message}"]
    src = source_line(sources, d.span.file, d.span.line)
    if src is not None:
        shown = src.replace("\t", " ")
        out.append(f"    {shown}")
        width = 1
        if d.span.end_line == d.span.line and d.span.end_column > d.span.column:
            width = d.span.end_column - d.span.column
        width = max(1, min(width, max(1, len(shown) - d.span.column + 1)))
        out.append("    " + " " * max(0, d.span.column - 1) + "^" * width)
    if d.hint:
        out.append(f"    hint: {d.hint}")
    return "\n".join(out)


def render_text(diags: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    return "\n".join(render_one(d, sources) for d in sorted(diags, key=Diagnostic.sort_key))


def render_json(diags: Iterable[Diagnostic]) -> str:
    items = [d.as_dict() for d in sorted(diags, key=Diagnostic.sort_key)]
    return json.dumps({"errors": items, "count": len(items)}, indent=2, ensure_ascii=False)
