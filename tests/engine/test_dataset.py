"""Tests of engine.dataset (the loader) and engine.model (the loaded records)."""

from __future__ import annotations

import csv
import json
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from stdnum import luhn

from engine.calendar import Period, month_period
from engine.dataset import (
    MANDATORY_COLUMNS,
    TABLE_COLUMNS,
    TABLE_NAMES,
    DataError,
    DataSetError,
    FileCount,
    LoadResult,
    RulesetRefs,
    load_dataset,
)
from engine.model import Customer, DataSet, QuantityChange, Subscription, UsageRecord

REFS = RulesetRefs(
    products={
        "SIP_TRUNK_10": "recurring",
        "FIBRE_1G": "recurring",
        "VOICE_FR": "usage",
        "SMS": "usage",
        "INSTALL": "one_shot",
        "ROUTER": "one_shot",
    },
    pricelists=frozenset({"standard", "premium"}),
    commitments=frozenset({"engagement_24m", "engagement_36m"}),
    discounts=frozenset({"welcome_10pct", "loyalty"}),
)

SIREN = "732829320"
VAT = "FR44732829320"
IBAN = "FR7630006000011234567890189"
PARIS_WINTER = timezone(timedelta(hours=1))
PARIS_SUMMER = timezone(timedelta(hours=2))

Rows = Sequence[Mapping[str, Any]]


