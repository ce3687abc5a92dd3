"""Each anomaly check on a small hand-made data set: one case that triggers it, one that does
not. Run of December 2026: usage, one-shots and regularisations of November."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from engine.evaluator.run import bill
from engine.model import DataSet, DiscountGrant
from simulator.anomalies import CHECKS, Anomaly, AnomalyConfig, find_anomalies

PERIOD = "2026-12"


def anomalies(catalogue, data: DataSet, kind: str | None = None, **kw) -> list[Anomaly]:
    result = bill(catalogue, data, PERIOD)
    found = find_anomalies(catalogue, data, PERIOD, result, **kw)
    return [a for a in found if kind is None or a.kind == kind]


def with_line(rec, *records, **sub) -> DataSet:
    return DataSet(
        customers=(rec.customer(),), subscriptions=(rec.sub(line_id="L1", **sub),), usage=records
    )


# ------------------------------------------------------------------------------ phantom line
def test_phantom_line_reports_records_on_a_line_of_no_subscription(catalogue, rec):
    data = with_line(
        rec,
        rec.call("R1", "L1", "2026-11-03T10:00:00"),
        rec.call("R2", "L9", "2026-11-05T10:00:00"),
        rec.call("R3", "L9", "2026-11-04T10:00:00"),
    )
    [a] = anomalies(catalogue, data, "phantom_line")
    assert (a.rule, a.severity, a.record_id, a.customer_id) == (
        "anomaly.phantom_line",
        "error",
        "R3",
        None,
    )
    assert "line L9: 2 usage records from 2026-11-04 to 2026-11-05" in a.message


def test_phantom_line_names_the_subscription_that_left_the_line(catalogue, rec):
    data = with_line(rec, rec.call("R1", "L1", "2026-11-20T10:00:00"), end_date=date(2026, 11, 10))
    [a] = anomalies(catalogue, data, "phantom_line")
    assert (a.customer_id, a.subscription_id, a.record_id) == ("C1", "A1", "R1")
    assert "subscription A1 of C1 from 2026-01-01 to 2026-11-10" in a.message


def test_phantom_line_names_the_nearest_holder_of_the_line(catalogue, rec):
    data = DataSet(
        customers=(rec.customer("C1"), rec.customer("C2")),
        subscriptions=(
            rec.sub("A1", "C1", line_id="L1", end_date=date(2026, 11, 5)),
            rec.sub("B1", "C2", line_id="L1", start_date=date(2026, 11, 25)),
        ),
        usage=(
            rec.call("R1", "L1", "2026-11-08T10:00:00"),
            rec.call("R2", "L1", "2026-11-22T10:00:00"),
        ),
    )
    [a] = anomalies(catalogue, data, "phantom_line")
    assert (a.customer_id, a.subscription_id, a.record_id) == ("C1", "A1", "R1")


def test_no_phantom_line_when_the_line_is_subscribed(catalogue, rec):
    data = with_line(rec, rec.call("R1", "L1", "2026-11-03T10:00:00"))
    assert anomalies(catalogue, data, "phantom_line") == []


# ------------------------------------------------------------------------- idle subscription
def test_idle_subscription_without_usage_for_two_months(catalogue, rec):
    [a] = anomalies(catalogue, with_line(rec), "idle_subscription")
    assert (a.subscription_id, a.customer_id, a.severity) == ("A1", "C1", "warning")
    assert "no usage from 2026-10-01 to 2026-11-30 (2 months)" in a.message


def test_idle_months_come_from_the_config(catalogue, rec):
    data = with_line(rec, rec.call("R1", "L1", "2026-10-15T10:00:00"))
    assert anomalies(catalogue, data, "idle_subscription") == []
    [a] = anomalies(catalogue, data, "idle_subscription", config=AnomalyConfig(idle_months=1))
    assert a.subscription_id == "A1"


def test_last_use_known_outside_the_data_counts_for_the_idle_check(catalogue, rec):
    # A store reads back only the usage month: the line's earlier use comes as `last_use`.
    data = with_line(rec)
    assert anomalies(catalogue, data, "idle_subscription", last_use={"L1": date(2026, 10, 15)}) == []
    [a] = anomalies(catalogue, data, "idle_subscription", last_use={"L1": date(2026, 9, 30)})
    assert a.subscription_id == "A1"  # used before the window: still idle
    [a] = anomalies(catalogue, data, "idle_subscription", last_use={"L2": date(2026, 11, 2)})
    assert a.subscription_id == "A1"  # another line's use does not count


def test_not_idle_with_usage_recently_started_or_without_line(catalogue, rec):
    used = with_line(rec, rec.call("R1", "L1", "2026-10-15T10:00:00"))
    recent = with_line(rec, start_date=date(2026, 10, 20))
    no_line = DataSet(customers=(rec.customer(),), subscriptions=(rec.sub(),))
    for data in (used, recent, no_line):
        assert anomalies(catalogue, data, "idle_subscription") == []


# ----------------------------------------------------------------------------- unrated usage
def test_unrated_usage_for_a_zone_without_price(catalogue, rec):
    data = with_line(
        rec,
        rec.call("R1", "L1", "2026-11-03T10:00:00", to="+9991234567"),
        rec.call("R2", "L9", "2026-11-03T10:00:00", to="+9991234567"),  # phantom, not unrated
    )
    [a] = anomalies(catalogue, data, "unrated_usage")
    assert (a.record_id, a.subscription_id, a.customer_id, a.severity) == (
        "R1",
        "A1",
        "C1",
        "error",
    )
    assert "zone UNALLOCATED has no price in VOICE" in a.message


def test_no_unrated_usage_when_every_record_is_priced(catalogue, rec):
    data = with_line(rec, rec.call("R1", "L1", "2026-11-03T10:00:00", to="0612345678"))
    assert anomalies(catalogue, data, "unrated_usage") == []


# --------------------------------------------------------------------------- duplicate usage
def test_duplicate_usage_same_line_time_destination_quantity(catalogue, rec):
    data = with_line(
        rec,
        rec.call("R1", "L1", "2026-11-03T10:00:00"),
        rec.call("R2", "L1", "2026-11-03T10:00:00"),
        rec.call("R3", "L1", "2026-11-03T09:00:00Z"),  # the same instant, written in UTC
    )
    [a] = anomalies(catalogue, data, "duplicate_usage")
    assert (a.record_id, a.subscription_id) == ("R2", "A1")
    assert "records R1, R2, R3" in a.message and "billed 3 times" in a.message


def test_no_duplicate_when_the_quantity_differs(catalogue, rec):
    data = with_line(
        rec,
        rec.call("R1", "L1", "2026-11-03T10:00:00", seconds=60),
        rec.call("R2", "L1", "2026-11-03T10:00:00", seconds=61),
    )
    assert anomalies(catalogue, data, "duplicate_usage") == []


# ---------------------------------------------------------------------- usage outside period
def test_usage_outside_period_late_and_early_records(catalogue, rec):
    data = with_line(
        rec,
        rec.call("R1", "L1", "2026-10-31T23:30:00"),  # local time: October, never billed now
        rec.call("R2", "L1", "2026-10-02T10:00:00"),
        rec.call("R3", "L1", "2026-12-01T00:10:00+01:00"),  # December: the next run's
        rec.call("R4", "L1", "2026-11-30T23:05:00Z"),  # 1 Dec 00:05 in Paris
        rec.call("R5", "L1", "2026-11-15T10:00:00"),
    )
    late, early = anomalies(catalogue, data, "usage_outside_period")
    assert (late.severity, late.record_id) == ("warning", "R2")
    assert "2 records from 2026-10-02 to 2026-10-31, before the usage period" in late.message
    assert (early.severity, early.record_id) == ("info", "R4")
    assert "2 records from 2026-12-01 to 2026-12-01, after the usage period" in early.message


def test_no_usage_outside_period_when_every_record_is_in_november(catalogue, rec):
    data = with_line(
        rec,
        rec.call("R1", "L1", "2026-11-01T00:00:00"),
        rec.call("R2", "L1", "2026-11-30T23:59:59"),
    )
    assert anomalies(catalogue, data, "usage_outside_period") == []


# -------------------------------------------------------------------------- invoice variation
def _previous(catalogue, rec, quantity: int):
    return bill(
        catalogue,
        DataSet(customers=(rec.customer(),), subscriptions=(rec.sub(quantity=quantity),)),
        "2026-11",
    )


def test_invoice_variation_over_both_thresholds(catalogue, rec):
    data = DataSet(customers=(rec.customer(),), subscriptions=(rec.sub(quantity=10),))
    [a] = anomalies(catalogue, data, "invoice_variation", previous=_previous(catalogue, rec, 1))
    assert (a.invoice_key, a.customer_id, a.severity) == ("C1", "C1", "warning")
    assert "200.00 EUR excl. VAT against 20.00 in 2026-11 (+180.00, +900.0 %" in a.message


@pytest.mark.parametrize(
    ("before", "now", "config"),
    [
        (10, 11, AnomalyConfig()),  # +10 %, +20 EUR: under both
        (1, 3, AnomalyConfig()),  # +200 % but +40 EUR: under the amount
        (
            10,
            13,
            AnomalyConfig(variation_percent=Decimal(50), variation_amount=Decimal(10)),
        ),  # +30 %
    ],
)
def test_no_invoice_variation_under_a_threshold(catalogue, rec, before, now, config):
    data = DataSet(customers=(rec.customer(),), subscriptions=(rec.sub(quantity=now),))
    found = anomalies(
        catalogue,
        data,
        "invoice_variation",
        previous=_previous(catalogue, rec, before),
        config=config,
    )
    assert found == []


def test_no_invoice_variation_without_previous_run(catalogue, rec):
    data = DataSet(customers=(rec.customer(),), subscriptions=(rec.sub(quantity=10),))
    assert anomalies(catalogue, data, "invoice_variation") == []


def test_anomaly_config_from_ruleset_settings(compile_ruleset, ruleset_text):
    settings = (
        "anomaly_variation_percent 10% anomaly_variation_amount 5 EUR anomaly_idle_months 3 months"
    )
    text = ruleset_text.replace(
        'timezone "Europe/Paris" }', f'timezone "Europe/Paris" {settings} }}'
    )
    cat = compile_ruleset(text)  # checked: the checker knows the anomaly settings
    assert AnomalyConfig.from_settings(cat.settings) == AnomalyConfig(Decimal(10), Decimal(5), 3)
    assert AnomalyConfig.from_settings(compile_ruleset(text.replace("3 months", "4")).settings).idle_months == 4
    assert AnomalyConfig.from_settings({}) == AnomalyConfig()


def test_idle_months_must_be_months(ruleset_text):
    from dsl.checker import check_text

    for value, ok in (("3 months", True), ("3", True), ("3 days", False), ("30%", False)):
        text = ruleset_text.replace('timezone "Europe/Paris" }', f'timezone "Europe/Paris" anomaly_idle_months {value} }}')
        errors = [d for d in check_text(text, "sim.bareme") if "anomaly_idle_months" in d.message]
        assert (not errors) == ok, (value, errors)


# ---------------------------------------------------------------------- zero, negative invoice
def test_negative_invoice_after_a_termination(catalogue, rec):
    data = DataSet(
        customers=(rec.customer(),), subscriptions=(rec.sub(end_date=date(2026, 11, 10)),)
    )
    [a] = anomalies(catalogue, data, "negative_invoice")
    assert (a.invoice_key, a.rule) == ("C1", "anomaly.invoice_total")
    assert (
        "totals -16.00 EUR incl. VAT (a credit note: check the credits), 1 line" in a.message
    )  # -13.33 + VAT


def test_zero_invoice(catalogue, rec):
    data = DataSet(customers=(rec.customer(),), subscriptions=(rec.sub(unit_price=0),))
    [a] = anomalies(catalogue, data, "zero_invoice")
    assert a.invoice_key == "C1"


def test_no_zero_or_negative_invoice_for_a_positive_one(catalogue, rec):
    data = DataSet(customers=(rec.customer(),), subscriptions=(rec.sub(),))
    found = anomalies(catalogue, data)
    assert not [a for a in found if a.kind in ("zero_invoice", "negative_invoice")]


# -------------------------------------------------------------------------- legal identifiers
def _legal(catalogue, rec, **customer) -> list[Anomaly]:
    data = DataSet(customers=(rec.customer(**customer),), subscriptions=(rec.sub(),))
    return [
        a
        for a in anomalies(catalogue, data)
        if a.rule in ("anomaly.siren", "anomaly.vat_number", "anomaly.iban")
    ]


@pytest.mark.parametrize(
    ("customer", "kind", "severity", "text"),
    [
        ({"siren": None}, "invalid_siren", "error", "SIREN missing"),
        ({"siren": "732829321"}, "invalid_siren", "error", "invalid SIREN '732829321'"),
        ({"vat_number": "FR44732829321"}, "invalid_vat_number", "error", "invalid VAT number"),
        (
            {"country": "BE", "siren": None, "vat_number": "BE0403019262"},
            "invalid_vat_number",
            "error",
            "checksum",
        ),
        (
            {"country": "BE", "siren": None, "vat_number": "FR44732829320"},
            "invalid_vat_number",
            "error",
            "a VAT number of FR",
        ),
        (
            {"country": "BE", "siren": None},
            "invalid_vat_number",
            "warning",
            "domestic VAT instead of reverse charge",
        ),
        ({"iban": "FR7610278450983511004748451"}, "invalid_iban", "error", "invalid IBAN"),
    ],
)
def test_invalid_legal_identifiers(catalogue, rec, customer, kind, severity, text):
    [a] = _legal(catalogue, rec, **customer)
    assert (a.kind, a.severity, a.customer_id) == (kind, severity, "C1")
    assert text in a.message


@pytest.mark.parametrize(
    "customer",
    [
        {},
        {"vat_number": "FR44732829320", "iban": "FR7610278450983511004748450"},
        {"country": "BE", "siren": None, "vat_number": "BE0403019261"},
        {"country": "CH", "siren": None},  # export: no SIREN, no VAT number needed
    ],
)
def test_valid_legal_identifiers(catalogue, rec, customer):
    assert _legal(catalogue, rec, **customer) == []


def test_legal_identifiers_only_for_invoiced_customers(catalogue, rec):
    data = DataSet(customers=(rec.customer(siren=None),))
    assert anomalies(catalogue, data) == []


# -------------------------------------------------------------- discount after its window
def _welcome(rec, start: date) -> DataSet:
    grant = DiscountGrant(grant_id="G1", customer_id="C1", discount="WELCOME", start_date=start)
    return DataSet(customers=(rec.customer(),), subscriptions=(rec.sub(),), discounts=(grant,))


def test_discount_line_after_its_window(catalogue, rec):
    data = _welcome(rec, date(2026, 11, 15))  # window 15 Nov 2026 - 14 Jan 2027
    result = bill(catalogue, data, PERIOD)
    [inv] = result.invoices
    lines = tuple(
        line._replace(period_start=date(2027, 1, 15))
        if line.kind == "discount"
        else line
        for line in inv.lines
    )
    tampered = result.model_copy(update={"invoices": (inv.model_copy(update={"lines": lines}),)})
    [a] = [
        x for x in find_anomalies(catalogue, data, PERIOD, tampered) if x.kind == "expired_discount"
    ]
    assert (a.rule, a.severity, a.subscription_id, a.invoice_key) == (
        "anomaly.discount_after_window",
        "error",
        "A1",
        "C1",
    )
    assert (
        "discount WELCOME (-4.00) applied from 2027-01-15 but its window ended on 2027-01-14"
        in a.message
    )


def test_discount_line_inside_its_window(catalogue, rec):
    data = _welcome(rec, date(2026, 11, 15))
    result = bill(catalogue, data, PERIOD)
    assert any(line.kind == "discount" for line in result.invoices[0].lines)
    assert [
        a for a in find_anomalies(catalogue, data, PERIOD, result) if a.kind == "expired_discount"
    ] == []


# ------------------------------------------------------------------------------ expired grant
def test_expired_grant_still_in_the_data(catalogue, rec):
    [a] = anomalies(catalogue, _welcome(rec, date(2026, 6, 1)), "expired_grant")
    assert (a.severity, a.customer_id) == ("info", "C1")
    assert "grant G1 of WELCOME to C1 ended on 2026-07-31" in a.message


def test_running_grant_is_not_expired(catalogue, rec):
    assert anomalies(catalogue, _welcome(rec, date(2026, 10, 15)), "expired_grant") == []


# ---------------------------------------------------------------------------- commitment ended
def test_commitment_ended_without_renewal(catalogue, rec):
    data = DataSet(
        customers=(rec.customer(),),
        subscriptions=(rec.sub(commitment="C12", commitment_start=date(2025, 6, 1)),),
    )
    [a] = anomalies(catalogue, data, "commitment_ended")
    assert (a.subscription_id, a.severity) == ("A1", "warning")
    assert (
        "commitment C12 (12 months from 2025-06-01, no tacit renewal) ended on 2026-05-31"
        in a.message
    )


def test_commitment_ending_on_the_period_start(catalogue, rec):
    data = DataSet(
        customers=(rec.customer(),),
        subscriptions=(rec.sub(commitment="C12", commitment_start=date(2025, 12, 1)),),
    )
    assert len(anomalies(catalogue, data, "commitment_ended")) == 1


@pytest.mark.parametrize(
    "sub",
    [
        {"commitment": "T12", "commitment_start": date(2025, 6, 1)},  # tacit renewal
        {"commitment": "C12", "commitment_start": date(2025, 6, 1), "end_date": date(2026, 12, 31)},
        {"commitment": "C12", "commitment_start": date(2026, 3, 1)},  # still running
        {},
    ],
)
def test_no_commitment_anomaly(catalogue, rec, sub):
    data = DataSet(customers=(rec.customer(),), subscriptions=(rec.sub(**sub),))
    assert anomalies(catalogue, data, "commitment_ended") == []


# ------------------------------------------------------------------------------------ overall
def test_checks_are_deterministic_and_ordered(catalogue, rec):
    data = with_line(
        rec,
        rec.call("R2", "L9", "2026-11-05T10:00:00"),
        rec.call("R1", "L1", "2026-11-03T10:00:00", to="+9991234567"),
        rec.call("R3", "L1", "2026-10-03T10:00:00"),
    )
    shuffled = DataSet(
        customers=data.customers,
        subscriptions=data.subscriptions,
        usage=tuple(reversed(data.usage)),
    )
    first = anomalies(catalogue, data)
    assert first == anomalies(catalogue, shuffled)
    assert [a.kind for a in first] == ["phantom_line", "unrated_usage", "usage_outside_period"]
    assert [a.rule for a in first] == [
        "anomaly.phantom_line",
        "anomaly.unrated_usage",
        "anomaly.usage_outside_period",
    ]


def test_checks_can_be_chosen(catalogue, rec):
    data = with_line(rec, rec.call("R2", "L9", "2026-11-05T10:00:00"))
    result = bill(catalogue, data, PERIOD)
    assert len(CHECKS) == 11
    assert find_anomalies(catalogue, data, PERIOD, result, checks=()) == ()
