"""When an interaction happened: an EDTF (ISO 8601-2) string plus the day bounds we index on.

Sources date diplomacy loosely ("the end of February or early March", "from 2007 to 2011",
"several times"), so a valid time is an EDTF string, checked by the `edtf` package, kept next to
the source's own phrase and summarised by the earliest and latest day it can mean. Projections
filter and sort on those two days; the EDTF string stays the authority.

We use `edtf` for the grammar and for the bounds of plain dates, and compute the rest ourselves
because edtf 5.0.2 gets it wrong (see the domain notes, section 3):

* Unspecified digits inside a month or day (``2024-02-2X``, ``2024-1X``) make
  ``lower_strict()`` raise, or make the parser itself crash (and print to stdout).
* Its fuzzy padding for ``~``/``?``/``%`` stacks year, month and day padding (``1979-08~`` becomes
  1978-07-01..1980-09-30) and can only be tuned through Django settings.

Precision vocabulary (``ValidTime.precision``) says what kind of value the string names:

=============  ===============================================================================
``day``        one day (``2024-02-28``; a time of day is dropped)
``month``      one month, or a day known only to its month (``2024-02``, ``2024-02-XX``)
``season``     one EDTF season, quarter, quadrimester or semester (``2024-21``)
``year``       one year, or a day or month known only to its year (``2024``, ``2024-1X``)
``years``      a date known only to a range of years (``202X``, ``19XX``)
``interval``   a span with both ends known (``2007/2011``)
``open``       a span with an open (``..``) or unknown (empty) end (``../2024-02``)
``one_of``     exactly one of a set of dates or ranges: a single day we cannot pin down
               (``[2024-02-20..2024-03-10]``)
``all_of``     every date of a set: several occurrences (``{2006-03, 2007-02, 2010-02}``)
=============  ===============================================================================

Bounds: ``lower`` and ``upper`` are the earliest and latest day the value can involve; ``None``
means unbounded on that side (an open or unknown interval end, or a set member ``..2024-02``).
For sets they are the hull of the members, so a one-of set's days need not be contiguous.

Approximate and uncertain dates (``~``, ``?``, ``%``) widen by one unit, once, never stacked: a
qualifier at the end of a date names the date's own precision (``2024-02-28?`` ±1 day,
``2024-02~`` ±1 month, ``2024~`` ±1 year, a season ± its own length); a qualifier on one
component names that component (``2004-?06-11`` ±1 month, ``?2004-06-11`` ±1 year). If a date
carries several, the coarsest unit named wins. ``2024-02~`` therefore spans 2024-01-01..2024-03-31.
Month shifts keep month ends: the last day of February, plus a month, is the last day of March.

Only the years 1 to 9999 can be placed on the calendar (Python's ``datetime.date``); earlier or
later dates are refused rather than silently left unbounded.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import msgspec
from edtf import EDTFParseException, parse_edtf, struct_time_to_date

from events.domain.errors import InvalidValidTimeError

__all__ = (
    "PRECISIONS",
    "ValidTime",
    "certainly_within",
    "possibly_within",
    "valid_time",
    "year_span",
)

PRECISIONS: Final = frozenset(
    {"day", "month", "season", "year", "years", "interval", "open", "one_of", "all_of"}
)
"""Every value ``ValidTime.precision`` can take (see the module docstring)."""

_FIELD: Final = "valid_time"
_EXAMPLES: Final = "'2024-02-28', '2024-02', '2024-02-28/2024-02-29' or '[2024-02-20..2024-03-10]'"

# A single EDTF date, level 0 to 2: optional qualifiers either side of each component,
# 'X' for unspecified digits. Longer forms (Y-prefixed years, significant digits) fall through
# to the package.
_DATE: Final = re.compile(
    r"(?P<q0>[?~%])?(?P<year>-?[0-9X]{4})(?P<q1>[?~%])?"
    r"(?:-(?P<q2>[?~%])?(?P<month>[0-9X]{2})(?P<q3>[?~%])?"
    r"(?:-(?P<q4>[?~%])?(?P<day>[0-9X]{2})(?P<q5>[?~%])?)?)?"
)

# edtf 5.0.2 crashes (AttributeError, plus a print to stdout) on a month with one unspecified
# digit and no day, e.g. ``2024-1X``, although it is level-2 EDTF. ``2024-1X-XX`` means the same
# and parses, so the grammar check sees that spelling; bounds are computed from the original.
_MONTH_ONLY_PARTIAL: Final = re.compile(r"(?<![0-9X])(-?[0-9X]{4}-(?:[0-9]X|X[0-9]))(?![-0-9X])")

# A plain calendar year, month or day: what the package reads the same way we would.
_PLAIN: Final = re.compile(r"([0-9]{4})(?:-(0[1-9]|1[0-2])(?:-([0-9]{2}))?)?")

# Widening units, finest first; a date's qualifiers widen by the coarsest unit they name.
_UNIT_ORDER: Final = ("day", "month", "season", "year")
_FIRST_SEASON: Final = 21  # EDTF month values 21..41 are seasons, quarters, quadrimesters...


class ValidTime(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """When something happened, as an EDTF string with indexed day bounds.

    Build one with ``valid_time()``, which checks the string and computes the other fields.

    Attributes:
        edtf: The EDTF (ISO 8601-2) string, whitespace normalised, e.g. ``"2024-02"``.
        raw: The source's own phrase, e.g. ``"the end of February or early March"``.
        precision: What kind of value ``edtf`` names; one of ``PRECISIONS``.
        lower: The earliest day the value can involve; ``None`` when unbounded.
        upper: The latest day the value can involve; ``None`` when unbounded.
        approximate: The string carries ``~`` or ``%`` somewhere.
        uncertain: The string carries ``?`` or ``%`` somewhere.
    """

    edtf: str
    raw: str | None = None
    precision: str
    lower: date | None
    upper: date | None
    approximate: bool = False
    uncertain: bool = False


@dataclass(frozen=True, slots=True)
class _Point:
    """One EDTF date: its bounds as written (``first``, ``last``) and after widening."""

    first: date
    last: date
    lower: date
    upper: date
    precision: str


def valid_time(edtf: str, raw: str | None = None) -> ValidTime:
    """Check an EDTF string and summarise it.

    Args:
        edtf: An EDTF (ISO 8601-2, levels 0-2) string such as ``"2024-02"``,
            ``"2007/2011"``, ``"../2024-02"`` or ``"{2006-03, 2007-02, 2010-02}"``.
        raw: The source's phrase the string encodes, kept for display and review.

    Returns:
        The valid time, with its precision and day bounds.

    Raises:
        InvalidValidTimeError: The string is empty, is not EDTF, names no calendar day, lies
            outside the years 1-9999, or is an interval (or set range) that ends before it starts.
    """
    text = edtf.strip()
    if not text:
        raise InvalidValidTimeError(
            f"the valid time is empty; give an EDTF date such as {_EXAMPLES}", field=_FIELD
        )
    canonical, precision, lower, upper = _read(text)
    raw_phrase = raw.strip() if raw is not None else None
    return ValidTime(
        edtf=canonical,
        raw=raw_phrase or None,
        precision=precision,
        lower=lower,
        upper=upper,
        approximate="~" in canonical or "%" in canonical,
        uncertain="?" in canonical or "%" in canonical,
    )


def certainly_within(vt: ValidTime, start: date | None, end: date | None) -> bool:
    """Whether every day ``vt`` can involve lies in the window ``[start, end]``.

    A ``None`` window end is open: any day, or an unbounded side of ``vt``, is inside it on that
    side. Against a closed window end, an unbounded side of ``vt`` is never certainly inside.

    Args:
        vt: The valid time.
        start: The window's first day, inclusive; ``None`` for no lower limit.
        end: The window's last day, inclusive; ``None`` for no upper limit.

    Raises:
        ValueError: The window ends before it starts.
    """
    _check_window(start, end)
    after_start = start is None or (vt.lower is not None and vt.lower >= start)
    before_end = end is None or (vt.upper is not None and vt.upper <= end)
    return after_start and before_end


def possibly_within(vt: ValidTime, start: date | None, end: date | None) -> bool:
    """Whether ``vt``'s bounds overlap the window ``[start, end]``.

    An unbounded side of ``vt`` or of the window overlaps everything on that side. The test is on
    the bounds: a one-of set such as ``[2006, 2010]`` "possibly" falls in 2008.

    Args:
        vt: The valid time.
        start: The window's first day, inclusive; ``None`` for no lower limit.
        end: The window's last day, inclusive; ``None`` for no upper limit.

    Raises:
        ValueError: The window ends before it starts.
    """
    _check_window(start, end)
    reaches_start = start is None or vt.upper is None or vt.upper >= start
    reaches_end = end is None or vt.lower is None or vt.lower <= end
    return reaches_start and reaches_end


def year_span(vt: ValidTime) -> tuple[int | None, int | None]:
    """The years of ``vt``'s bounds; ``None`` where a bound is open."""
    return (
        vt.lower.year if vt.lower is not None else None,
        vt.upper.year if vt.upper is not None else None,
    )