def write_csv(
    directory: Path, name: str, header: Sequence[str], rows: Sequence[Sequence[str]]
) -> None:
    with open(directory / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_table(directory: Path, name: str, rows: Rows) -> None:
    """Write dict rows as CSV with the full header of the table."""
    header = TABLE_COLUMNS[name]
    write_csv(directory, name, header, [[row.get(c, "") for c in header] for row in rows])


_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


def write_json(directory: Path, name: str, rows: Rows, style: int = 0) -> None:
    """Write dict rows as JSON; numeric-looking text becomes JSON numbers (exact literals).

    ``style`` varies how empty values are written: 0 omit the key, 1 ``""``, 2 ``null``.
    """
    objects = []
    for index, row in enumerate(rows):
        members = []
        for key in TABLE_COLUMNS[name]:
            value = row.get(key, "")
            if value == "":
                mode = (style + index) % 3
                if mode == 0:
                    continue
                members.append(f"{json.dumps(key)}: {'null' if mode == 2 else json.dumps('')}")
            elif _JSON_NUMBER.fullmatch(value) and not (len(value) > 1 and value[0] == "0"):
                members.append(f"{json.dumps(key)}: {value}")
            else:
                members.append(f"{json.dumps(key)}: {json.dumps(value)}")
        objects.append("{" + ", ".join(members) + "}")
    (directory / f"{name}.json").write_text("[\n" + ",\n".join(objects) + "\n]\n", "utf-8")


@contextmanager
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def load(directory: Path, refs: RulesetRefs | None = REFS) -> LoadResult:
    return load_dataset(directory, refs)


def error_lines(result: LoadResult) -> list[str]:
    return [str(e) for e in result.errors]


def assert_counts_reconcile(result: LoadResult) -> None:
    assert set(result.counts) == set(TABLE_NAMES)
    for table, count in result.counts.items():
        assert count.read == count.accepted + count.rejected, table
        assert count.rejected == sum(1 for r in result.rejected if r.file.startswith(f"{table}."))
        assert count.accepted == len(getattr(result.dataset, table))


def customer(cid: str, **cells: str) -> dict[str, str]:
    row = {"customer_id": cid, "legal_name": f"Customer {cid}", "country": "FR", "siren": SIREN}
    row.update(cells)
    return row


def subscription(sid: str, cid: str = "C1", **cells: str) -> dict[str, str]:
    row = {
        "subscription_id": sid,
        "customer_id": cid,
        "product": "SIP_TRUNK_10",
        "quantity": "1",
        "start_date": "2026-01-01",
    }
    row.update(cells)
    return row


# --------------------------------------------------------------------------- happy path


def test_loads_a_valid_data_set(tmp_path: Path) -> None:
    write_table(
        tmp_path,
        "customers",
        [
            customer(
                "C1",
                vat_number=VAT,
                iban="FR76 3000 6000 0112 3456 7890 189",
                email="billing@acme.fr",
                pricelist="premium",
                segment="pme",
                address="1 rue de la Paix",
                postal_code="75002",
                city="Paris",
            ),
            customer("C2", country="BE", siren="", vat_number="BE0403019261"),
        ],
    )
    write_table(tmp_path, "sites", [{"site_id": "S-PAR", "customer_id": "C1", "name": "Paris"}])
    write_table(tmp_path, "accounts", [{"account_id": "A1", "customer_id": "C1", "name": "IT"}])
    write_table(
        tmp_path,
        "subscriptions",
        [
            subscription(
                "SUB1",
                quantity="10",
                end_date="2026-12-31",
                site_id="S-PAR",
                account_id="A1",
                line_id="+33140000000",
                unit_price="49.90",
                commitment="engagement_24m",
            ),
            subscription("SUB2", "C2", product="FIBRE_1G", start_date="2026-11-12"),
        ],
    )
    write_table(
        tmp_path,
        "quantity_changes",
        [
            {"subscription_id": "SUB1", "effective_date": "2026-11-20", "quantity": "12"},
            {"subscription_id": "SUB1", "effective_date": "2026-11-10", "quantity": "8"},
        ],
    )
    write_table(
        tmp_path,
        "one_shots",
        [{"charge_id": "OS1", "customer_id": "C1", "product": "INSTALL", "date": "2026-11-03"}],
    )
    write_table(
        tmp_path,
        "usage",
        [
            {
                "record_id": "R2",
                "line_id": "+33140000000",
                "product": "VOICE_FR",
                "start_time": "2026-11-03T14:05:00+01:00",
                "quantity": "125",
                "destination": "+33612345678",
            },
            {
                "record_id": "R1",
                "line_id": "+33140000000",
                "product": "VOICE_FR",
                "start_time": "2026-11-03T09:00",
                "quantity": "60",
            },
        ],
    )
    write_table(
        tmp_path,
        "discounts",
        [
            {
                "grant_id": "G1",
                "customer_id": "C1",
                "discount": "welcome_10pct",
                "start_date": "2026-11-01",
                "subscription_id": "SUB1",
            }
        ],
    )
    result = load(tmp_path)
    assert result.errors == ()
    assert result.ok and result.billable
    assert result.rejected == ()
    assert_counts_reconcile(result)
    assert result.counts["usage"] == FileCount(2, 2, 0)
    assert result.files["customers"] == "customers.csv"

    ds = result.dataset
    c1 = ds.customers_by_id["C1"]
    assert c1.siren == SIREN and c1.vat_number == VAT
    assert c1.iban == IBAN  # compacted
    assert c1.pricelist == "premium" and c1.segment == "pme"
    assert ds.customers_by_id["C2"].siren is None

    sub = ds.subscriptions_by_id["SUB1"]
    assert sub.quantity == Decimal("10") and isinstance(sub.quantity, Decimal)
    assert sub.unit_price == Decimal("49.90")
    assert sub.end_date == date(2026, 12, 31)
    assert sub.effective_commitment_start == date(2026, 1, 1)
    assert [c.effective_date for c in sub.quantity_changes] == [
        date(2026, 11, 10),
        date(2026, 11, 20),
    ]
    assert ds.subscriptions_by_customer["C1"] == (sub,)
    assert ds.subscription_for_line("+33140000000", date(2026, 11, 3)) == sub
    assert ds.subscription_for_line("+33140000000", date(2027, 1, 1)) is None

    assert ds.one_shots[0].quantity == Decimal(1)
    assert [u.record_id for u in ds.usage] == ["R1", "R2"]  # sorted by start time
    r1 = ds.usage[0]
    assert r1.start_time == datetime(2026, 11, 3, 9, 0, tzinfo=PARIS_WINTER)
    assert r1.destination is None
    assert ds.usage_by_line["+33140000000"] == ds.usage
    assert ds.discounts_by_customer["C1"][0].subscription_id == "SUB1"
    assert ds.sites_by_customer["C1"][0].name == "Paris"


def test_missing_directory_or_customers_file_raises(tmp_path: Path) -> None:
    with pytest.raises(DataSetError, match="not found"):
        load(tmp_path / "nope")
    with pytest.raises(DataSetError, match="customers"):
        load(tmp_path)
    write_table(tmp_path, "customers", [])
    assert load(tmp_path).ok


# --------------------------------------------------------------------------- every error


def test_reports_every_error_of_a_file_with_several_bad_rows(tmp_path: Path) -> None:
    write_csv(
        tmp_path,
        "customers",
        [
            "customer_id",
            "legal_name",
            "country",
            "siren",
            "vat_number",
            "iban",
            "email",
            "pricelist",
        ],
        [
            ["C1", "Acme", "FR", SIREN, VAT, IBAN, "billing@acme.fr", "standard"],
            ["C2", "", "FR", "123", "", "", "", ""],
            ["C3", "Gamma", "fr", "", "", "", "", ""],
            ["C4", "Delta", "FR", "", "FR00000000000", IBAN[:-1] + "8", "not-an-email", "premum"],
            ["C1", "Acme again", "BE", "", "", "", "", ""],
            ["", "No id", "BE", "", "XX123", "", "", ""],
            ["C7", "Epsilon", "FR", "732829321", "FR12345", "", "", ""],
            ["C8", "Zeta", "FR", SIREN, "FR40303265045", "", "a@b.fr; c@d", ""],
        ],
    )
    result = load(tmp_path)
    assert error_lines(result) == [
        "customers.csv:3:legal_name: required value is missing",
        "customers.csv:3:siren: invalid SIREN '123' (length)",
        "customers.csv:4:country: invalid country 'fr': expected an ISO 3166-1 alpha-2 code"
        " (did you mean 'FR'?)",
        "customers.csv:5:siren: SIREN is mandatory for a French customer",
        "customers.csv:5:vat_number: invalid VAT number 'FR00000000000' (checksum)",
        "customers.csv:5:pricelist: unknown price list 'premum' (did you mean 'premium'?)",
        "customers.csv:5:iban: invalid IBAN 'FR7630006000011234567890188' (checksum)",
        "customers.csv:5:email: invalid email address 'not-an-email'",
        "customers.csv:6:customer_id: duplicate customer_id 'C1' (first at row 2)",
        "customers.csv:7:customer_id: required value is missing",
        "customers.csv:7:vat_number: invalid VAT number 'XX123' (country or component)",
        "customers.csv:8:siren: invalid SIREN '732829321' (checksum)",
        "customers.csv:8:vat_number: invalid VAT number 'FR12345' (length)",
        "customers.csv:9:vat_number: VAT number 'FR40303265045' does not match SIREN '732829320'",
        "customers.csv:9:email: invalid email address 'c@d'",
    ]
    assert result.counts["customers"] == FileCount(read=8, accepted=1, rejected=7)
    assert [c.customer_id for c in result.dataset.customers] == ["C1"]
    assert [r.row for r in result.rejected] == [3, 4, 5, 6, 7, 8, 9]
    rejected_c4 = result.rejected[2]
    assert rejected_c4.file == "customers.csv"
    assert rejected_c4.raw["vat_number"] == "FR00000000000"
    assert len(rejected_c4.reasons) == 5
    assert not result.billable
    assert_counts_reconcile(result)


def test_reports_errors_of_every_file_with_references_and_cascades(tmp_path: Path) -> None:
    write_table(tmp_path, "customers", [customer("C1"), customer("C2", siren="")])
    write_table(
        tmp_path,
        "sites",
        [
            {"site_id": "S1", "customer_id": "C1", "name": "Paris"},
            {"site_id": "S2", "customer_id": "C9", "name": "Lyon"},
            {"site_id": "S3", "customer_id": "C1", "name": "Nice", "country": "France"},
        ],
    )
    write_table(tmp_path, "accounts", [{"account_id": "A2", "customer_id": "C2", "name": "IT"}])
    write_table(
        tmp_path,
        "subscriptions",
        [
            subscription("SUB1", line_id="L1", end_date="2026-06-30"),
            subscription("SUB2", "C2", line_id="L2"),
            subscription(
                "SUB3",
                product="SIP_TRUNK_1O",
                quantity="-2",
                start_date="2026-02-30",
                commitment="engagement_12m",
            ),
            subscription("SUB4", site_id="S2", account_id="A2"),
            subscription("SUB5", product="VOICE_FR", quantity="1,5", end_date="2025-12-31"),
            subscription("SUB6", line_id="L1", start_date="2026-06-01", end_date="2026-06-15"),
            subscription("SUB7", site_id="S1", line_id="L1", start_date="2026-07-01"),
            subscription("SUB8", unit_price="1e3", commitment_start="2026-01-01"),
        ],
    )
    write_table(
        tmp_path,
        "quantity_changes",
        [
            {"subscription_id": "SUB1", "effective_date": "2026-03-01", "quantity": "3"},
            {"subscription_id": "SUB1", "effective_date": "2026-07-01", "quantity": "3"},
            {"subscription_id": "SUB1", "effective_date": "2026-03-01", "quantity": "4"},
            {"subscription_id": "SUB2", "effective_date": "2026-03-01", "quantity": "4"},
            {"subscription_id": "SUB9", "effective_date": "2026-03-01", "quantity": "-4"},
        ],
    )
    write_table(
        tmp_path,
        "one_shots",
        [
            {"charge_id": "O1", "customer_id": "C1", "product": "ROUTER", "date": "2026-11-03"},
            {
                "charge_id": "O2",
                "customer_id": "C1",
                "product": "SIP_TRUNK_10",
                "date": "03/11/2026",
                "quantity": "-1",
                "site_id": "S9",
                "account_id": "A2",
            },
        ],
    )
    write_table(
        tmp_path,
        "usage",
        [
            {
                "record_id": "U1",
                "line_id": "L1",
                "product": "VOICE_FR",
                "start_time": "2026-03-29T02:30",
                "quantity": "60",
            },
            {
                "record_id": "U2",
                "line_id": "L2",
                "product": "SMS",
                "start_time": "2026-10-25T02:30",
                "quantity": "1",
            },
            {
                "record_id": "U3",
                "line_id": "PHANTOM",
                "product": "SMSS",
                "start_time": "2026-10-25T02:30:00",
                "quantity": "1",
            },
            {
                "record_id": "U1",
                "line_id": "L1",
                "product": "VOICE_FR",
                "start_time": "2026-11-03T10:00:00Z",
                "quantity": "60",
            },
        ],
    )
    write_table(
        tmp_path,
        "discounts",
        [
            {
                "grant_id": "G1",
                "customer_id": "C1",
                "discount": "loyalty",
                "start_date": "2026-01-01",
            },
            {
                "grant_id": "G2",
                "customer_id": "C1",
                "discount": "welcome10",
                "start_date": "2026-01-01",
                "subscription_id": "SUB2",
            },
        ],
    )
    result = load(tmp_path)
    assert error_lines(result) == [
        "customers.csv:3:siren: SIREN is mandatory for a French customer",
        "sites.csv:3:customer_id: unknown customer 'C9'",
        "sites.csv:4:country: invalid country 'France': expected an ISO 3166-1 alpha-2 code",
        "accounts.csv:2:customer_id: customer 'C2' is rejected (customers.csv row 3)",
        "subscriptions.csv:3:customer_id: customer 'C2' is rejected (customers.csv row 3)",
        "subscriptions.csv:4:product: unknown product 'SIP_TRUNK_1O' (did you mean 'SIP_TRUNK_10'?)",
        "subscriptions.csv:4:quantity: quantity must be >= 0, not -2",
        "subscriptions.csv:4:start_date: invalid date '2026-02-30': no such day",
        "subscriptions.csv:4:commitment: unknown commitment 'engagement_12m'"
        " (did you mean 'engagement_24m'?)",
        "subscriptions.csv:5:site_id: site 'S2' is rejected (sites.csv row 3)",
        "subscriptions.csv:5:account_id: account 'A2' is rejected (accounts.csv row 2)",
        "subscriptions.csv:6:product: product 'VOICE_FR' is a usage product, not a recurring one",
        "subscriptions.csv:6:quantity: invalid decimal '1,5': use a dot as decimal separator,"
        " not a comma",
        "subscriptions.csv:6:end_date: end date 2025-12-31 is before start date 2026-01-01",
        "subscriptions.csv:7:line_id: line 'L1' is already used by subscription 'SUB1' (row 2)"
        " on overlapping dates",
        "subscriptions.csv:9:unit_price: invalid decimal '1e3': exponent notation is not allowed",
        "subscriptions.csv:9:commitment_start: commitment_start is given without a commitment",
        "quantity_changes.csv:3:effective_date: effective date 2026-07-01 is outside the service"
        " dates of subscription 'SUB1' (2026-01-01 to 2026-06-30)",
        "quantity_changes.csv:4:effective_date: duplicate quantity change of subscription 'SUB1'"
        " on 2026-03-01 (first at row 2)",
        "quantity_changes.csv:5:subscription_id: subscription 'SUB2' is rejected"
        " (subscriptions.csv row 3)",
        "quantity_changes.csv:6:subscription_id: unknown subscription 'SUB9'",
        "quantity_changes.csv:6:quantity: quantity must be >= 0, not -4",
        "one_shots.csv:3:product: product 'SIP_TRUNK_10' is a recurring product, not a one-shot one",
        "one_shots.csv:3:date: invalid date '03/11/2026': expected YYYY-MM-DD",
        "one_shots.csv:3:quantity: quantity must be >= 0, not -1",
        "one_shots.csv:3:site_id: unknown site 'S9'",
        "one_shots.csv:3:account_id: account 'A2' is rejected (accounts.csv row 2)",
        "usage.csv:2:start_time: invalid timestamp '2026-03-29T02:30': this local time does not"
        " exist in Europe/Paris (clocks skip it when summer time starts)",
        "usage.csv:3:line_id: line 'L2' belongs to subscription 'SUB2', which is rejected"
        " (subscriptions.csv row 3)",
        "usage.csv:4:product: unknown product 'SMSS' (did you mean 'SMS'?)",
        "usage.csv:5:record_id: duplicate record_id 'U1' (first at row 2)",
        "discounts.csv:3:discount: unknown discount 'welcome10' (did you mean 'welcome_10pct'?)",
        "discounts.csv:3:subscription_id: subscription 'SUB2' is rejected (subscriptions.csv row 3)",
    ]
    cascades = [str(e) for e in result.errors if e.cascade]
    assert len(cascades) == 8
    assert_counts_reconcile(result)
    ds = result.dataset
    assert [s.site_id for s in ds.sites] == ["S1"]
    assert [s.subscription_id for s in ds.subscriptions] == ["SUB1", "SUB7"]
    assert [c.effective_date for c in ds.subscriptions_by_id["SUB1"].quantity_changes] == [
        date(2026, 3, 1)
    ]
    assert [o.charge_id for o in ds.one_shots] == ["O1"]
    assert ds.usage == ()
    assert [g.grant_id for g in ds.discounts] == ["G1"]


def test_without_refs_ruleset_codes_are_not_checked(tmp_path: Path) -> None:
    write_table(tmp_path, "customers", [customer("C1", pricelist="anything")])
    write_table(
        tmp_path, "subscriptions", [subscription("SUB1", product="WHATEVER", commitment="x")]
    )
    result = load(tmp_path, refs=None)
    assert result.ok
    assert result.dataset.subscriptions[0].product == "WHATEVER"


def test_belonging_to_another_customer(tmp_path: Path) -> None:
    write_table(tmp_path, "customers", [customer("C1"), customer("C2")])
    write_table(tmp_path, "sites", [{"site_id": "S2", "customer_id": "C2", "name": "Lyon"}])
    write_table(tmp_path, "subscriptions", [subscription("SUB1", "C1", site_id="S2")])
    assert error_lines(load(tmp_path)) == [
        "subscriptions.csv:2:site_id: site 'S2' belongs to customer 'C2', not 'C1'"
    ]


# --------------------------------------------------------------------------- headers


def test_unknown_and_missing_columns(tmp_path: Path) -> None:
    write_csv(
        tmp_path,
        "customers",
        ["customer_id", "legal_name", "contry", "siren", "emial"],
        [["C1", "Acme", "FR", SIREN, ""], ["C2", "Beta", "FR", SIREN, "x@y.fr"]],
    )
    write_csv(tmp_path, "sites", ["site_id", "name"], [["S1", "Paris"]])
    result = load(tmp_path)
    assert error_lines(result) == [
        "customers.csv:1:contry: unknown column 'contry' (did you mean 'country'?)",
        "customers.csv:1:emial: unknown column 'emial' (did you mean 'email'?)",
        "customers.csv:1:country: missing mandatory column 'country'",
        "sites.csv:1:customer_id: missing mandatory column 'customer_id'",
    ]
    assert result.counts["customers"] == FileCount(2, 0, 2)
    assert result.counts["sites"] == FileCount(1, 0, 1)
    reasons = [str(e) for e in result.rejected[1].reasons]
    assert reasons == [
        "customers.csv:1:country: missing mandatory column 'country'",
        "customers.csv:3:contry: value in an unknown column (fix the header)",
        "customers.csv:3:emial: value in an unknown column (fix the header)",
    ]
    assert result.billable is False
    assert load_dataset(tmp_path, REFS, skip_invalid=True).billable  # rows were read and listed


def test_unknown_column_without_values_rejects_no_row(tmp_path: Path) -> None:
    write_csv(
        tmp_path,
        "customers",
        ["customer_id", "legal_name", "country", "siren", "notes"],
        [["C1", "Acme", "FR", SIREN, ""]],
    )
    result = load_dataset(tmp_path, REFS, skip_invalid=True)
    assert error_lines(result) == ["customers.csv:1:notes: unknown column 'notes'"]
    assert result.counts["customers"] == FileCount(1, 1, 0)
    assert result.billable


def test_duplicate_and_empty_header_columns(tmp_path: Path) -> None:
    write_csv(
        tmp_path,
        "customers",
        ["customer_id", "legal_name", "country", "legal_name", ""],
        [["C1", "Acme", "BE", "Acme SA", ""]],
    )
    result = load(tmp_path)
    assert error_lines(result) == [
        "customers.csv:1:legal_name: duplicate column 'legal_name'",
        "customers.csv:1: empty column name (column 5)",
    ]
    assert result.counts["customers"] == FileCount(1, 0, 1)


def test_cell_count_mismatch_blank_lines_bom_and_quoting(tmp_path: Path) -> None:
    text = (
        "\ufeffcustomer_id,legal_name,country,address\r\n"
        'C1,"Acme, ""the"" company",BE,"1 rue X\nBat. B"\r\n'
        "\r\n"
        ",,,\r\n"
        "C2,Beta,BE\r\n"
        "C3,Gamma,BE,addr,extra\r\n"
        "  C4  , Delta ,BE,\r\n"
    )
    (tmp_path / "customers.csv").write_text(text, "utf-8")
    result = load(tmp_path)
    assert error_lines(result) == [
        "customers.csv:5: row has 3 cells, header has 4",
        "customers.csv:6: row has 5 cells, header has 4",
    ]
    ds = result.dataset
    assert ds.customers_by_id["C1"].legal_name == 'Acme, "the" company'
    assert ds.customers_by_id["C1"].address == "1 rue X\nBat. B"
    assert ds.customers_by_id["C4"].legal_name == "Delta"  # stripped
    assert result.counts["customers"] == FileCount(4, 2, 2)
    assert result.rejected[1].raw == {
        "customer_id": "C3",
        "legal_name": "Gamma",
        "country": "BE",
        "address": "addr",
        "#5": "extra",
    }


def test_bad_encoding_is_an_error_not_a_crash(tmp_path: Path) -> None:
    content = "customer_id,legal_name,country\nC1,Acme,BE\nC2,Soci\xe9t\xe9 G\xe9n\xe9rale,BE\n"
    (tmp_path / "customers.csv").write_bytes(content.encode("latin-1"))
    (tmp_path / "sites.json").write_bytes(
        b'[{"site_id": "S1", "customer_id": "C1", "name": "Caf\xe9"}]'
    )
    result = load(tmp_path)
    assert error_lines(result) == [
        "customers.csv:3:legal_name: invalid UTF-8 bytes (the file must be UTF-8 encoded)",
        "sites.json:1:name: invalid UTF-8 bytes (the file must be UTF-8 encoded)",
    ]
    assert result.rejected[0].raw["legal_name"] == "Soci\ufffdt\ufffd G\ufffdn\ufffdrale"
    assert_counts_reconcile(result)


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text("customer_id,legal_name,country\n", "utf-8")
    (tmp_path / "sites.csv").write_bytes(b"")
    result = load(tmp_path)
    assert error_lines(result) == ["sites.csv: empty file: the header row is missing"]
    assert not load_dataset(tmp_path, REFS, skip_invalid=True).billable


def test_ambiguous_and_unknown_files(tmp_path: Path) -> None:
    write_table(tmp_path, "customers", [customer("C1")])
    write_json(tmp_path, "customers", [customer("C1")])
    write_csv(tmp_path, "subscription", TABLE_COLUMNS["subscriptions"], [])
    (tmp_path / "README.md").write_text("notes", "utf-8")
    result = load_dataset(tmp_path, REFS, skip_invalid=True)
    assert error_lines(result) == [
        "subscription.csv: unknown file in the data set (its rows would be ignored)"
        " (did you mean 'subscriptions.csv'?)",
        "customers.csv: both customers.csv and customers.json exist: the data set is ambiguous,"
        " remove one",
    ]
    assert result.dataset.customers == ()
    assert not result.billable


# --------------------------------------------------------------------------- JSON


def test_json_values_numbers_and_structure(tmp_path: Path) -> None:
    write_table(tmp_path, "customers", [customer("C1")])
    (tmp_path / "subscriptions.json").write_text(
        """[
  {"subscription_id": "S1", "customer_id": "C1", "product": "SIP_TRUNK_10",
   "quantity": 2.50, "start_date": "2026-01-01", "unit_price": 0.1, "line_id": 33140000000},
  {"subscription_id": "S2", "customer_id": "C1", "product": "SIP_TRUNK_10",
   "quantity": 1.5e1, "start_date": "2026-01-01", "end_date": null},
  {"subscription_id": "S3", "customer_id": "C1", "product": "SIP_TRUNK_10",
   "quantity": true, "start_date": ["2026-01-01"], "site_id": {"a": 1}, "quantty": 1},
  "not an object",
  {"subscription_id": "S5", "subscription_id": "S6", "customer_id": "C1",
   "product": "SIP_TRUNK_10", "quantity": 1, "start_date": "2026-01-01"}
]""",
        "utf-8",
    )
    result = load(tmp_path)
    assert error_lines(result) == [
        "subscriptions.json:3:quantity: expected a string or a number, not a boolean",
        "subscriptions.json:3:start_date: expected a string or a number, not an array",
        "subscriptions.json:3:site_id: expected a string or a number, not an object",
        "subscriptions.json:3:quantty: unknown column 'quantty' (did you mean 'quantity'?)",
        "subscriptions.json:4: expected a JSON object",
        "subscriptions.json:5:subscription_id: duplicate key 'subscription_id'",
    ]
    s1 = result.dataset.subscriptions_by_id["S1"]
    assert s1.quantity == Decimal("2.50") and str(s1.quantity) == "2.50"
    assert s1.unit_price == Decimal("0.1")  # exact, not 0.1000000000000000055...
    assert s1.line_id == "33140000000"
    assert result.dataset.subscriptions_by_id["S2"].quantity == Decimal(15)
    assert result.rejected[0].raw["quantity"] == "true"
    assert_counts_reconcile(result)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"customer_id": "C1",]', "subscriptions.json: invalid JSON at line 1 column 23"),
        ('{"customer_id": "C1"}', "subscriptions.json: expected a JSON array of objects"),
        ('[{"quantity": NaN}]', "subscriptions.json: invalid JSON: NaN is not a number"),
    ],
)
def test_unreadable_json_is_a_file_error(tmp_path: Path, content: str, message: str) -> None:
    write_table(tmp_path, "customers", [customer("C1")])
    (tmp_path / "subscriptions.json").write_text(content, "utf-8")
    result = load(tmp_path)
    assert len(result.errors) == 1
    assert str(result.errors[0]).startswith(message)
    assert result.errors[0].row == 0
    assert result.counts["subscriptions"] == FileCount(0, 0, 0)


