"""The report's "Data contract" section (owned with pipeline/contracts/, wired in page.py).

It lays out two ``quality`` relations built by dbt (``models/quality/contract_deviations.sql``,
``delivery_envelopes.sql``), which :func:`pipeline.reporting.facts.collect` gathers among the
quality relations it does not lay out itself (``Facts.other_quality``): where landed payloads
differ from the per-event-type contracts, what each deviating path feeds, and the HTTP envelope
eduMe's client sends. page.py leaves these two out of "Data quality".
"""

from __future__ import annotations

from pipeline.reporting.facts import Facts, Section

CONTRACT_RELATIONS = ("contract_deviations", "delivery_envelopes")

DEVIATION_COLUMNS = [
    ("event_type", "event type"),
    ("path", "path"),
    ("problem", "problem"),
    ("expected", "expected"),
    ("seen", "seen"),
    ("count_deliveries", "deliveries"),
    ("last_received_at", "last received"),
    ("read_by", "read by"),
    ("feeds_marts", "feeds"),
]
ENVELOPE_COLUMNS = [("header", "header"), ("value", "value"), ("count_deliveries", "deliveries")]


def data_contract(facts: Facts) -> str:
    """The section's HTML; a relation missing from the exports shows as "Not available"."""
    # page.py imports this module: its helpers are imported when the section is rendered.
    from pipeline.reporting.page import _missing, _shown, _table

    missing = Section(error="run `edume-pipeline materialize` to build models/quality")
    deviations = facts.other_quality.get("contract_deviations", missing)
    envelopes = facts.other_quality.get("delivery_envelopes", missing)
    parts = [
        "<p>Every loaded body is checked against its event type's contract "
        "(<code>pipeline/contracts/edume/</code>). <code>edume-pipeline contract-report</code> "
        "prints the same, and <code>--propose DIR</code> drafts the contract change.</p>"
    ]
    if deviations.error:
        parts.append(_missing(deviations))
    elif not deviations.rows:
        parts.append('<p class="muted">No deviation: every delivery matches its contract.</p>')
    else:
        parts.append(f"<p>Showing {_shown(deviations)}{deviations.total:,} deviations.</p>")
        parts.append(_table(deviations.rows, DEVIATION_COLUMNS))
    parts.append("<h3>What eduMe's HTTP client sends</h3>")
    if envelopes.error:
        parts.append(_missing(envelopes))
    elif not envelopes.rows:
        parts.append('<p class="muted">No delivery yet.</p>')
    else:
        parts.append(_table(envelopes.rows, ENVELOPE_COLUMNS))
    return "".join(parts)