def _check_window(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")


def _not_edtf(text: str) -> InvalidValidTimeError:
    return InvalidValidTimeError(
        f"{text!r} is not an EDTF (ISO 8601-2) date; write e.g. {_EXAMPLES}", field=_FIELD
    )


@functools.lru_cache(maxsize=8192)
def _read(text: str) -> tuple[str, str, date | None, date | None]:
    """Grammar check and summary of one EDTF string. Cached: the package's parser costs
    milliseconds per string, and sources keep naming the same months and days."""
    _check_grammar(text)
    return _summarise(text)


def _plain_day(year: str, month: str | None, day: str | None) -> tuple[date, date] | None:
    """The bounds of a plain calendar year, month or day (level 0, no qualifier), computed
    directly; ``None`` for anything else (seasons, impossible dates), which the package
    reads."""
    y = int(year)
    if y < 1:
        return None
    try:
        if month is None:
            return date(y, 1, 1), date(y, 12, 31)
        m = int(month)
        if day is None:
            return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])
        one = date(y, m, int(day))
    except ValueError:
        return None
    return one, one


def _plain(text: str) -> tuple[date, date] | None:
    match = _PLAIN.fullmatch(text)
    return None if match is None else _plain_day(*match.groups())


def _check_grammar(text: str) -> None:
    """Let the `edtf` package decide whether ``text`` is EDTF (plain level-0 dates and
    intervals of them, which it always accepts, are recognised without it)."""
    parts = text.split("/")
    if len(parts) <= 2 and all(_plain(part) is not None for part in parts):
        return
    try:
        parse_edtf(_MONTH_ONLY_PARTIAL.sub(r"\1-XX", text))
    except EDTFParseException:
        raise _not_edtf(text) from None
    # The package builds its objects in parse actions, whose constructors raise whatever they
    # raise on inputs the grammar half-accepts; any of those means we cannot read the string.
    except Exception as exc:
        raise _not_edtf(text) from exc


