"""Valid times: every date phrase of the seed article, EDTF edge cases, and the window helpers."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest
from edtf import parse_edtf, struct_time_to_date

from events.domain.errors import InvalidCommandError, InvalidValidTimeError
from events.domain.valid_time import (
    PRECISIONS,
    ValidTime,
    _check_grammar,
    _plain,
    _read,
    certainly_within,
    possibly_within,
    valid_time,
    year_span,
)

D = date

# (source phrase, EDTF, precision, lower, upper): the seed article's dates as we encode them.
SEED = [
    ("March 2006", "2006-03", "month", D(2006, 3, 1), D(2006, 3, 31)),
    ("February 2007", "2007-02", "month", D(2007, 2, 1), D(2007, 2, 28)),
    ("February 2010", "2010-02", "month", D(2010, 2, 1), D(2010, 2, 28)),
    ("March 2008", "2008-03", "month", D(2008, 3, 1), D(2008, 3, 31)),
    ("May 2009", "2009-05", "month", D(2009, 5, 1), D(2009, 5, 31)),
    ("February 2019", "2019-02", "month", D(2019, 2, 1), D(2019, 2, 28)),
    ("January 2017", "2017-01", "month", D(2017, 1, 1), D(2017, 1, 31)),
    ("March 2020", "2020-03", "month", D(2020, 3, 1), D(2020, 3, 31)),
    ("September 2022", "2022-09", "month", D(2022, 9, 1), D(2022, 9, 30)),
    (
        "the end of February or early March",
        "[2024-02-20..2024-03-10]",
        "one_of",
        D(2024, 2, 20),
        D(2024, 3, 10),
    ),
    ("February 28-29", "2024-02-28/2024-02-29", "interval", D(2024, 2, 28), D(2024, 2, 29)),
    ("From 2007 to 2011", "2007/2011", "interval", D(2007, 1, 1), D(2011, 12, 31)),
    ("on several occasions", "../2024-02", "open", None, D(2024, 2, 29)),
    (
        "in March 2006, February 2007, and February 2010",
        "{2006-03, 2007-02, 2010-02}",
        "all_of",
        D(2006, 3, 1),
        D(2010, 2, 28),
    ),
    (
        'Since the tragic events of "Black Saturday" in October 7, 2023',
        "2023-10-07/2024-02",
        "interval",
        D(2023, 10, 7),
        D(2024, 2, 29),
    ),
    ("Since October 7, 2023", "2023-10-07/..", "open", D(2023, 10, 7), None),
    ("some day in February", "2024-02-XX", "month", D(2024, 2, 1), D(2024, 2, 29)),
]


@pytest.mark.parametrize(("raw", "edtf", "precision", "lower", "upper"), SEED)
def test_seed_phrases(
    raw: str, edtf: str, precision: str, lower: date | None, upper: date | None
) -> None:
    vt = valid_time(edtf, raw)
    assert vt == ValidTime(edtf=edtf, raw=raw, precision=precision, lower=lower, upper=upper)
    assert vt.precision in PRECISIONS
    assert not vt.approximate
    assert not vt.uncertain


@pytest.mark.parametrize(
    ("edtf", "precision", "lower", "upper"),
    [
        ("2024-02-28", "day", D(2024, 2, 28), D(2024, 2, 28)),
        ("2024", "year", D(2024, 1, 1), D(2024, 12, 31)),
        ("2024-21", "season", D(2024, 3, 1), D(2024, 5, 31)),
        ("2024-02-28T10:00:00Z", "day", D(2024, 2, 28), D(2024, 2, 28)),
        ("2024-XX", "year", D(2024, 1, 1), D(2024, 12, 31)),
        ("202X", "years", D(2020, 1, 1), D(2029, 12, 31)),
        ("[2024-02-28, 2024-03-01]", "one_of", D(2024, 2, 28), D(2024, 3, 1)),
        ("[2007..2011]", "one_of", D(2007, 1, 1), D(2011, 12, 31)),
        ("{2024-02..2024-04}", "all_of", D(2024, 2, 1), D(2024, 4, 30)),
        ("2024/2024-06", "interval", D(2024, 1, 1), D(2024, 6, 30)),
        # An end that may fall after the start is not "before" it.
        ("2024-02-15/2024-02", "interval", D(2024, 2, 15), D(2024, 2, 29)),
        ("2024-02-28/2024-02-28", "interval", D(2024, 2, 28), D(2024, 2, 28)),
    ],
)
def test_other_values(edtf: str, precision: str, lower: date, upper: date) -> None:
    vt = valid_time(edtf)
    assert (vt.precision, vt.lower, vt.upper) == (precision, lower, upper)
    assert vt.raw is None


@pytest.mark.parametrize(
    ("edtf", "precision", "lower", "upper"),
    [
        # Level-2 unspecified digits: lower_strict() raises ValueError in edtf 5.0.2, and the
        # parser crashes on a month-only form; we enumerate the matching days ourselves.
        ("2024-02-2X", "month", D(2024, 2, 20), D(2024, 2, 29)),
        ("2023-02-2X", "month", D(2023, 2, 20), D(2023, 2, 28)),
        ("2024-02-0X", "month", D(2024, 2, 1), D(2024, 2, 9)),
        ("2024-1X", "year", D(2024, 10, 1), D(2024, 12, 31)),
        ("2024-0X", "year", D(2024, 1, 1), D(2024, 9, 30)),
        ("2024-1X-XX", "year", D(2024, 10, 1), D(2024, 12, 31)),
        ("2024-XX-3X", "year", D(2024, 1, 30), D(2024, 12, 31)),
        ("202X-02-29", "years", D(2020, 2, 29), D(2028, 2, 29)),
        ("156X-12-25", "years", D(1560, 12, 25), D(1569, 12, 25)),
        ("2024-02-2X/2024-03", "interval", D(2024, 2, 20), D(2024, 3, 31)),
        ("[2024-1X, 2025]", "one_of", D(2024, 10, 1), D(2025, 12, 31)),
    ],
)
def test_unspecified_digits(edtf: str, precision: str, lower: date, upper: date) -> None:
    vt = valid_time(edtf)
    assert (vt.edtf, vt.precision, vt.lower, vt.upper) == (edtf, precision, lower, upper)


def test_month_only_unspecified_digit_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # edtf 5.0.2 prints "trying to PartialUnspecified.__init__..." before crashing on it.
    valid_time("2024-1X")
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("edtf", "lower", "upper", "approximate", "uncertain"),
    [
        # One unit of the date's own precision each side, never stacked.
        ("2024-02-28~", D(2024, 2, 27), D(2024, 2, 29), True, False),
        ("2024-02-28?", D(2024, 2, 27), D(2024, 2, 29), False, True),
        ("2024-02-28%", D(2024, 2, 27), D(2024, 2, 29), True, True),
        ("2024-02~", D(2024, 1, 1), D(2024, 3, 31), True, False),
        ("1979-08~", D(1979, 7, 1), D(1979, 9, 30), True, False),  # the package: 1978..1980
        ("2024-01?", D(2023, 12, 1), D(2024, 2, 29), False, True),
        ("2024~", D(2023, 1, 1), D(2025, 12, 31), True, False),
        ("2024-02-XX~", D(2024, 1, 1), D(2024, 3, 31), True, False),
        ("202X~", D(2019, 1, 1), D(2030, 12, 31), True, False),
        # A qualifier on one component widens by that component.
        ("2004-?06-11", D(2004, 5, 11), D(2004, 7, 11), False, True),
        ("2004-06-~11", D(2004, 6, 10), D(2004, 6, 12), True, False),
        ("?2004-06-11", D(2003, 6, 11), D(2005, 6, 11), False, True),
        # Several qualifiers: the coarsest unit named wins.
        ("?2004-06-~11", D(2003, 6, 11), D(2005, 6, 11), True, True),
        # Month ends stay month ends; leap days clamp.
        ("2024-01-31?", D(2024, 1, 30), D(2024, 2, 1), False, True),
        ("2024-?01-31", D(2023, 12, 31), D(2024, 2, 29), False, True),
        # Interval ends widen on their outer side only; a season by its own length.
        ("2024-02~/2024-03~", D(2024, 1, 1), D(2024, 4, 30), True, False),
        ("2024-21?/2024-22", D(2023, 12, 1), D(2024, 8, 31), False, True),
        ("2024~/..", D(2023, 1, 1), None, True, False),
        # At the edge of the calendar, widening stops there.
        ("9999~", D(9998, 1, 1), D(9999, 12, 31), True, False),
        ("0001-01-01?", D(1, 1, 1), D(1, 1, 2), False, True),
    ],
)
def test_approximate_and_uncertain_widening(
    edtf: str, lower: date, upper: date | None, approximate: bool, uncertain: bool
) -> None:
    vt = valid_time(edtf)
    assert (vt.lower, vt.upper) == (lower, upper)
    assert (vt.approximate, vt.uncertain) == (approximate, uncertain)


@pytest.mark.parametrize(
    ("edtf", "lower", "upper"),
    [
        ("../2024-02", None, D(2024, 2, 29)),
        ("2024-02/..", D(2024, 2, 1), None),
        ("/2024-02", None, D(2024, 2, 29)),  # an unknown start is as unbounded as an open one
        ("2024-02/", D(2024, 2, 1), None),
        ("../..", None, None),
    ],
)
def test_open_intervals(edtf: str, lower: date | None, upper: date | None) -> None:
    vt = valid_time(edtf)
    assert (vt.precision, vt.lower, vt.upper) == ("open", lower, upper)


@pytest.mark.parametrize(
    ("edtf", "lower", "upper"),
    [("[..2024-02]", None, D(2024, 2, 29)), ("[2024-01, 2024-12..]", D(2024, 1, 1), None)],
)
def test_open_set_members(edtf: str, lower: date | None, upper: date | None) -> None:
    vt = valid_time(edtf)
    assert (vt.precision, vt.lower, vt.upper) == ("one_of", lower, upper)


def test_whitespace_is_normalised() -> None:
    assert valid_time("  2024-02 \n").edtf == "2024-02"
    assert valid_time(" [2024-02 .. 2024-03,2024-05] ").edtf == "[2024-02..2024-03, 2024-05]"
    assert valid_time("2024-02-28 / 2024-02-29").edtf == "2024-02-28/2024-02-29"
    assert valid_time("{2006-03,2007-02}").edtf == "{2006-03, 2007-02}"
    assert valid_time("2024-02", "  February  ").raw == "February"
    assert valid_time("2024-02", "   ").raw is None


@pytest.mark.parametrize(
    "edtf",
    ["garbage", "February 2024", "2024-02-30", "2024-13", "2024/02/28", "2024-02-28/2024-02-29/x"],
)
def test_not_edtf(edtf: str) -> None:
    with pytest.raises(InvalidValidTimeError, match="is not an EDTF") as caught:
        valid_time(edtf)
    assert caught.value.field == "valid_time"
    assert repr(edtf) in str(caught.value)
    assert "'2024-02-28'" in str(caught.value)  # an example of what to write


@pytest.mark.parametrize("edtf", ["", "   ", "\n"])
def test_empty(edtf: str) -> None:
    with pytest.raises(InvalidValidTimeError, match="empty") as caught:
        valid_time(edtf)
    assert caught.value.field == "valid_time"


@pytest.mark.parametrize(
    "edtf",
    [
        "2024-02-28/2024-02-26",  # the edtf package accepts this one
        "2024-03/2024-02-29",
        "2024/2023",
        "2024-02-29~/2024-02-28",
        "[2024-03..2024-02]",
    ],
)
def test_end_before_start(edtf: str) -> None:
    with pytest.raises(InvalidValidTimeError, match="before it starts") as caught:
        valid_time(edtf)
    assert caught.value.field == "valid_time"


@pytest.mark.parametrize("edtf", ["-0050", "0000", "Y170000002"])
def test_outside_the_calendar(edtf: str) -> None:
    with pytest.raises(InvalidValidTimeError, match="outside the years 1-9999"):
        valid_time(edtf)


def test_no_matching_day() -> None:
    with pytest.raises(InvalidValidTimeError, match="matches no calendar day"):
        valid_time("2024-02-3X")


def test_error_is_an_invalid_command() -> None:
    with pytest.raises(InvalidCommandError):
        valid_time("nonsense")


def test_round_trips_through_json() -> None:
    vt = valid_time("../2024-02", "several times")
    encoded = msgspec.json.encode(vt)
    assert b'"lower":null' in encoded  # an open bound is explicit, not omitted
    assert b"approximate" not in encoded  # defaults are omitted
    assert msgspec.json.decode(encoded, type=ValidTime) == vt


# Windows for the helpers.
Y2024 = (D(2024, 1, 1), D(2024, 12, 31))
FEB_2024 = (D(2024, 2, 1), D(2024, 2, 29))


@pytest.mark.parametrize(
    ("edtf", "start", "end", "certainly", "possibly"),
    [
        ("2024-02-28/2024-02-29", *FEB_2024, True, True),
        ("[2024-02-20..2024-03-10]", *FEB_2024, False, True),
        ("[2024-02-20..2024-03-10]", *Y2024, True, True),
        ("2024-02~", *FEB_2024, False, True),
        ("2024-02~", *Y2024, True, True),
        ("2024-01~", *Y2024, False, True),
        ("2019-02", *Y2024, False, False),
        ("{2006-03, 2007-02, 2010-02}", D(2006, 1, 1), D(2010, 12, 31), True, True),
        ("{2006-03, 2007-02, 2010-02}", D(2007, 1, 1), D(2010, 12, 31), False, True),
        ("2007/2011", D(2012, 1, 1), None, False, False),
        ("2007/2011", None, D(2011, 12, 31), True, True),
        ("2007/2011", D(2011, 12, 31), D(2011, 12, 31), False, True),  # touching ends overlap
        ("2007/2011", D(2012, 1, 1), D(2012, 1, 1), False, False),
        # Open bounds overlap everything on their side, and fit only an open window side.
        ("../2024-02", *Y2024, False, True),
        ("../2024-02", None, D(2024, 2, 29), True, True),
        ("../2024-02", None, D(2024, 2, 28), False, True),
        ("../2024-02", D(2024, 3, 1), None, False, False),
        ("2023-10-07/..", D(2030, 1, 1), D(2030, 12, 31), False, True),
        ("2023-10-07/..", D(2023, 1, 1), None, True, True),
        ("../..", None, None, True, True),
        ("2024-02-XX", None, None, True, True),
    ],
)
def test_within(
    edtf: str, start: date | None, end: date | None, certainly: bool, possibly: bool
) -> None:
    vt = valid_time(edtf)
    assert certainly_within(vt, start, end) is certainly
    assert possibly_within(vt, start, end) is possibly
    # Certainly within implies possibly within.
    assert not certainly or possibly


def test_within_refuses_a_reversed_window() -> None:
    vt = valid_time("2024-02")
    with pytest.raises(ValueError, match="before it starts"):
        certainly_within(vt, D(2024, 3, 1), D(2024, 2, 1))
    with pytest.raises(ValueError, match="before it starts"):
        possibly_within(vt, D(2024, 3, 1), D(2024, 2, 1))


@pytest.mark.parametrize(
    ("edtf", "span"),
    [
        ("2007/2011", (2007, 2011)),
        ("{2006-03, 2007-02, 2010-02}", (2006, 2010)),
        ("../2024-02", (None, 2024)),
        ("2023-10-07/..", (2023, None)),
        ("2024-01?", (2023, 2024)),
        ("2024-02-28", (2024, 2024)),
    ],
)
def test_year_span(edtf: str, span: tuple[int | None, int | None]) -> None:
    assert year_span(valid_time(edtf)) == span


@pytest.mark.parametrize(
    "text",
    ["2024", "2024-02", "2023-02", "2024-02-29", "0001-01-01", "9999-12", "1900-02",
     "2024-12-31", "2007/2011", "2024-02-28/2024-02-29", "2019-02/2024-03-10"],
)  # fmt: skip
def test_plain_dates_read_without_the_parser_as_the_parser_reads_them(text: str) -> None:
    for token in text.split("/"):
        parsed = parse_edtf(token)
        assert _plain(token) == (
            struct_time_to_date(parsed.lower_strict()),
            struct_time_to_date(parsed.upper_strict()),
        )
    _check_grammar(text)  # accepted, and so by the package
    parse_edtf(text)


@pytest.mark.parametrize("text", ["2023-02-29", "2024-13", "2024-00", "0000", "2024-21"])
def test_what_is_not_plain_goes_to_the_parser(text: str) -> None:
    assert _plain(text) is None


def test_a_valid_time_is_read_once_per_string() -> None:
    before = _read.cache_info()
    first = valid_time("2031-07", "July 2031")
    again = valid_time(" 2031-07 ", "in July 2031")
    after = _read.cache_info()
    assert (first.lower, first.upper) == (again.lower, again.upper)
    assert again.raw == "in July 2031"
    assert after.hits >= before.hits + 1
    with pytest.raises(InvalidValidTimeError):
        valid_time("2023-02-29")
    with pytest.raises(InvalidValidTimeError):
        valid_time("2023-02-29")  # failures are not cached away
