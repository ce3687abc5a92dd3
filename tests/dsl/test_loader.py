"""Loading a ruleset and its imports: order, display paths, every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl import nodes as n
from dsl.checker import check_paths
from dsl.diagnostics import RulesetError
from dsl.loader import LoadError, Program, load_ruleset, load_text

HEADER = 'ruleset "T" {\n  currency EUR\n}\n'


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_ruleset(path)
    return info.value


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path so display paths are short and relative."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_imports_come_first_each_file_once(here: Path) -> None:
    write(
        here,
        "rulesets/acme.bareme",
        HEADER + 'import "lib/a.bareme"\nimport "lib/b.bareme"\nfamily root "R"\n',
    )
    write(here, "rulesets/lib/a.bareme", 'import "b.bareme"\nfamily a "A"\n')
    write(here, "rulesets/lib/b.bareme", 'family b "B"\n')
    program = load_ruleset(Path("rulesets/acme.bareme"))
    assert program.root == "rulesets/acme.bareme"
    assert [f.path for f in program.files] == [
        "rulesets/lib/b.bareme",
        "rulesets/lib/a.bareme",
        "rulesets/acme.bareme",
    ]
    families = [d.name for d in program.decls() if isinstance(d, n.FamilyDecl)]
    assert families == ["b", "a", "root"]
    assert set(program.sources) == {f.path for f in program.files}
    assert program.sources["rulesets/lib/b.bareme"] == 'family b "B"\n'
    header = program.header()
    assert header is not None and header.name == "T"


def test_display_paths_are_relative_to_the_current_directory(here: Path) -> None:
    path = write(here, "rulesets/acme.bareme", HEADER + "vat standard 20%\n")
    program = load_ruleset(path.resolve())  # given absolute, shown relative
    assert program.root == "rulesets/acme.bareme"
    vat = next(d for d in program.decls() if isinstance(d, n.VatDecl))
    assert vat.span.file == "rulesets/acme.bareme"
    assert (vat.span.line, vat.span.column) == (4, 1)


def test_paths_outside_the_current_directory_are_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "outside/x.bareme", 'family f "F"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    program = load_ruleset(path)
    assert program.root == str(path.resolve())


def test_missing_import_points_at_the_import_statement(here: Path) -> None:
    write(here, "main.bareme", HEADER + 'family f "F"\n  import "nope.bareme"\n')
    err = load_error(here / "main.bareme")
    [d] = err.diagnostics
    assert d.code == "E106"
    assert (d.span.file, d.span.line, d.span.column) == ("main.bareme", 5, 3)
    assert 'import "nope.bareme"' in d.message and "not found" in d.message
    assert d.hint == "looked for nope.bareme (imports are relative to the importing file)"
    assert err.sources["main.bareme"].startswith("ruleset")


def test_unreadable_and_non_utf8_imports(here: Path) -> None:
    write(here, "main.bareme", 'import "latin1.bareme"\nimport "dir.bareme"\n')
    write(here, "latin1.bareme", 'family f "Téléphonie"\n'.encode("latin-1"))
    (here / "dir.bareme").mkdir()
    err = load_error(here / "main.bareme")
    codes = [(d.code, d.span.line) for d in err.diagnostics]
    assert codes == [("E106", 1), ("E106", 2)]
    assert "is not UTF-8 (byte 0xe9" in err.diagnostics[0].message
    assert "is a directory" in err.diagnostics[1].message


def test_missing_root_file(here: Path) -> None:
    [d] = load_error(here / "absent.bareme").diagnostics
    assert d.code == "E106"
    assert d.span.file == "absent.bareme"
    assert "not found" in d.message


def test_import_cycle_shows_the_cycle(here: Path) -> None:
    write(here, "a.bareme", 'import "b.bareme"\nfamily a "A"\n')
    write(here, "b.bareme", 'family b "B"\nimport "a.bareme"\n')
    [d] = load_error(here / "a.bareme").diagnostics
    assert d.code == "E105"
    assert d.message == "import cycle: a.bareme -> b.bareme -> a.bareme"
    assert (d.span.file, d.span.line, d.span.column) == ("b.bareme", 2, 1)


def test_a_file_importing_itself_is_a_cycle(here: Path) -> None:
    write(here, "a.bareme", 'import "./a.bareme"\n')
    [d] = load_error(here / "a.bareme").diagnostics
    assert d.code == "E105"
    assert d.message == "import cycle: a.bareme -> a.bareme"


def test_every_file_is_parsed_and_every_problem_reported(here: Path) -> None:
    write(here, "main.bareme", 'import "one.bareme"\nimport "two.bareme"\nimport "gone.bareme"\n')
    write(here, "one.bareme", "product P { label }\n")
    write(here, "two.bareme", 'family f "F"\nconst X 12\n')
    err = load_error(here / "main.bareme")
    found = {(d.span.file, d.code) for d in err.diagnostics}
    assert found == {("main.bareme", "E106"), ("one.bareme", "E001"), ("two.bareme", "E001")}
    assert set(err.sources) == {"main.bareme", "one.bareme", "two.bareme"}


def test_syntax_error_in_the_root_still_raises(here: Path) -> None:
    write(here, "main.bareme", "product P {\n")
    [d] = load_error(here / "main.bareme").diagnostics
    assert d.code == "E003"
    assert isinstance(load_error(here / "main.bareme"), RulesetError)


def test_byte_order_mark_is_ignored(here: Path) -> None:
    write(here, "bom.bareme", "\ufeff" + 'family f "F"\n')
    program = load_ruleset(here / "bom.bareme")
    assert [type(d) for d in program.decls()] == [n.FamilyDecl]


def test_load_text() -> None:
    program = load_text(HEADER + 'family f "F"\n')
    assert isinstance(program, Program)
    assert program.root == "<string>"
    assert [f.path for f in program.files] == ["<string>"]
    assert [type(d) for d in program.decls()] == [n.RulesetHeader, n.FamilyDecl]
    with pytest.raises(RulesetError) as info:
        load_text("const X 12")
    assert info.value.diagnostics[0].span.file == "<string>"


def test_load_text_resolves_imports_relative_to_the_current_directory(here: Path) -> None:
    write(here, "lib.bareme", 'family f "F"\n')
    program = load_text('import "lib.bareme"\n')
    assert [f.path for f in program.files] == ["lib.bareme", "<string>"]


def test_check_paths_collects_loader_and_checker_diagnostics(here: Path) -> None:
    write(here, "good.bareme", HEADER + 'product P { label "p" kind one_shot price 1 EUR }\n')
    write(here, "bad.bareme", 'import "missing.bareme"\n')
    sources: dict[str, str] = {}
    programs, diags = check_paths([Path("good.bareme"), Path("bad.bareme")], sources)
    assert [p.root for p in programs] == ["good.bareme"]
    assert [(d.span.file, d.code) for d in diags] == [
        ("good.bareme", "E103"),
        ("bad.bareme", "E106"),
    ]
    assert set(sources) == {"good.bareme", "bad.bareme"}