# --------------------------------------------------------------------------- time zones


def test_usage_timestamps_across_dst(tmp_path: Path) -> None:
    write_table(tmp_path, "customers", [customer("C1")])
    write_table(tmp_path, "subscriptions", [subscription("SUB1", line_id="L1")])
    write_table(
        tmp_path,
        "usage",
        [
            {
                "record_id": f"U{i}",
                "line_id": "L1",
                "product": "VOICE_FR",
                "start_time": ts,
                "quantity": "1",
            }
            for i, ts in enumerate(
                [
                    "2026-10-25T02:30",  # ambiguous: first occurrence, summer time
                    "2026-10-25T02:30+01:00",  # second occurrence, explicit
                    "2026-03-29T02:30",  # does not exist
                    "2026-03-29T03:30",
                    "2026-11-30T23:30:00Z",
                ]
            )
        ],
    )
    result = load(tmp_path)
    assert error_lines(result) == [
        "usage.csv:4:start_time: invalid timestamp '2026-03-29T02:30': this local time does not"
        " exist in Europe/Paris (clocks skip it when summer time starts)"
    ]
    by_id = {u.record_id: u.start_time for u in result.dataset.usage}
    assert by_id["U0"] == datetime(2026, 10, 25, 2, 30, tzinfo=PARIS_SUMMER)
    assert by_id["U1"] == datetime(2026, 10, 25, 2, 30, tzinfo=PARIS_WINTER)
    assert by_id["U1"] - by_id["U0"] == timedelta(hours=1)
    assert by_id["U3"].utcoffset() == timedelta(hours=2)
    assert by_id["U4"] == datetime(2026, 12, 1, 0, 30, tzinfo=PARIS_WINTER)
    assert [u.record_id for u in result.dataset.usage] == ["U3", "U0", "U1", "U4"]
    utc = load_dataset(tmp_path, REFS, tz="UTC")
    assert utc.dataset.usage_by_line["L1"][0].start_time.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="unknown time zone"):
        load_dataset(tmp_path, REFS, tz="Mars/Olympus")


