"""``time.*``: times are ISO-8601 UTC text with milliseconds (``2024-02-29T12:00:00.000Z``).

Times without a zone are read as UTC. ``time.offset`` follows JavaScript's Date setters (the new
field value is truncated toward zero, overflow carries), except that adding months clamps to the
month's last day (deviation 8).
"""

from __future__ import annotations

import calendar
import math
import re
import time as _time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from ..errors import ArgumentError, ScriptError
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..values import to_display

OPCODES: list = []

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = {"day": 86_400_000, "hour": 3_600_000, "minute": 60_000, "second": 1000}
UNITS = ("year", "years", "month", "months", "day", "days", "hour", "hours", "minute", "minutes",
         "second", "seconds")
_PARTIAL_DATE = re.compile(r"^\s*([+-]\d{6}|\d{4})(?:-(\d{2}))?\s*$")


def opcode(name, *params, **kw):
    kw.setdefault("category", "time")
    return _opcode(name, *params, into=OPCODES, **kw)


def _invalid(op: str, text) -> ScriptError:
    return ScriptError(f"{op}: invalid time value {to_display(text)}",
                       hint="use ISO-8601 text such as 2024-02-29T12:00:00.000Z")


def to_iso(ms: int | float, op: str) -> str:
    """Milliseconds since the epoch → ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if ms != ms or abs(ms) > 8.64e15:
        raise _invalid(op, ms)
    ms = int(ms)
    try:
        dt = EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise ScriptError(f"{op}: time {ms} is outside the years 1 to 9999") from None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_ms(text: str, op: str) -> int:
    """ISO-8601 (or RFC 2822) text → milliseconds since the epoch; no zone means UTC."""
    t = text.strip()
    m = _PARTIAL_DATE.match(t)
    try:
        if m:
            dt = datetime(int(m.group(1)), int(m.group(2) or 1), 1, tzinfo=UTC)
        else:
            try:
                dt = datetime.fromisoformat(t)
            except ValueError:
                dt = parsedate_to_datetime(t)
    except (ValueError, TypeError, IndexError, OverflowError):
        raise _invalid(op, text) from None
    if dt is None:
        raise _invalid(op, text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@opcode("time.now", label="Now", returns="string", pure=False)
def now(ev):
    """The current time."""
    return to_iso(_time.time_ns() // 1_000_000, "time.now")


@opcode("time.parse", P("time", "string"), label="Parse time", returns="string")
def parse(ev, text):
    """Normalise a time to ISO-8601 UTC with milliseconds."""
    return to_iso(parse_ms(text, "time.parse"), "time.parse")


@opcode("time.format", P("time", "string"), P("format", "string", None), label="Format time",
        returns="string")
def format_(ev, text, fmt=None):
    """The time in the normalised ISO-8601 form (the format argument is accepted and, as in the original, unused)."""
    return to_iso(parse_ms(text, "time.format"), "time.format")


@opcode("time.from_timestamp", P("timestamp", "number"), label="From timestamp", returns="string")
def from_timestamp(ev, ms):
    """Milliseconds since 1970-01-01 UTC → ISO-8601 text."""
    return to_iso(ms, "time.from_timestamp")


@opcode("time.to_timestamp", P("time", "string"), label="To timestamp", returns="number")
def to_timestamp(ev, text):
    """ISO-8601 text → milliseconds since 1970-01-01 UTC."""
    return parse_ms(text, "time.to_timestamp")


def _trunc(x: float) -> int:
    if not math.isfinite(x):
        raise ArgumentError(f"time.offset: amount must be finite, got {to_display(x)}")
    return int(x)


def offset_ms(base: int, amount, unit: str) -> int:
    dt = EPOCH + timedelta(milliseconds=base)
    unit = unit[:-1] if unit.endswith("s") else unit
    if unit in MS:
        field = {"day": dt.day, "hour": dt.hour, "minute": dt.minute, "second": dt.second}[unit]
        return base + (_trunc(field + amount) - field) * MS[unit]
    tod = base - (base // MS["day"]) * MS["day"]
    if unit == "month":
        months = _trunc(dt.month - 1 + amount)
        year, month = dt.year + months // 12, months % 12 + 1
        day = min(dt.day, calendar.monthrange(year, month)[1]) if 1 <= year <= 9999 else dt.day
    else:  # year: like setFullYear, Feb 29 in a common year carries into March
        year, month, day = _trunc(dt.year + amount), dt.month, dt.day
    if not 1 <= year <= 9999:
        raise ScriptError(f"time.offset: year {year} is outside 1 to 9999")
    first = datetime(year, month, 1, tzinfo=UTC)
    days = (first - EPOCH).days + day - 1
    return days * MS["day"] + tod


@opcode("time.offset", P("amount", "number"), P("unit", "string", choices=UNITS), P("base", "string", None),
        label="Offset time", returns="string")
def offset(ev, amount, unit, base=None):
    """Add an amount of years, months, days, hours, minutes or seconds to a time (default: now)."""
    if unit not in UNITS:
        raise ArgumentError("time.offset: unknown unit", hint="use one of: " + ", ".join(UNITS))
    start = _time.time_ns() // 1_000_000 if base is None else parse_ms(base, "time.offset")
    return to_iso(offset_ms(start, amount, unit), "time.offset")
