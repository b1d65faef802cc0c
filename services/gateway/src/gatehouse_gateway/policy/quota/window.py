"""Calendar windows in UTC: which day or month an instant falls in, and when it ends.

Every replica derives the window from its own clock alone, so replicas agree
on it without talking (to within their clock skew, which NTP keeps small).
The window's id names its Redis keys: ``2026-12-01`` for a day, ``2026-12``
for a month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Period = Literal["day", "month"]


@dataclass(frozen=True, slots=True)
class WindowBounds:
    id: str
    start: float
    end: float

    @property
    def seconds(self) -> int:
        """The window's length (a month's varies: 28 to 31 days)."""
        return round(self.end - self.start)


def window_at(period: Period, now: float) -> WindowBounds:
    """The ``period`` window ``now`` (Unix seconds) falls in."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        name = start.strftime("%Y-%m-%d")
    else:
        start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
        following = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        end = datetime(*following, 1, tzinfo=UTC)
        name = start.strftime("%Y-%m")
    return WindowBounds(name, start.timestamp(), end.timestamp())