# --------------------------------------------------------------------------- model


def make_subscription(**changes: Any) -> Subscription:
    values: dict[str, Any] = {
        "subscription_id": "SUB1",
        "customer_id": "C1",
        "product": "SIP_TRUNK_10",
        "quantity": Decimal(10),
        "start_date": date(2026, 11, 12),
        "end_date": date(2027, 1, 20),
    }
    values.update(changes)
    return Subscription(**values)


def qc(day: str, quantity: int) -> QuantityChange:
    return QuantityChange(
        subscription_id="SUB1", effective_date=date.fromisoformat(day), quantity=Decimal(quantity)
    )


def test_subscription_segments_and_quantities() -> None:
    sub = make_subscription(quantity_changes=(qc("2026-12-10", 12), qc("2026-11-20", 8)))
    assert [c.effective_date.day for c in sub.quantity_changes] == [20, 10]  # sorted by date
    nov = month_period("2026-11")
    assert sub.segments(nov) == [
        (Period(date(2026, 11, 12), date(2026, 11, 20)), Decimal(10)),
        (Period(date(2026, 11, 20), date(2026, 12, 1)), Decimal(8)),
    ]
    assert sub.segments(month_period("2026-12")) == [
        (Period(date(2026, 12, 1), date(2026, 12, 10)), Decimal(8)),
        (Period(date(2026, 12, 10), date(2027, 1, 1)), Decimal(12)),
    ]
    assert sub.segments(month_period("2027-01")) == [
        (Period(date(2027, 1, 1), date(2027, 1, 21)), Decimal(12))
    ]
    assert sub.segments(month_period("2027-02")) == []
    assert sub.segments(month_period("2026-10")) == []
    assert sub.quantity_on(date(2026, 11, 11)) == 0
    assert sub.quantity_on(date(2026, 11, 12)) == 10
    assert sub.quantity_on(date(2026, 11, 20)) == 8
    assert sub.quantity_on(date(2027, 1, 20)) == 12
    assert sub.quantity_on(date(2027, 1, 21)) == 0
    assert sub.service_end == date(2027, 1, 21)
    open_ended = make_subscription(end_date=None)
    assert open_ended.segments(nov) == [
        (Period(date(2026, 11, 12), date(2026, 12, 1)), Decimal(10))
    ]