def _summarise(text: str) -> tuple[str, str, date | None, date | None]:
    """Canonical string, precision and bounds of an EDTF string the grammar accepted.

    The string's structure is simple once the grammar has vouched for it: a set in brackets or
    braces, an interval around one slash, or a single date.
    """
    if text[0] in "[{":
        members = [_range(member.strip(), text) for member in text[1:-1].split(",")]
        lowers = [low for low, _high, _canon in members]
        uppers = [high for _low, high, _canon in members]
        joined = ", ".join(canon for _low, _high, canon in members)
        canonical = f"{text[0]}{joined}{text[-1]}"
        precision = "one_of" if text[0] == "[" else "all_of"
        lower = None if None in lowers else min(d for d in lowers if d is not None)
        upper = None if None in uppers else max(d for d in uppers if d is not None)
        return canonical, precision, lower, upper
    if "/" in text:
        start_text, end_text = (part.strip() for part in text.split("/", 1))
        start = _endpoint(start_text)
        end = _endpoint(end_text)
        _check_order(start, end, text)
        precision = "interval" if start is not None and end is not None else "open"
        return (
            f"{start_text}/{end_text}",
            precision,
            start.lower if start is not None else None,
            end.upper if end is not None else None,
        )
    point = _point(text)
    return text, point.precision, point.lower, point.upper


