"""What the PLOVER and GDELT-style exports write for one interaction view: the one date rule
(the lower bound or nothing, never the upper bound in its place) for every shape of date,
negations, and the tally that names what an export left out and why."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from events.domain.coding import CodingOverride, code_for
from events.domain.valid_time import valid_time
from events.domain.vocabulary import Participant
from projections.contacts import ActorView, InteractionView
from projections.exports import GDELT_COLUMNS, LeftOut, gdelt_rows, plover_record
from projections.left_out import NAMED, Tally


def _actor(actor_id: str, kind: str, name: str) -> ActorView:
    return ActorView(
        actor_id=actor_id,
        kind=kind,
        canonical_name=name,
        aliases=(),
        roles=(),
        merged=(),
        sources=(),
    )


DIRECTORY = {
    "lavrov": _actor("lavrov", "person", "Sergey Lavrov"),
    "hamas": _actor("hamas", "organisation", "Hamas"),
}


def _view(edtf: str, kind: str = "phone_call", **fields: Any) -> InteractionView:
    return InteractionView(
        interaction_id="i1",
        kind=kind,
        participants=(
            Participant(actor_id="lavrov", role="initiator"),
            Participant(actor_id="hamas", role="recipient"),
        ),
        valid_time=valid_time(edtf, "as the source put it"),
        coding=code_for(kind),
        **fields,
    )


def _gdelt(view: InteractionView) -> dict[str, str]:
    rows = gdelt_rows(view, DIRECTORY)
    assert not isinstance(rows, LeftOut)
    (row,) = rows
    return dict(zip(GDELT_COLUMNS, row, strict=True))


# edtf: (PLOVER date, PLOVER enddate, GDELT SQLDATE, MonthYear, Year, DateUpper, precision);
# None for the PLOVER date: the record is left out for want of a first day.
DATES: dict[str, tuple[str | None, str | None, str, str, str, str, str]] = {
    "2024-02-28": ("2024-02-28", None, "20240228", "202402", "2024", "20240228", "day"),
    "2024-02": ("2024-02-01", "2024-02-29", "20240201", "202402", "2024", "20240229", "month"),
    "2024": ("2024-01-01", "2024-12-31", "20240101", "202401", "2024", "20241231", "year"),
    "2007/2011": ("2007-01-01", "2011-12-31", "20070101", "200701", "2007", "20111231",
                  "interval"),
    "2024-02/..": ("2024-02-01", None, "20240201", "202402", "2024", "", "open"),
    "../2024-02": (None, None, "", "", "", "20240229", "open"),
    "../..": (None, None, "", "", "", "", "open"),
}  # fmt: skip


@pytest.mark.parametrize("edtf", DATES)
def test_plover_dates_a_record_by_its_first_day_or_leaves_it_out(edtf: str) -> None:
    date, enddate, *_ = DATES[edtf]
    record = plover_record(_view(edtf), DIRECTORY)
    if date is None:
        assert record == LeftOut("no_first_day")
        return
    assert isinstance(record, dict)
    assert record["date"] == date
    assert record.get("enddate") == enddate
    assert f"EDTF {edtf} (" in record["comment"]
    assert "as reported: as the source put it" in record["comment"]


@pytest.mark.parametrize("edtf", DATES)
def test_gdelt_dates_a_row_by_its_first_day_or_not_at_all(edtf: str) -> None:
    _, _, sqldate, month_year, year, upper, precision = DATES[edtf]
    row = _gdelt(_view(edtf))
    assert (row["SQLDATE"], row["MonthYear"], row["Year"]) == (sqldate, month_year, year)
    assert bool(row["FractionDate"]) == bool(sqldate)
    assert (row["DateUpper"], row["DatePrecision"], row["EDTF"]) == (upper, precision, edtf)
    assert row["DatePhrase"] == "as the source put it"


def test_an_open_start_never_goes_out_as_its_upper_bound() -> None:
    view = _view("../2024-02")
    row = _gdelt(view)
    assert "20240229" not in (row["SQLDATE"], row["MonthYear"], row["FractionDate"])
    assert plover_record(view, DIRECTORY) == LeftOut("no_first_day")


def test_plover_leaves_out_what_it_has_no_type_for() -> None:
    view = _view("2024-02", kind="address", quote="We stand together.")
    assert plover_record(view, DIRECTORY) == LeftOut("no_plover_type")
    assert _gdelt(view)["EventCode"] == "010"


def test_gdelt_leaves_a_negation_out_and_plover_marks_it() -> None:
    # An analyst gave the statement a PLOVER type, so PLOVER can carry it, marked.
    coding = code_for("statement", override=CodingOverride(plover_type="CONSULT"))
    view = msgspec.structs.replace(
        _view("2024-02", kind="statement", claim="avoids public contact", negated=True),
        coding=coding,
    )
    assert gdelt_rows(view, DIRECTORY) == LeftOut("negated")
    record = plover_record(view, DIRECTORY)
    assert isinstance(record, dict)
    assert record["mode"] == ["negation"]
    assert record["event_text"] == "avoids public contact"


def test_nobody_acting_leaves_the_interaction_out_of_both() -> None:
    view = msgspec.structs.replace(
        _view("2024-02"), participants=(Participant(actor_id="hamas", role="recipient"),)
    )
    assert gdelt_rows(view, DIRECTORY) == LeftOut("no_acting_party")
    assert plover_record(view, DIRECTORY) == LeftOut("no_acting_party")


def test_the_tally_names_what_it_left_out_and_why() -> None:
    tally = Tally()
    for n in range(NAMED + 2):
        tally.leave_out(f"call_{n}", LeftOut("no_first_day"))
    tally.leave_out("pattern_putin_avoids_hamas", LeftOut("negated"))
    tally.negations_marked = 1
    assert tally.total == NAMED + 3
    negated, open_start, marked = tally.lines()
    assert negated == ("left out 1 negated (reported as not happening): pattern_putin_avoids_hamas")
    assert open_start.startswith(f"left out {NAMED + 2} with no first day")
    assert open_start.endswith(f"call_{NAMED - 1} and 2 more")
    assert f"call_{NAMED}" not in open_start
    assert marked == "marked 1 negated with PLOVER mode 'negation'"