def test_models_are_frozen_strict_and_closed() -> None:
    sub = make_subscription()
    with pytest.raises(ValidationError):
        sub.quantity = Decimal(3)
    with pytest.raises(ValidationError):
        make_subscription(quantity=1.5)  # a float never becomes money
    with pytest.raises(ValidationError):
        make_subscription(start_date="2026-11-12")
    with pytest.raises(ValidationError):
        make_subscription(unknown_field="x")
    with pytest.raises(ValidationError):
        make_subscription(
            quantity_changes=(qc("2026-12-10", 1).model_copy(update={"subscription_id": "X"}),)
        )
    with pytest.raises(ValidationError):
        UsageRecord(
            record_id="R1",
            line_id="L1",
            product="VOICE_FR",
            start_time=datetime(2026, 11, 3, 14, 5),  # naive
            quantity=Decimal(60),
        )
    assert Customer(customer_id="C1", legal_name="Acme", country="FR") == Customer(
        customer_id="C1", legal_name="Acme", country="FR"
    )


def test_dataset_lookups() -> None:
    first = make_subscription(line_id="L1", end_date=date(2026, 11, 30))
    second = make_subscription(
        subscription_id="SUB2", line_id="L1", start_date=date(2026, 12, 1), end_date=None
    )
    ds = DataSet(subscriptions=(second, first))
    assert ds.subscriptions_by_line["L1"] == (first, second)
    assert ds.subscription_for_line("L1", date(2026, 11, 30)) == first
    assert ds.subscription_for_line("L1", date(2026, 12, 1)) == second
    assert ds.subscription_for_line("L2", date(2026, 12, 1)) is None
    assert ds == DataSet(subscriptions=(second, first))
    assert hash(ds) == hash(DataSet(subscriptions=(second, first)))
    with pytest.raises(AttributeError):
        ds.customers = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        ds.subscriptions_by_id["X"] = first  # type: ignore[index]


