"""The dates people type, read one way everywhere (`--as-of`, `--since`, `--until`, `--rev`, and the
`created:`/`modified:` search fields). Pure: the caller gives the current time; a commit id is resolved by
the caller (kb.service.timeline), since only git knows it.

A WHEN is a span of time, [start, end): a day, a month, a year, a moment (start == end), or "from then until
now" (`last week`). A command takes what it needs from it: `--since` its start, `--until` and `--as-of` its
end, a search field the whole span. Calendar days are UTC days, as the notes' own dates are UTC.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kb.errors import UsageError
from kb.notes import parse_timestamp

FORMS = (
    "2021-11-25, 2021-11-25T10:30, 2021-11, 2021, today, yesterday, monday, last monday, "
    "3 days ago, 2 weeks ago, last week, this month, or a commit id"
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_UNITS = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
_AGO = re.compile(r"^(\d{1,6}|an?|one)\s+(minute|hour|day|week|month|year)s?\s+ago$")
_LAST = re.compile(r"^(last|past|this)\s+(\d{1,4}\s+)?(minute|hour|day|week|month|year)s?$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TICK = timedelta(microseconds=1)  # a span "until now" includes now


class BadDate(UsageError):
    """A WHEN kb cannot read (exit 2); the message shows the forms it can."""

    def __init__(self, text: str, what: str = "date") -> None:
        shown = text if len(text) <= 60 else text[:57] + "..."
        super().__init__(f"cannot read the {what} '{shown}'; use {FORMS} (kb help dates)")


@dataclass(frozen=True)
class When:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive (== start for a moment)
    text: str

    @property
    def last(self) -> datetime:
        """The latest moment inside the span (the moment itself for a moment)."""
        return self.end if self.end == self.start else self.end - timedelta(microseconds=1)


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _months_back(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, _month_length(year, month + 1))
    return moment.replace(year=year, month=month + 1, day=day)


def _month_length(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _next_month(year: int, month: int) -> datetime:
    return datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)


def _span_of_day(moment: datetime, text: str) -> When:
    start = _day(moment)
    return When(start, start + timedelta(days=1), text)


def parse_when(text: str, now: datetime, what: str = "date") -> When:
    """Read a WHEN (see FORMS) relative to `now`, or raise BadDate. A commit id is not read here."""
    raw = " ".join(text.strip().split())
    low = raw.lower()
    now = now.astimezone(UTC)
    try:
        return _parse(raw, low, now) or _fail(text, what)
    except (OverflowError, ValueError):
        raise BadDate(text, what) from None


def _fail(text: str, what: str) -> When:
    raise BadDate(text, what)


def _parse(raw: str, low: str, now: datetime) -> When | None:
    if not low:
        return None
    if low == "now":
        return When(now, now, raw)
    if low == "today":
        return _span_of_day(now, raw)
    if low == "yesterday":
        return _span_of_day(now - timedelta(days=1), raw)
    if low == "tomorrow":
        return _span_of_day(now + timedelta(days=1), raw)
    words = low.split()
    if len(words) <= 2 and words[-1] in _WEEKDAYS and (len(words) == 1 or words[0] == "last"):
        # the most recent such day before today (git's "last monday"; "monday" the same)
        back = (now.weekday() - _WEEKDAYS.index(words[-1])) % 7 or 7
        return _span_of_day(now - timedelta(days=back), raw)
    ago = _AGO.match(low)
    if ago:
        count = 1 if ago.group(1) in ("a", "an", "one") else int(ago.group(1))
        unit = ago.group(2)
        if unit in ("month", "year"):
            moment = _months_back(now, count * (12 if unit == "year" else 1))
        else:
            moment = now - _UNITS[unit] * count
        return When(moment, moment, raw) if unit in ("minute", "hour") else _span_of_day(moment, raw)
    last = _LAST.match(low)
    if last:
        which, count_text, unit = last.group(1), last.group(2), last.group(3)
        count = int(count_text) if count_text else 1
        if which == "this":
            if count_text:
                return None
            if unit == "day":
                return _span_of_day(now, raw)
            if unit == "week":
                start = _day(now) - timedelta(days=now.weekday())
            elif unit == "month":
                start = _day(now).replace(day=1)
            elif unit == "year":
                start = _day(now).replace(month=1, day=1)
            else:
                start = now - _UNITS[unit]
            return When(start, now + _TICK, raw)
        if unit in ("month", "year"):
            start = _months_back(now, count * (12 if unit == "year" else 1))
        else:
            start = now - _UNITS[unit] * count
        return When(start, now + _TICK, raw)
    month = _MONTH.match(raw)
    if month:
        year, number = int(month.group(1)), int(month.group(2))
        if not 1 <= number <= 12:
            return None
        return When(datetime(year, number, 1, tzinfo=UTC), _next_month(year, number), raw)
    year_only = _YEAR.match(raw)
    if year_only:
        year = int(year_only.group(1))
        return When(datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC), raw)
    if _DAY.match(raw):
        day = parse_timestamp(raw)
        return _span_of_day(day, raw) if day else None
    if re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d", raw):
        instant = parse_timestamp(raw)
        return When(instant, instant, raw) if instant else None
    return None


def looks_like_commit(text: str) -> bool:
    """A commit id or prefix (7 to 40 hex digits), which the caller resolves through git."""
    return re.fullmatch(r"[0-9a-fA-F]{7,40}", text.strip()) is not None and not _YEAR.match(text.strip())
