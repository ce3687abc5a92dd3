"""The pipeline in one place: load and check a ruleset, load a data set against it, bill.

parse -> check -> compile (catalogue + pricer) -> evaluate. Each step raises its own error type
carrying every diagnostic (`RulesetError`) or returns every data error (`LoadResult.errors`); the
command line renders them, nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dsl.diagnostics import Diagnostic, RulesetError
from dsl.loader import Program, load_ruleset
from engine.catalogue import Catalogue, build_catalogue
from engine.dataset import LoadResult, RulesetRefs, load_dataset
from engine.evaluator.backend import make_pricer
from engine.evaluator.run import bill
from engine.invoice import RunResult


@dataclass(frozen=True)
class CompiledRuleset:
    program: Program
    catalogue: Catalogue
    warnings: tuple[Diagnostic, ...] = ()


def check_program(program: Program) -> list[Diagnostic]:
    from dsl.checker import check

    return list(check(program))


def compile_ruleset(path: Path) -> CompiledRuleset:
    """Load, check and lower a ruleset; raises RulesetError with every error found."""
    program = load_ruleset(path)
    diagnostics = check_program(program)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise RulesetError(errors)
    warnings = tuple(d for d in diagnostics if d.severity != "error")
    return CompiledRuleset(program, build_catalogue(program), warnings)


def refs_of(catalogue: Catalogue) -> RulesetRefs:
    return RulesetRefs(
        products={code: p.kind for code, p in catalogue.products.items()},
        pricelists=frozenset(
            {lst for (lst, _product) in catalogue.prices.versions if lst is not None}
        ),
        commitments=frozenset(catalogue.commitments),
        discounts=frozenset(catalogue.discounts),
    )


def load_data(directory: Path, catalogue: Catalogue, skip_invalid: bool = False) -> LoadResult:
    return load_dataset(directory, refs_of(catalogue), skip_invalid=skip_invalid, tz=catalogue.timezone)


def run_billing(
    compiled: CompiledRuleset, data: LoadResult, period: str, backend: str = "compiled"
) -> RunResult:
    return bill(compiled.catalogue, data.dataset, period, make_pricer(backend))