# --------------------------------------------------------------------------- generated data

# Cells that are always wrong, per column: (table, column) -> bad values.
BAD_CELLS: dict[tuple[str, str], tuple[str, ...]] = {
    ("customers", "customer_id"): ("",),
    ("customers", "legal_name"): ("",),
    ("customers", "country"): ("France", "fr", ""),
    ("customers", "siren"): ("123", "732829321"),
    ("customers", "vat_number"): ("FR00000000000", "XX1"),
    ("customers", "iban"): ("FR7630006000011234567890188",),
    ("customers", "email"): ("nobody",),
    ("customers", "pricelist"): ("standart",),
    ("subscriptions", "customer_id"): ("C999", ""),
    ("subscriptions", "product"): ("VOICE_FR", "SIP_TRUNK_1O"),
    ("subscriptions", "quantity"): ("1,5", "-2", "1e3", ""),
    ("subscriptions", "start_date"): ("2026-02-30", "01/03/2026"),
    ("subscriptions", "end_date"): ("2025-12-31",),
    ("subscriptions", "unit_price"): ("49,90",),
    ("subscriptions", "commitment"): ("engagement_99m",),
    ("quantity_changes", "effective_date"): ("2025-06-01", "2026-13-01"),
    ("quantity_changes", "quantity"): ("-1", "x"),
    ("usage", "record_id"): ("",),
    ("usage", "line_id"): ("",),
    ("usage", "product"): ("INSTALL", "VOICE"),
    ("usage", "start_time"): ("2026-03-29T02:30", "2026-11-03", "tomorrow"),
    ("usage", "quantity"): ("abc", "-60"),
}