def _endpoint(text: str) -> _Point | None:
    """An interval end: ``..`` (open) and an empty end (unknown) are both unbounded."""
    return None if text in {"", ".."} else _point(text)


def _range(member: str, text: str) -> tuple[date | None, date | None, str]:
    """A set member: one date, or a range ``a..b`` whose ends may be open (``..b``, ``a..``)."""
    if ".." not in member:
        point = _point(member)
        return point.lower, point.upper, member
    first_text, last_text = (part.strip() for part in member.split("..", 1))
    first = _point(first_text) if first_text else None
    last = _point(last_text) if last_text else None
    _check_order(first, last, text)
    return (
        first.lower if first is not None else None,
        last.upper if last is not None else None,
        f"{first_text}..{last_text}",
    )


def _check_order(start: _Point | None, end: _Point | None, text: str) -> None:
    # The package accepts 2024-02-28/2024-02-26; we refuse a span whose end, as written
    # (qualifiers aside), cannot fall on or after its start. 2024-02-15/2024-02 is fine: the
    # end month contains days after the 15th.
    if start is not None and end is not None and end.last < start.first:
        raise InvalidValidTimeError(
            f"{text!r} ends (at the latest {end.last}) before it starts (at the earliest "
            f"{start.first}); write the earlier date first",
            field=_FIELD,
        )


def _point(token: str) -> _Point:
    """Bounds and precision of one EDTF date (no interval, no set)."""
    # A time of day adds nothing to day bounds; the date part carries the precision.
    token = token.partition("T")[0]
    match = _DATE.fullmatch(token)
    if match is None:
        # Y-prefixed years, exponents, significant digits: only the package reads these.
        first, last = _package_bounds(token)
        return _Point(first=first, last=last, lower=first, upper=last, precision="year")

    year, month, day = match["year"], match["month"], match["day"]
    if year.startswith("-") or year == "0000":
        raise _out_of_range(token)
    bare = "-".join(part for part in (year, month, day) if part is not None)
    if "X" in bare:
        # The package raises or crashes on several of these; our enumeration handles them all.
        first, last = _unspecified_bounds(token, year, month, day)
    else:
        first, last = _package_bounds(bare)

    precision = _precision(year, month, day)
    unit = _widening_unit(match, precision)
    lower, upper = (first, last) if unit is None else _widen(first, last, unit, precision)
    return _Point(first=first, last=last, lower=lower, upper=upper, precision=precision)


def _precision(year: str, month: str | None, day: str | None) -> str:
    """The longest prefix of components known exactly decides the precision."""
    if "X" in year:
        return "years"
    if month is None or "X" in month:
        return "year"
    if int(month) >= _FIRST_SEASON:
        return "season"
    if day is None or "X" in day:
        return "month"
    return "day"


