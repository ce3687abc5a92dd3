"""Data-set loader: CSV/JSON files of docs/dataset.md -> validated ``DataSet``.

Contract:
- ``load_dataset`` never raises on bad data. It raises ``DataSetError`` only when the directory
  or the customers file is missing (and ``ValueError`` for an unknown time zone argument).
- Every problem of every row of every file is reported as a ``DataError``
  (``file:row:column: message``, row 1 being the CSV header; for JSON the 1-based object index).
  Row 0 marks a file-level error (unreadable or ambiguous file, unknown file): such a file, or
  its unread part, contributes no rows, so it cannot be skipped with ``skip_invalid``.
- Header problems (missing mandatory column, unknown column, duplicate column) are one error
  per file, at row 1; the rows they invalidate are listed in ``rejected`` with that reason.
- The returned ``DataSet`` holds only valid rows, sorted by identifier (usage by start time,
  then record id), so it does not depend on the order of the rows in the files. Only which
  occurrence of a duplicate identifier is "the second" (and so rejected) depends on row order.
- A row referencing a rejected row (a subscription of a rejected customer) is rejected too,
  with a ``cascade`` error naming the parent.
- ``counts[table]`` reconciles for every table: ``read == accepted + rejected``. Blank lines
  (every cell empty) and empty JSON objects are not rows: they are neither read nor reported.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as stdnum_vat
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
)
from stdnum.exceptions import (
    ValidationError as StdnumValidationError,
)
from stdnum.fr import siren as stdnum_siren

from engine.calendar import DEFAULT_TIMEZONE, get_zone, local_date, parse_date, parse_timestamp
from engine.model import (
    Account,
    Customer,
    DataSet,
    DiscountGrant,
    OneShot,
    QuantityChange,
    Site,
    Subscription,
    UsageRecord,
)
from engine.money import parse_decimal

__all__ = [
    "MANDATORY_COLUMNS",
    "TABLE_COLUMNS",
    "TABLE_NAMES",
    "DataError",
    "DataSetError",
    "FileCount",
    "LoadResult",
    "RejectedRow",
    "RulesetRefs",
    "load_dataset",
]


class DataSetError(Exception):
    """The data set cannot be loaded at all (missing directory or customers file)."""


@dataclass(frozen=True)
class RulesetRefs:
    """What the ruleset declares, to check the data set's references against.

    ``products`` maps a product code to its kind: ``recurring``, ``usage`` or ``one_shot``.
    """

    products: Mapping[str, str] = field(default_factory=dict)
    pricelists: frozenset[str] = frozenset()
    commitments: frozenset[str] = frozenset()
    discounts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DataError:
    """One problem in the data set, printed ``file:row:column: message (did you mean 'x'?)``.

    ``row`` 0 is a file-level error; ``column`` None concerns the whole row. ``cascade`` marks
    an error caused only by a rejected parent row.
    """

    file: str
    row: int
    column: str | None
    message: str
    hint: str | None = None
    cascade: bool = False

    def __str__(self) -> str:
        location = self.file
        if self.row:
            location += f":{self.row}"
        if self.column is not None:
            location += f":{self.column}"
        text = f"{location}: {self.message}"
        if self.hint is not None:
            text += f" (did you mean '{self.hint}'?)"
        return text


@dataclass(frozen=True)
class RejectedRow:
    """A row left out of the data set, with its original cells and every reason."""

    file: str
    row: int
    raw: Mapping[str, str]
    reasons: tuple[DataError, ...]


@dataclass(frozen=True)
class FileCount:
    read: int = 0
    accepted: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        if self.read != self.accepted + self.rejected:
            raise ValueError(f"counts do not reconcile: {self}")


@dataclass(frozen=True)
class LoadResult:
    dataset: DataSet
    errors: tuple[DataError, ...]
    rejected: tuple[RejectedRow, ...]
    counts: Mapping[str, FileCount]
    files: Mapping[str, str] = field(default_factory=dict)  # table -> file name read
    skip_invalid: bool = False

    @property
    def ok(self) -> bool:
        """No error at all."""
        return not self.errors

    @property
    def file_errors(self) -> tuple[DataError, ...]:
        """Errors that no ``skip_invalid`` can skip (unreadable, ambiguous or unknown files)."""
        return tuple(e for e in self.errors if e.row == 0)

    @property
    def billable(self) -> bool:
        """Whether a run may bill from this data set under its ``skip_invalid`` choice."""
        return self.ok or (self.skip_invalid and not self.file_errors)


# --------------------------------------------------------------------------- table layout


@dataclass(frozen=True)
class _Column:
    name: str
    required: bool = False
    kind: str = "text"  # text | decimal | date | timestamp


@dataclass(frozen=True)
class _Table:
    name: str
    key: str | None  # identifier column, unique within the file
    label: str  # singular noun used in messages ("customer")
    columns: tuple[_Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _c(name: str, kind: str = "text", required: bool = False) -> _Column:
    return _Column(name, required, kind)


def _r(name: str, kind: str = "text") -> _Column:
    return _Column(name, True, kind)


_TABLES: tuple[_Table, ...] = (
    _Table(
        "customers",
        "customer_id",
        "customer",
        (
            _r("customer_id"),
            _r("legal_name"),
            _r("country"),
            _c("siren"),
            _c("vat_number"),
            _c("address"),
            _c("postal_code"),
            _c("city"),
            _c("segment"),
            _c("pricelist"),
            _c("iban"),
            _c("email"),
        ),
    ),
    _Table(
        "sites",
        "site_id",
        "site",
        (
            _r("site_id"),
            _r("customer_id"),
            _r("name"),
            _c("address"),
            _c("postal_code"),
            _c("city"),
            _c("country"),
        ),
    ),
    _Table("accounts", "account_id", "account", (_r("account_id"), _r("customer_id"), _r("name"))),
    _Table(
        "subscriptions",
        "subscription_id",
        "subscription",
        (
            _r("subscription_id"),
            _r("customer_id"),
            _r("product"),
            _r("quantity", "decimal"),
            _r("start_date", "date"),
            _c("end_date", "date"),
            _c("site_id"),
            _c("account_id"),
            _c("line_id"),
            _c("unit_price", "decimal"),
            _c("commitment"),
            _c("commitment_start", "date"),
        ),
    ),
    _Table(
        "quantity_changes",
        None,
        "quantity change",
        (_r("subscription_id"), _r("effective_date", "date"), _r("quantity", "decimal")),
    ),
    _Table(
        "one_shots",
        "charge_id",
        "one-shot charge",
        (
            _r("charge_id"),
            _r("customer_id"),
            _r("product"),
            _r("date", "date"),
            _c("quantity", "decimal"),
            _c("unit_price", "decimal"),
            _c("description"),
            _c("site_id"),
            _c("account_id"),
        ),
    ),
    _Table(
        "usage",
        "record_id",
        "usage record",
        (
            _r("record_id"),
            _r("line_id"),
            _r("product"),
            _r("start_time", "timestamp"),
            _r("quantity", "decimal"),
            _c("destination"),
        ),
    ),
    _Table(
        "discounts",
        "grant_id",
        "discount grant",
        (
            _r("grant_id"),
            _r("customer_id"),
            _r("discount"),
            _r("start_date", "date"),
            _c("subscription_id"),
        ),
    ),
)

TABLE_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {t.name: t.column_names for t in _TABLES}
)
MANDATORY_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {t.name: tuple(c.name for c in t.columns if c.required) for t in _TABLES}
)
TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in _TABLES)
_TABLES_BY_NAME = {t.name: t for t in _TABLES}

# --------------------------------------------------------------------------- raw reading

_BOM = b"\xef\xbb\xbf"
_BAD_BYTES = re.compile("[\udc80-\udcff]")


def _has_bad_bytes(text: str) -> bool:
    return _BAD_BYTES.search(text) is not None


def _printable(text: str) -> str:
    """Replace undecodable bytes (kept as surrogate escapes) by U+FFFD."""
    return _BAD_BYTES.sub("\ufffd", text)


@dataclass
class _RawRow:
    number: int
    cells: dict[str, str]  # stripped values by known-or-unknown column name
    raw: Callable[[], dict[str, str]]  # original cells, for the rejected list
    errors: list[DataError] = field(default_factory=list)  # reading errors (reported)
    unreadable: bool = False  # no cells could be read (e.g. a JSON item that is no object)
    failed: set[str] = field(default_factory=set)  # columns whose value is already in error


@dataclass
class _RawFile:
    name: str
    rows: list[_RawRow]
    errors: list[DataError]  # file-level (header, syntax) errors
    header_reasons: list[DataError]  # reasons every row inherits (e.g. missing column)
    unknown_columns: tuple[str, ...] = ()
    missing_columns: frozenset[str] = frozenset()
    bad_bytes: bool = True  # whether some cell may hold undecodable bytes


def _did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    by_folded: dict[str, str] = {}
    for candidate in sorted(candidates):
        by_folded.setdefault(candidate.casefold(), candidate)
    matches = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[matches[0]] if matches else None


def _check_header(
    table: _Table, fname: str, names: list[str], row: int
) -> tuple[list[DataError], list[DataError], tuple[str, ...], frozenset[str]]:
    """File errors, reasons inherited by every row, unknown and missing column names."""
    errors: list[DataError] = []
    reasons: list[DataError] = []
    known = table.column_names
    seen: set[str] = set()
    unknown: list[str] = []
    for position, name in enumerate(names, start=1):
        if _has_bad_bytes(name):
            errors.append(
                DataError(fname, row, None, f"invalid UTF-8 bytes in header column {position}")
            )
            unknown.append(name)
            continue
        if name in seen:
            error = DataError(fname, row, name, f"duplicate column '{name}'")
            errors.append(error)
            reasons.append(error)
            continue
        seen.add(name)
        if name == "":
            errors.append(DataError(fname, row, None, f"empty column name (column {position})"))
            unknown.append(name)
        elif name not in known:
            errors.append(
                DataError(fname, row, name, f"unknown column '{name}'", _did_you_mean(name, known))
            )
            unknown.append(name)
    missing: set[str] = set()
    for column in table.columns:
        if column.required and column.name not in seen:
            error = DataError(fname, row, column.name, f"missing mandatory column '{column.name}'")
            errors.append(error)
            reasons.append(error)
            missing.add(column.name)
    return errors, reasons, tuple(unknown), frozenset(missing)


def _read_csv(table: _Table, path: Path) -> _RawFile:
    fname = path.name
    data = path.read_bytes()
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    text = data.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[_RawRow] = []
    errors: list[DataError] = []
    number = 0
    header: list[str] | None = None
    reasons: list[DataError] = []
    unknown: tuple[str, ...] = ()
    missing: frozenset[str] = frozenset()
    try:
        for record in reader:
            number += 1
            if header is None:
                header = [name.strip() for name in record]
                if not any(header):
                    errors.append(DataError(fname, 0, None, "empty header row"))
                    return _RawFile(fname, [], errors, [])
                errs, reasons, unknown, missing = _check_header(table, fname, header, number)
                errors.extend(errs)
                continue
            if not "".join(record).strip():
                continue  # blank line: not a row
            rows.append(_csv_row(fname, number, header, record))
    except csv.Error as exc:
        errors.append(
            DataError(fname, 0, None, f"unreadable CSV at row {number + 1}: {exc}; rest ignored")
        )
    if header is None:
        errors.append(DataError(fname, 0, None, "empty file: the header row is missing"))
    bad_bytes = _has_bad_bytes(text)
    return _RawFile(fname, rows, errors, reasons, unknown, missing, bad_bytes)


def _csv_row(fname: str, number: int, header: list[str], record: list[str]) -> _RawRow:
    cells: dict[str, str] = {}
    row_errors: list[DataError] = []
    for name, value in zip(header, record, strict=False):
        if name in cells:
            continue  # duplicate column: the header error rejects the row
        cells[name] = value.strip()

    def raw() -> dict[str, str]:
        shown: dict[str, str] = {}
        for position, value in enumerate(record):
            key = _printable(header[position]) if position < len(header) else ""
            if key == "" or key in shown:
                key = f"#{position + 1}"
            shown[key] = _printable(value)
        return shown

    if len(record) != len(header):
        row_errors.append(
            DataError(fname, number, None, f"row has {len(record)} cells, header has {len(header)}")
        )
    return _RawRow(number, cells, raw, row_errors)


class _JsonNumber(str):
    """The literal text of a JSON number (kept exact, never a float)."""


class _JsonObject(dict[str, Any]):
    duplicate_keys: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    obj = _JsonObject()
    duplicates: list[str] = []
    for key, value in pairs:
        if key in obj:
            duplicates.append(key)
        obj[key] = value
    obj.duplicate_keys = tuple(duplicates)
    return obj


class _BadConstant(Exception):
    pass


def _json_constant(name: str) -> Any:
    raise _BadConstant(name)


_STRICT_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _json_number_text(literal: str) -> str:
    """Plain decimal text of a JSON number literal; ValueError when out of range."""
    if _STRICT_DECIMAL.fullmatch(literal):
        return literal
    number = Decimal(literal)
    if not -40 <= number.adjusted() <= 40:
        raise ValueError(f"number {literal} is out of range")
    return format(number, "f")


def _render_json_value(value: Any) -> str:
    if isinstance(value, str):
        return _printable(str(value))
    if value is None:
        return ""
    return _printable(json.dumps(value, default=str, ensure_ascii=False))


def _read_json(table: _Table, path: Path) -> _RawFile:
    fname = path.name
    data = path.read_bytes()
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    text = data.decode("utf-8", errors="surrogateescape")
    try:
        document = json.loads(
            text,
            parse_float=_JsonNumber,
            parse_int=_JsonNumber,
            parse_constant=_json_constant,
            object_pairs_hook=_json_object,
        )
    except json.JSONDecodeError as exc:
        message = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        return _RawFile(fname, [], [DataError(fname, 0, None, message)], [])
    except _BadConstant as exc:
        message = f"invalid JSON: {exc} is not a number"
        return _RawFile(fname, [], [DataError(fname, 0, None, message)], [])
    except RecursionError:
        return _RawFile(
            fname, [], [DataError(fname, 0, None, "invalid JSON: nested too deeply")], []
        )
    if not isinstance(document, list):
        message = "expected a JSON array of objects at the top level"
        return _RawFile(fname, [], [DataError(fname, 0, None, message)], [])
    known = table.column_names
    rows: list[_RawRow] = []
    for number, item in enumerate(document, start=1):
        if isinstance(item, dict) and all(
            v is None or (isinstance(v, str) and not v.strip()) for v in item.values()
        ):
            continue  # an empty object, like a blank CSV line, is not a row
        rows.append(_json_row(fname, number, item, known))
    return _RawFile(fname, rows, [], [], bad_bytes=_has_bad_bytes(text))


def _json_row(fname: str, number: int, item: Any, known: tuple[str, ...]) -> _RawRow:
    errors: list[DataError] = []
    cells: dict[str, str] = {}
    failed: set[str] = set()
    if not isinstance(item, dict):
        errors.append(DataError(fname, number, None, "expected a JSON object"))
        return _RawRow(number, {}, lambda: {"#1": _render_json_value(item)}, errors, True)

    def raw() -> dict[str, str]:
        return {_printable(k): _render_json_value(v) for k, v in item.items()}

    for key in getattr(item, "duplicate_keys", ()):
        errors.append(DataError(fname, number, _printable(key), f"duplicate key '{key}'"))
    for key, value in item.items():
        if key not in known:
            shown = _printable(key)
            hint = None if _has_bad_bytes(key) else _did_you_mean(key, known)
            errors.append(DataError(fname, number, shown, f"unknown column '{shown}'", hint))
            continue
        if isinstance(value, _JsonNumber):
            try:
                cells[key] = _json_number_text(value)
            except (ValueError, InvalidOperation) as exc:
                errors.append(DataError(fname, number, key, str(exc)))
                failed.add(key)
        elif isinstance(value, str):
            cells[key] = value.strip()
        elif value is None:
            cells[key] = ""
        else:
            if isinstance(value, bool):
                kind = "a boolean"
            elif isinstance(value, dict):
                kind = "an object"
            else:
                kind = "an array"
            errors.append(
                DataError(fname, number, key, f"expected a string or a number, not {kind}")
            )
            failed.add(key)
    return _RawRow(number, cells, raw, errors, failed=failed)


# --------------------------------------------------------------------------- row validation


@dataclass
class _Row:
    table: _Table
    file: str
    number: int
    raw: Callable[[], dict[str, str]]
    values: dict[str, Any]
    errors: list[DataError]  # reported in LoadResult.errors
    reasons: list[DataError]  # header-caused reasons, reported once per file

    @property
    def ok(self) -> bool:
        return not self.errors and not self.reasons

    def error(
        self, column: str | None, message: str, hint: str | None = None, cascade: bool = False
    ) -> None:
        self.errors.append(DataError(self.file, self.number, column, message, hint, cascade))

    @property
    def key(self) -> str | None:
        return None if self.table.key is None else self.values.get(self.table.key)


def _parse_cell(column: _Column, text: str, tz: str) -> Any:
    if column.kind == "decimal":
        return parse_decimal(text)
    if column.kind == "date":
        return parse_date(text)
    if column.kind == "timestamp":
        return parse_timestamp(text, tz)
    return text


def _parse_row(table: _Table, raw_file: _RawFile, raw_row: _RawRow, tz: str) -> _Row:
    row = _Row(
        table,
        raw_file.name,
        raw_row.number,
        raw_row.raw,
        {},
        list(raw_row.errors),
        list(raw_file.header_reasons),
    )
    if raw_row.unreadable:
        return row
    for name in raw_file.unknown_columns:
        if raw_row.cells.get(name, "") != "":
            row.reasons.append(
                DataError(
                    row.file,
                    row.number,
                    _printable(name) or None,
                    "value in an unknown column (fix the header)",
                )
            )
    for column in table.columns:
        if column.name in raw_row.failed:
            continue
        text = raw_row.cells.get(column.name, "")
        if raw_file.bad_bytes and _has_bad_bytes(text):
            row.error(column.name, "invalid UTF-8 bytes (the file must be UTF-8 encoded)")
            continue
        if text == "":
            if column.required and column.name not in raw_file.missing_columns:
                row.error(column.name, "required value is missing")
            row.values[column.name] = None
            continue
        try:
            row.values[column.name] = _parse_cell(column, text, tz)
        except ValueError as exc:
            row.error(column.name, str(exc))
    return row


_COUNTRY_RE = re.compile(r"[A-Z]{2}")
_EMAIL_RE = re.compile(r"[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+")
_STDNUM_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (InvalidChecksum, "checksum"),
    (InvalidLength, "length"),
    (InvalidFormat, "format"),
    (InvalidComponent, "country or component"),
)


def _stdnum_reason(exc: Exception) -> str:
    for kind, reason in _STDNUM_REASONS:
        if isinstance(exc, kind):
            return reason
    return "invalid"


def _check_legal_id(row: _Row, column: str, label: str, module: Any) -> str | None:
    value = row.values.get(column)
    if value is None:
        return None
    try:
        compact: str = module.validate(value)
    except StdnumValidationError as exc:
        row.error(column, f"invalid {label} '{value}' ({_stdnum_reason(exc)})")
        return None
    row.values[column] = compact
    return compact


def _check_country(row: _Row, column: str) -> None:
    value = row.values.get(column)
    if value is not None and not _COUNTRY_RE.fullmatch(value):
        hint = value.upper() if _COUNTRY_RE.fullmatch(value.upper()) else None
        row.error(column, f"invalid country '{value}': expected an ISO 3166-1 alpha-2 code", hint)


def _check_not_negative(row: _Row, column: str) -> None:
    value = row.values.get(column)
    if value is not None and value < 0:
        row.error(column, f"{column} must be >= 0, not {value}")


class _Checker:
    """Row checks that need the ruleset references or the other files."""

    def __init__(self, refs: RulesetRefs | None) -> None:
        self.refs = refs
        self.first: dict[str, dict[str, _Row]] = {}  # table -> key -> first row with that key

    # ---------------------------------------------------------------- ruleset references
    def product(self, row: _Row, kind: str) -> None:
        code = row.values.get("product")
        if self.refs is None or code is None:
            return
        products = self.refs.products
        if code not in products:
            same_kind = [p for p, k in products.items() if k == kind]
            hint = _did_you_mean(code, same_kind) or _did_you_mean(code, products)
            row.error("product", f"unknown product '{code}'", hint)
        elif products[code] != kind:
            wanted = kind.replace("_", "-")
            actual = products[code].replace("_", "-")
            row.error("product", f"product '{code}' is a {actual} product, not a {wanted} one")

    def ruleset_name(self, row: _Row, column: str, label: str, names: frozenset[str]) -> None:
        value = row.values.get(column)
        if self.refs is None or value is None or value in names:
            return
        row.error(column, f"unknown {label} '{value}'", _did_you_mean(value, names))

    # ---------------------------------------------------------------- file references
    def parent(self, row: _Row, column: str, table: str) -> _Row | None:
        """The accepted parent row referenced by ``column``; records the error otherwise."""
        key = row.values.get(column)
        if key is None:
            return None
        label = _TABLES_BY_NAME[table].label
        parent = self.first.get(table, {}).get(key)
        if parent is None:
            row.error(column, f"unknown {label} '{key}'")
            return None
        if not parent.ok:
            row.error(
                column,
                f"{label} '{key}' is rejected ({parent.file} row {parent.number})",
                cascade=True,
            )
            return None
        return parent

    def same_customer(self, row: _Row, column: str, table: str) -> _Row | None:
        parent = self.parent(row, column, table)
        if parent is None:
            return None
        owner = parent.values.get("customer_id")
        mine = row.values.get("customer_id")
        if mine is not None and owner != mine:
            label = _TABLES_BY_NAME[table].label
            row.error(
                column,
                f"{label} '{parent.key}' belongs to customer '{owner}', not '{mine}'",
            )
        return parent

    # ---------------------------------------------------------------- per table
    def customers(self, row: _Row) -> None:
        _check_country(row, "country")
        siren = _check_legal_id(row, "siren", "SIREN", stdnum_siren)
        if (
            row.values.get("country") == "FR"
            and row.values.get("siren") is None
            and not any(e.column == "siren" for e in row.errors)
        ):
            row.error("siren", "SIREN is mandatory for a French customer")
        vat = _check_legal_id(row, "vat_number", "VAT number", stdnum_vat)
        if siren and vat and vat.startswith("FR") and vat[4:].isdigit() and vat[4:] != siren:
            row.error("vat_number", f"VAT number '{vat}' does not match SIREN '{siren}'")
        _check_legal_id(row, "iban", "IBAN", stdnum_iban)
        email = row.values.get("email")
        if email is not None:
            for address in re.split(r"\s*[;,]\s*", email):
                if not _EMAIL_RE.fullmatch(address):
                    row.error("email", f"invalid email address '{address}'")
        if self.refs is not None:
            self.ruleset_name(row, "pricelist", "price list", self.refs.pricelists)

    def sites(self, row: _Row) -> None:
        _check_country(row, "country")
        self.parent(row, "customer_id", "customers")

    def accounts(self, row: _Row) -> None:
        self.parent(row, "customer_id", "customers")

    def subscriptions(self, row: _Row) -> None:
        v = row.values
        self.product(row, "recurring")
        _check_not_negative(row, "quantity")
        if v.get("start_date") and v.get("end_date") and v["end_date"] < v["start_date"]:
            row.error(
                "end_date", f"end date {v['end_date']} is before start date {v['start_date']}"
            )
        if self.refs is not None:
            self.ruleset_name(row, "commitment", "commitment", self.refs.commitments)
        if v.get("commitment_start") is not None and v.get("commitment") is None:
            row.error("commitment_start", "commitment_start is given without a commitment")
        self.parent(row, "customer_id", "customers")
        self.same_customer(row, "site_id", "sites")
        self.same_customer(row, "account_id", "accounts")

    def quantity_changes(self, row: _Row) -> None:
        _check_not_negative(row, "quantity")
        parent = self.parent(row, "subscription_id", "subscriptions")
        effective = row.values.get("effective_date")
        if parent is None or effective is None:
            return
        start, end = parent.values["start_date"], parent.values.get("end_date")
        if effective < start or (end is not None and effective > end):
            until = "open-ended" if end is None else f"to {end}"
            row.error(
                "effective_date",
                f"effective date {effective} is outside the service dates of subscription "
                f"'{parent.key}' ({start} {until})",
            )

    def one_shots(self, row: _Row) -> None:
        self.product(row, "one_shot")
        if row.values.get("quantity") is None and not any(
            e.column == "quantity" for e in row.errors
        ):
            row.values["quantity"] = Decimal(1)
        _check_not_negative(row, "quantity")
        self.parent(row, "customer_id", "customers")
        self.same_customer(row, "site_id", "sites")
        self.same_customer(row, "account_id", "accounts")

    def usage(self, row: _Row) -> None:
        self.product(row, "usage")
        _check_not_negative(row, "quantity")

    def discounts(self, row: _Row) -> None:
        if self.refs is not None:
            self.ruleset_name(row, "discount", "discount", self.refs.discounts)
        self.parent(row, "customer_id", "customers")
        self.same_customer(row, "subscription_id", "subscriptions")


def _check_duplicates(rows: list[_Row], table: _Table) -> dict[str, _Row]:
    """Reject second and later occurrences of a key; return key -> first row."""
    first: dict[str, _Row] = {}
    if table.key is not None:
        for row in rows:
            key = row.key
            if key is None:
                continue
            if key in first:
                row.error(
                    table.key,
                    f"duplicate {table.key} '{key}' (first at row {first[key].number})",
                )
            else:
                first[key] = row
    elif table.name == "quantity_changes":
        seen: dict[tuple[str, date], _Row] = {}
        for row in rows:
            sub, effective = row.values.get("subscription_id"), row.values.get("effective_date")
            if sub is None or effective is None:
                continue
            earlier = seen.get((sub, effective))
            if earlier is not None:
                row.error(
                    "effective_date",
                    f"duplicate quantity change of subscription '{sub}' on {effective} "
                    f"(first at row {earlier.number})",
                )
            else:
                seen[(sub, effective)] = row
    return first


def _check_line_overlaps(rows: list[_Row]) -> None:
    """A line may belong to one subscription at a time: later overlapping rows are errors."""
    by_line: dict[str, list[_Row]] = {}
    for row in rows:
        v = row.values
        line, start = v.get("line_id"), v.get("start_date")
        if line is None or start is None:
            continue
        end = v.get("end_date")
        if end is not None and end < start:
            continue
        for earlier in by_line.get(line, []):
            e_start, e_end = earlier.values["start_date"], earlier.values.get("end_date")
            if (end is None or e_start <= end) and (e_end is None or start <= e_end):
                row.error(
                    "line_id",
                    f"line '{line}' is already used by subscription '{earlier.key}' "
                    f"(row {earlier.number}) on overlapping dates",
                )
                break
        by_line.setdefault(line, []).append(row)


def _check_usage_lines(usage: list[_Row], subscriptions: list[_Row], tz: str) -> None:
    """Reject usage whose line is only on rejected subscriptions at that time.

    A line on no subscription at all is left to the run's anomaly report (phantom line).
    """
    accepted: dict[str, list[_Row]] = {}
    rejected: dict[str, list[_Row]] = {}
    for sub in subscriptions:
        line = sub.values.get("line_id")
        if line is not None:
            (accepted if sub.ok else rejected).setdefault(line, []).append(sub)
    if not rejected:
        return

    def covers(sub: _Row, day: date) -> bool:
        """Whether ``sub`` serves ``day``; wrong or unreadable dates cover every day."""
        if any(e.column in ("start_date", "end_date") for e in sub.errors):
            return True
        start, end = sub.values.get("start_date"), sub.values.get("end_date")
        return (start is None or start <= day) and (end is None or day <= end)

    for row in usage:
        line = row.values.get("line_id")
        if line is None or line not in rejected:
            continue
        when: datetime | None = row.values.get("start_time")
        if when is None:
            continue  # the record is rejected for its own timestamp already
        day = local_date(when, tz)
        if any(covers(s, day) for s in accepted.get(line, [])):
            continue
        for sub in rejected[line]:
            if covers(sub, day):
                row.error(
                    "line_id",
                    f"line '{line}' belongs to subscription '{sub.key}', which is rejected "
                    f"({sub.file} row {sub.number})",
                    cascade=True,
                )
                break


# --------------------------------------------------------------------------- building

_MODELS: dict[str, type[Any]] = {
    "customers": Customer,
    "sites": Site,
    "accounts": Account,
    "subscriptions": Subscription,
    "quantity_changes": QuantityChange,
    "one_shots": OneShot,
    "usage": UsageRecord,
    "discounts": DiscountGrant,
}

_SORT_KEYS: dict[str, Callable[[Any], Any]] = {
    "customers": lambda m: m.customer_id,
    "sites": lambda m: m.site_id,
    "accounts": lambda m: m.account_id,
    "subscriptions": lambda m: m.subscription_id,
    "quantity_changes": lambda m: (m.subscription_id, m.effective_date),
    "one_shots": lambda m: m.charge_id,
    "usage": lambda m: (m.start_time, m.record_id),
    "discounts": lambda m: m.grant_id,
}


def _build(row: _Row, extra: Mapping[str, Any] | None = None) -> Any:
    values = dict(row.values)
    if extra:
        values.update(extra)
    if row.table.name == "usage":
        # Hot path (millions of records): every value was parsed and typed by the loader.
        return UsageRecord.model_construct(**values)
    try:
        return _MODELS[row.table.name](**values)
    except ValidationError as exc:  # defensive: checks above should make this unreachable
        first = exc.errors()[0]
        column = str(first["loc"][0]) if first.get("loc") else None
        row.error(column, f"invalid value: {first.get('msg', exc)}")
        return None


def _find_file(directory: Path, table: _Table) -> tuple[Path | None, DataError | None]:
    csv_path = directory / f"{table.name}.csv"
    json_path = directory / f"{table.name}.json"
    if csv_path.is_file() and json_path.is_file():
        message = (
            f"both {csv_path.name} and {json_path.name} exist: the data set is ambiguous, "
            "remove one"
        )
        return None, DataError(csv_path.name, 0, None, message)
    if csv_path.is_file():
        return csv_path, None
    if json_path.is_file():
        return json_path, None
    return None, None


def _unknown_files(directory: Path) -> list[DataError]:
    expected = [f"{t.name}.{ext}" for t in _TABLES for ext in ("csv", "json")]
    errors: list[DataError] = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in {".csv", ".json"} and path.name not in expected:
            name = _printable(path.name)
            errors.append(
                DataError(
                    name,
                    0,
                    None,
                    "unknown file in the data set (its rows would be ignored)",
                    _did_you_mean(name, expected),
                )
            )
    return errors


def load_dataset(
    directory: Path,
    refs: RulesetRefs | None = None,
    *,
    skip_invalid: bool = False,
    tz: str = DEFAULT_TIMEZONE,
) -> LoadResult:
    """Load and validate the data set in ``directory`` (see the module docstring)."""
    get_zone(tz)  # ValueError early for a bad argument
    directory = Path(directory)
    if not directory.is_dir():
        raise DataSetError(f"data set directory not found: {directory}")
    if not any((directory / f"customers.{ext}").is_file() for ext in ("csv", "json")):
        raise DataSetError(f"customers.csv (or customers.json) not found in {directory}")

    checker = _Checker(refs)
    errors: list[DataError] = _unknown_files(directory)
    file_errors: dict[str, list[DataError]] = {}
    rows_by_table: dict[str, list[_Row]] = {}
    files: dict[str, str] = {}
    for table in _TABLES:
        path, ambiguity = _find_file(directory, table)
        file_errors[table.name] = [] if ambiguity is None else [ambiguity]
        rows: list[_Row] = []
        if path is not None:
            files[table.name] = path.name
            try:
                raw_file = (
                    _read_json(table, path) if path.suffix == ".json" else _read_csv(table, path)
                )
            except OSError as exc:
                raw_file = _RawFile(
                    path.name, [], [DataError(path.name, 0, None, f"cannot read: {exc}")], []
                )
            file_errors[table.name].extend(raw_file.errors)
            rows = [_parse_row(table, raw_file, raw_row, tz) for raw_row in raw_file.rows]
        check: Callable[[_Row], None] = getattr(checker, table.name)
        for row in rows:
            check(row)
        if table.name == "subscriptions":
            _check_line_overlaps(rows)
        if table.name == "usage":
            _check_usage_lines(rows, rows_by_table.get("subscriptions", []), tz)
        checker.first[table.name] = _check_duplicates(rows, table)
        rows_by_table[table.name] = rows

    models: dict[str, list[Any]] = {}
    changes_by_sub: dict[str, list[QuantityChange]] = {}
    build_order = [
        "customers",
        "sites",
        "accounts",
        "quantity_changes",
        "subscriptions",
        "one_shots",
        "usage",
        "discounts",
    ]
    for name in build_order:
        built: list[Any] = []
        for row in rows_by_table[name]:
            if not row.ok:
                continue
            extra = None
            if name == "subscriptions":
                extra = {"quantity_changes": tuple(changes_by_sub.get(row.key or "", ()))}
            model = _build(row, extra)
            if model is not None:
                built.append(model)
                if name == "quantity_changes":
                    changes_by_sub.setdefault(model.subscription_id, []).append(model)
        built.sort(key=_SORT_KEYS[name])
        models[name] = built

    counts: dict[str, FileCount] = {}
    rejected: list[RejectedRow] = []
    for table in _TABLES:
        rows = rows_by_table[table.name]
        bad = [row for row in rows if not row.ok]
        counts[table.name] = FileCount(len(rows), len(rows) - len(bad), len(bad))
        errors.extend(file_errors[table.name])
        position = {name: index for index, name in enumerate(table.column_names)}
        for row in rows:
            row.errors.sort(
                key=lambda e: -1 if e.column is None else position.get(e.column, len(position))
            )
            errors.extend(row.errors)
        for row in bad:
            rejected.append(
                RejectedRow(row.file, row.number, row.raw(), (*row.reasons, *row.errors))
            )

    dataset = DataSet(
        customers=tuple(models["customers"]),
        sites=tuple(models["sites"]),
        accounts=tuple(models["accounts"]),
        subscriptions=tuple(models["subscriptions"]),
        quantity_changes=tuple(models["quantity_changes"]),
        one_shots=tuple(models["one_shots"]),
        usage=tuple(models["usage"]),
        discounts=tuple(models["discounts"]),
    )
    return LoadResult(
        dataset=dataset,
        errors=tuple(errors),
        rejected=tuple(rejected),
        counts=MappingProxyType(counts),
        files=MappingProxyType(files),
        skip_invalid=skip_invalid,
    )
