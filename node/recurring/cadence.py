"""When a recurring template is due: pure date arithmetic in the community's time zone.

An occurrence is a local date the cadence names, at the template's local time of day:

- ``daily``: every date;
- ``weekly``: the chosen weekdays (ISO numbers, 1 Monday .. 7 Sunday);
- ``monthly``: the chosen day of the month; in a month without that day (the 31st in a
  30-day month, the 29th-31st in February) the occurrence falls on the month's last day,
  so a monthly template never skips a month and never makes two in one.

Each occurrence is identified by its instant in UTC (``occurrence_start``). Daylight saving:
a local time that does not exist on the spring-forward day (02:30 in a zone that jumps
from 02:00 to 03:00) happens that day, shifted forward by the gap (03:30); a local time
that exists twice on the fall-back day happens once, at its first (summer-time) instance.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CADENCES = ("daily", "weekly", "monthly")
#: ISO weekday number -> the short name used by forms, JSON and the CLI
WEEKDAYS = {1: "mon", 2: "tue", 3: "wed", 4: "thu", 5: "fri", 6: "sat", 7: "sun"}
WEEKDAY_NAMES = {1: "Monday", 2: "Tuesday", 3: "Wednesday", 4: "Thursday", 5: "Friday",
                 6: "Saturday", 7: "Sunday"}
#: how far back or forward a search looks: more than a year holds every cadence
SEARCH_DAYS = 400


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``WB_TIME_ZONE``); ValueError when there is none."""
    name = (name or "").strip() or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"WB_TIME_ZONE must be an IANA time zone such as UTC or "
                         f"Europe/Berlin, got {name!r}") from exc


@dataclass(frozen=True)
class Cadence:
    kind: str
    weekdays: tuple[int, ...]
    month_day: int | None
    time_of_day: dt.time

    @classmethod
    def of(cls, row: object) -> Cadence:
        r: dict = dict(row)  # type: ignore[call-overload]
        return cls(r["cadence"], tuple(sorted(r["weekdays"] or ())), r["month_day"],
                   r["time_of_day"])

    def on(self, day: dt.date) -> bool:
        if self.kind == "daily":
            return True
        if self.kind == "weekly":
            return day.isoweekday() in self.weekdays
        assert self.month_day is not None
        last = calendar.monthrange(day.year, day.month)[1]
        return day.day == min(self.month_day, last)

    def instant(self, day: dt.date, zone: ZoneInfo) -> dt.datetime:
        """The occurrence of local ``day`` in UTC (fold=0: the first instance of a repeated
        wall time; a skipped one is read with the offset before the gap, i.e. shifted
        forward by it)."""
        return dt.datetime.combine(day, self.time_of_day, tzinfo=zone).astimezone(dt.UTC)

    def describe(self) -> str:
        at = self.time_of_day.strftime("%H:%M")
        if self.kind == "daily":
            return f"every day at {at}"
        if self.kind == "weekly":
            days = ", ".join(WEEKDAY_NAMES[d] for d in self.weekdays)
            return f"every {days} at {at}"
        return f"monthly on day {self.month_day} at {at}" + (
            " (the last day in shorter months)" if (self.month_day or 0) > 28 else "")


def _days(start: dt.date, step: int) -> Iterator[dt.date]:
    for n in range(SEARCH_DAYS):
        yield start + dt.timedelta(days=n * step)


def latest_due(cadence: Cadence, zone: ZoneInfo, now: dt.datetime,
               not_before: dt.datetime) -> dt.datetime | None:
    """The latest occurrence at or before ``now``, if it is not before ``not_before``."""
    today = now.astimezone(zone).date() + dt.timedelta(days=1)  # the zone may run ahead
    for day in _days(today, -1):
        if cadence.on(day):
            when = cadence.instant(day, zone)
            if when <= now:
                return when if when >= not_before else None
    return None


def next_after(cadence: Cadence, zone: ZoneInfo, after: dt.datetime) -> dt.datetime | None:
    start = after.astimezone(zone).date() - dt.timedelta(days=1)
    for day in _days(start, 1):
        if cadence.on(day):
            when = cadence.instant(day, zone)
            if when > after:
                return when
    return None


def count_between(cadence: Cadence, zone: ZoneInfo, after: dt.datetime,
                  before: dt.datetime) -> int:
    """Occurrences strictly between two instants (the ones a late run does not make);
    counts at most ``SEARCH_DAYS`` days."""
    start = after.astimezone(zone).date() - dt.timedelta(days=1)
    n = 0
    for day in _days(start, 1):
        if cadence.on(day):
            when = cadence.instant(day, zone)
            if when >= before:
                break
            if when > after:
                n += 1
    return n