def _widening_unit(match: re.Match[str], precision: str) -> str | None:
    """The coarsest unit the date's qualifiers name, or ``None`` if it has none."""
    # Which qualifier slot closes the date: after the year, the month or the day.
    last_slot = "q5" if match["day"] is not None else "q3" if match["month"] is not None else "q1"
    named: set[str] = set()
    for slot, unit in (
        ("q0", "year"),
        ("q1", "year"),
        ("q2", "month"),
        ("q3", "month"),
        ("q4", "day"),
        ("q5", "day"),
    ):
        if match[slot] is None:
            continue
        if slot == last_slot:
            # A qualifier closing the date speaks about the date as a whole, at its precision.
            named.add("year" if precision == "years" else precision)
        else:
            named.add(unit)
    if not named:
        return None
    return max(named, key=_UNIT_ORDER.index)


def _widen(first: date, last: date, unit: str, precision: str) -> tuple[date, date]:
    """Widen ``[first, last]`` by one ``unit`` each side (see the module docstring)."""
    if unit == "day":
        return _add_days(first, -1), _add_days(last, 1)
    months = {"month": 1, "year": 12}.get(unit)
    if months is None:  # a season: its own length in months
        months = (last.year - first.year) * 12 + last.month - first.month + 1
    # A date known to the month or coarser spans whole months; keep the upper end a month end.
    whole_months = precision != "day"
    return _add_months(first, -months, False), _add_months(last, months, whole_months)


def _add_days(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        # Widening is our own guess; at the calendar's edge, stop there.
        return date.min if days < 0 else date.max


def _add_months(day: date, months: int, month_end: bool) -> date:
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    if year < date.min.year:
        return date.min
    if year > date.max.year:
        return date.max
    length = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, length if month_end else min(day.day, length))


def _package_bounds(token: str) -> tuple[date, date]:
    """``lower_strict()``/``upper_strict()`` of one date, as days."""
    plain = _plain(token)
    if plain is not None:
        return plain
    try:
        parsed = parse_edtf(token)
        first: date = struct_time_to_date(parsed.lower_strict())
        last: date = struct_time_to_date(parsed.upper_strict())
    except (ValueError, OverflowError) as exc:
        # The package raises ValueError for years that struct_time or date cannot hold.
        raise _out_of_range(token) from exc
    return first, last


def _unspecified_bounds(
    token: str, year: str, month: str | None, day: str | None
) -> tuple[date, date]:
    """Earliest and latest real day matching a date with ``X`` digits.

    ``2024-02-2X`` is 2024-02-20..2024-02-29, ``2024-1X`` is 2024-10-01..2024-12-31,
    ``202X-02-29`` is 2020-02-29..2028-02-29 (leap years only).
    """
    years = _matching(year, date.min.year, date.max.year)
    months = _matching(month, 1, 12)
    days = _matching(day, 1, 31)

    def days_of(y: int, m: int) -> list[int]:
        length = calendar.monthrange(y, m)[1]
        return [d for d in days if d <= length]

    first = next(
        (date(y, m, ds[0]) for y in years for m in months if (ds := days_of(y, m))),
        None,
    )
    last = next(
        (
            date(y, m, ds[-1])
            for y in reversed(years)
            for m in reversed(months)
            if (ds := days_of(y, m))
        ),
        None,
    )
    if first is None or last is None:
        raise InvalidValidTimeError(
            f"{token!r} matches no calendar day in the years 1-9999", field=_FIELD
        )
    return first, last


def _matching(pattern: str | None, low: int, high: int) -> list[int]:
    """The values in ``low..high`` whose zero-padded digits match ``pattern`` (X = any digit)."""
    if pattern is None:
        return list(range(low, high + 1))
    if "X" not in pattern:
        value = int(pattern)
        return [value] if low <= value <= high else []
    width = len(pattern)
    return [
        value
        for value in range(low, high + 1)
        if all(p in {"X", c} for p, c in zip(pattern, f"{value:0{width}d}", strict=True))
    ]


def _out_of_range(token: str) -> InvalidValidTimeError:
    return InvalidValidTimeError(
        f"{token!r} lies outside the years 1-9999, the only ones Diplofeed can place on a calendar",
        field=_FIELD,
    )
