"""Invoices, lines and trace steps survive the trip between processes (pickle) unchanged, and
the trusted constructors refuse an incomplete invoice."""

from __future__ import annotations

import pickle
from datetime import date
from decimal import Decimal

import pytest

from engine.invoice import Invoice, InvoiceLine, RunResult, TraceStep, VatSubtotal

D = Decimal


def _line(**changes: object) -> InvoiceLine:
    values: dict[str, object] = dict(
        kind="recurring",
        description="SIP trunk",
        product="SIP",
        family="voice",
        quantity=D("3"),
        unit_price=D("49.90"),
        amount=D("149.70"),
        vat_category="S",
        vat_rate=D("20"),
        period_start=date(2026, 12, 1),
        period_end=date(2026, 12, 31),
        rule="product SIP (acme.bareme:12)",
        trace=(TraceStep("price", "49.90 per unit", "acme.bareme:12"), TraceStep("vat", "S 20%", "acme.bareme:3")),
        explain="SIP trunk, December 2026, 3 x 49.90 = 149.70",
        subscription_id="S1",
        site_id="SITE1",
        account_id="A1",
        accounting_code="706100",
        cost=D("55.50"),
        records=("R1", "R2"),
    )
    values.update(changes)
    return InvoiceLine(**values)  # type: ignore[arg-type]


def _invoice(lines: tuple[InvoiceLine, ...]) -> Invoice:
    return Invoice.trusted(
        invoice_key="C1/site:SITE1",
        customer_id="C1",
        customer_name="Client & Fils <SARL>",
        site_id="SITE1",
        account_id=None,
        family=None,
        period="2026-12",
        issue_date=date(2026, 12, 1),
        currency="EUR",
        lines=lines,
        vat_breakdown=(VatSubtotal.trusted("S", D("20"), D("149.70"), D("29.94"), None),),
        total_excl_vat=D("149.70"),
        total_vat=D("29.94"),
        total_incl_vat=D("179.64"),
        mentions=("Autoliquidation",),
    )


def test_every_field_of_a_line_survives_pickling():
    line = _line()
    # every field differs from its default, so a field left out of __reduce__ would show
    for name in InvoiceLine._fields:
        assert getattr(line, name) != InvoiceLine._field_defaults.get(name, object()), name
    back = pickle.loads(pickle.dumps(line, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == line and back.as_dict() == line.as_dict()
    assert [type(s) for s in back.trace] == [TraceStep, TraceStep]


def test_an_invoice_and_a_run_survive_pickling():
    invoice = _invoice((_line(), _line(kind="discount", amount=D("-10.00"), cost=None, records=())))
    run = RunResult(ruleset="acme", period="2026-12", currency="EUR", invoices=(invoice,))
    back = pickle.loads(pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == run and back.as_dict() == run.as_dict()
    assert back.invoices[0].model_dump() == invoice.model_dump()


def test_trusted_invoice_needs_every_field():
    with pytest.raises(TypeError, match="mentions"):
        Invoice.trusted(
            **{k: v for k, v in _invoice(()).__dict__.items() if k != "mentions"}
        )