def is_blank(row: Mapping[str, str]) -> bool:
    return all(value == "" for key, value in row.items() if not key.startswith("_"))


DEPENDENT_CHECKS = {("subscriptions", "end_date"), ("quantity_changes", "effective_date")}


def valid_siren(n: int) -> str:
    base = f"{(n * 7919 + 12345678) % 10**8:08d}"
    return base + luhn.calc_check_digit(base)


@st.composite
def generated(draw: st.DrawFn, with_errors: bool = True) -> dict[str, list[dict[str, str]]]:
    """A consistent random data set, with random always-invalid cells when ``with_errors``."""
    n_customers = draw(st.integers(min_value=1, max_value=5))
    customers = []
    for i in range(n_customers):
        french = draw(st.booleans())
        customers.append(
            {
                "customer_id": f"C{i}",
                "legal_name": f"Company {i}",
                "country": "FR" if french else "BE",
                "siren": valid_siren(i) if french else "",
                "pricelist": draw(st.sampled_from(["", "standard", "premium"])),
            }
        )
    subscriptions = []
    changes = []
    for j in range(draw(st.integers(min_value=0, max_value=6))):
        start = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 250)))
        open_ended = draw(st.booleans())
        subscriptions.append(
            {
                "subscription_id": f"SUB{j}",
                "customer_id": f"C{draw(st.integers(0, n_customers - 1))}",
                "product": draw(st.sampled_from(["SIP_TRUNK_10", "FIBRE_1G"])),
                "quantity": draw(st.sampled_from(["1", "2.5", "0", "10.00"])),
                "start_date": start.isoformat(),
                "end_date": "" if open_ended else "2027-06-30",
                "line_id": f"L{j}",
                "unit_price": draw(st.sampled_from(["", "49.90", "0.0125"])),
            }
        )
        offsets = draw(st.sets(st.integers(min_value=0, max_value=290), max_size=2))
        for offset in sorted(offsets):
            changes.append(
                {
                    "subscription_id": f"SUB{j}",
                    "effective_date": (start + timedelta(days=offset)).isoformat(),
                    "quantity": draw(st.sampled_from(["3", "4.5"])),
                }
            )
    usage = []
    if subscriptions:
        for k in range(draw(st.integers(min_value=0, max_value=8))):
            minute = draw(st.integers(min_value=0, max_value=30 * 24 * 60 - 1))
            when = datetime(2026, 11, 1) + timedelta(minutes=minute)
            usage.append(
                {
                    "record_id": f"R{k}",
                    "line_id": f"L{draw(st.integers(0, len(subscriptions) - 1))}",
                    "product": draw(st.sampled_from(["VOICE_FR", "SMS"])),
                    "start_time": when.strftime("%Y-%m-%dT%H:%M:%S"),
                    "quantity": draw(st.sampled_from(["60", "1", "125"])),
                    "destination": draw(st.sampled_from(["", "+33612345678"])),
                }
            )
    tables = {
        "customers": customers,
        "subscriptions": subscriptions,
        "quantity_changes": changes,
        "usage": usage,
    }
    if with_errors:
        for (table, column), bad_values in BAD_CELLS.items():
            for row in tables[table]:
                if draw(st.integers(min_value=0, max_value=9)) == 0:
                    row[column] = draw(st.sampled_from(bad_values))
                    row.setdefault("_bad", "")
                    row["_bad"] += column + " "
    return tables


def write_all(
    directory: Path, tables: Mapping[str, Rows], as_json: bool = False, style: int = 0
) -> None:
    for name, rows in tables.items():
        clean = [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]
        if as_json:
            write_json(directory, name, clean, style)
        else:
            write_table(directory, name, clean)


def expected_accepted(tables: Mapping[str, Rows]) -> dict[str, set[str]]:
    """Which rows must be accepted: not corrupted and every parent accepted."""
    ok_customers = {r["customer_id"] for r in tables["customers"] if "_bad" not in r}
    ok_subs = {
        r["subscription_id"]
        for r in tables["subscriptions"]
        if "_bad" not in r and r["customer_id"] in ok_customers
    }
    line_of = {r["line_id"]: r["subscription_id"] for r in tables["subscriptions"]}
    return {
        "customers": ok_customers,
        "subscriptions": ok_subs,
        "quantity_changes": {
            f"{r['subscription_id']}@{r['effective_date']}"
            for r in tables["quantity_changes"]
            if "_bad" not in r and r["subscription_id"] in ok_subs
        },
        "usage": {
            r["record_id"]
            for r in tables["usage"]
            if "_bad" not in r and line_of.get(r["line_id"]) in ok_subs
        },
    }


def accepted_keys(ds: DataSet) -> dict[str, set[str]]:
    return {
        "customers": {c.customer_id for c in ds.customers},
        "subscriptions": {s.subscription_id for s in ds.subscriptions},
        "quantity_changes": {
            f"{c.subscription_id}@{c.effective_date.isoformat()}" for c in ds.quantity_changes
        },
        "usage": {u.record_id for u in ds.usage},
    }


@given(tables=generated())
def test_counts_reconcile_and_every_bad_cell_is_reported(
    tables: dict[str, list[dict[str, str]]],
) -> None:
    with data_dir() as directory:
        write_all(directory, tables)
        result = load(directory)
    assert_counts_reconcile(result)
    for name, rows in tables.items():
        assert result.counts[name].read == sum(1 for row in rows if not is_blank(row))
    assert accepted_keys(result.dataset) == expected_accepted(tables)
    located = {(e.file, e.row, e.column) for e in result.errors}
    rejected_rows = {(r.file, r.row) for r in result.rejected}
    for name, rows in tables.items():
        for number, row in enumerate(rows, start=2):
            if is_blank(row):
                continue  # a line of empty cells is not a row
            for column in row.get("_bad", "").split():
                where = (f"{name}.csv", number)
                assert where in rejected_rows
                # A range check needs its other operand: an end date cannot be compared with
                # an unreadable start date, nor an effective date with a rejected subscription.
                if (name, column) not in DEPENDENT_CHECKS:
                    assert (*where, column) in located, (name, number, column)
    for rejected in result.rejected:
        assert rejected.reasons
        assert all(reason.row in (1, rejected.row) for reason in rejected.reasons)
    clean_rows = sum(1 for rows in tables.values() for row in rows if "_bad" not in row)
    assert sum(c.accepted for c in result.counts.values()) <= clean_rows


@given(tables=generated(), data=st.data())
def test_row_order_does_not_change_the_result(
    tables: dict[str, list[dict[str, str]]], data: st.DataObject
) -> None:
    shuffled = {name: data.draw(st.permutations(rows)) for name, rows in tables.items()}
    with data_dir() as first_dir, data_dir() as second_dir:
        write_all(first_dir, tables)
        write_all(second_dir, shuffled)
        first, second = load(first_dir), load(second_dir)
    assert first.dataset == second.dataset
    assert first.counts == second.counts

    def rejected_rows(result: LoadResult) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        return {(r.file, tuple(sorted(r.raw.items()))) for r in result.rejected}

    def messages(result: LoadResult) -> list[str]:
        return sorted(
            re.sub(r"row \d+", "row N", f"{e.file}:{e.column}: {e.message}") for e in result.errors
        )

    assert rejected_rows(first) == rejected_rows(second)
    assert messages(first) == messages(second)


@given(tables=generated(), style=st.integers(min_value=0, max_value=2))
def test_json_and_csv_give_equal_data_sets(
    tables: dict[str, list[dict[str, str]]], style: int
) -> None:
    with data_dir() as csv_dir, data_dir() as json_dir:
        write_all(csv_dir, tables)
        write_all(json_dir, tables, as_json=True, style=style)
        from_csv, from_json = load(csv_dir), load(json_dir)
    assert from_csv.dataset == from_json.dataset
    assert from_csv.counts == from_json.counts

    def normalised(error: DataError, header_rows: int) -> tuple[str, int, str | None, str]:
        message = re.sub(r"row \d+", "row N", error.message).replace(".csv", ".json")
        return (error.file.split(".")[0], error.row - header_rows, error.column, message)

    # CSV rows count the header as row 1; JSON rows are 1-based object indexes.
    assert [normalised(e, 1) for e in from_csv.errors] == [
        normalised(e, 0) for e in from_json.errors
    ]


def test_duplicates_depend_only_on_which_comes_first(tmp_path: Path) -> None:
    write_table(
        tmp_path,
        "customers",
        [customer("C1", legal_name="First"), customer("C1", legal_name="Second")],
    )
    result = load(tmp_path)
    assert [c.legal_name for c in result.dataset.customers] == ["First"]
    write_table(
        tmp_path,
        "customers",
        [customer("C1", legal_name="Second"), customer("C1", legal_name="First")],
    )
    assert [c.legal_name for c in load(tmp_path).dataset.customers] == ["Second"]


def test_public_layout_constants() -> None:
    assert TABLE_NAMES[0] == "customers"
    assert MANDATORY_COLUMNS["usage"] == (
        "record_id",
        "line_id",
        "product",
        "start_time",
        "quantity",
    )
    assert "commitment_start" in TABLE_COLUMNS["subscriptions"]
    assert str(DataError("customers.csv", 14, "siren", "invalid SIREN '123' (checksum)")) == (
        "customers.csv:14:siren: invalid SIREN '123' (checksum)"
    )
    assert str(
        DataError("subscriptions.csv", 3, "product", "unknown product 'X'", "SIP_TRUNK_10")
    ) == ("subscriptions.csv:3:product: unknown product 'X' (did you mean 'SIP_TRUNK_10'?)")
