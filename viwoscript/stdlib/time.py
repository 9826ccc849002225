"""``time.*``: times are ISO-8601 UTC text with milliseconds (``2024-02-29T12:00:00.000Z``).

Times without a zone are read as UTC. ``time.offset`` follows JavaScript's Date setters (the new
field value is truncated toward zero, overflow carries), except that adding months clamps to the
month's last day (deviation 8).
"""

from __future__ import annotations

import math
import re
import time as _time
from email.utils import parsedate_to_datetime

from ..errors import ArgumentError, ScriptError
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..values import to_display

OPCODES: list = []

DAY_MS = 86_400_000
MS = {"day": DAY_MS, "hour": 3_600_000, "minute": 60_000, "second": 1000}
UNITS = ("year", "years", "month", "months", "day", "days", "hour", "hours", "minute", "minutes",
         "second", "seconds")
#: JavaScript's time range: ±100,000,000 days around the epoch.
MAX_MS = 8.64e15
_ISO = re.compile(
    r"^([+-]\d{6}|\d{4})(?:-(\d{2})(?:-(\d{2}))?)?"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2})?$")


def opcode(name, *params, **kw):
    kw.setdefault("category", "time")
    return _opcode(name, *params, into=OPCODES, **kw)


def _invalid(op: str, text) -> ScriptError:
    return ScriptError(f"{op}: invalid time value {to_display(text)}",
                       hint="use ISO-8601 text such as 2024-02-29T12:00:00.000Z")


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


def to_iso(ms: int | float, op: str) -> str:
    """Milliseconds since the epoch → ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (years beyond 0–9999 as ±YYYYYY)."""
    if ms != ms or abs(ms) > MAX_MS:
        raise _invalid(op, ms)
    ms = int(ms)
    days, rem = divmod(ms, DAY_MS)
    y, mo, d = civil_from_days(days)
    year = f"{y:04d}" if 0 <= y <= 9999 else f"{'+' if y > 0 else '-'}{abs(y):06d}"
    h, rem = divmod(rem, 3_600_000)
    mi, rem = divmod(rem, 60_000)
    sec, milli = divmod(rem, 1000)
    return f"{year}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}.{milli:03d}Z"


def parse_ms(text: str) -> int | float:
    """ISO-8601 (or RFC 2822) text → milliseconds since the epoch, NaN when it is not a time.

    A time without a zone is read as UTC."""
    t = text.strip()
    m = _ISO.match(t)
    if m is None:
        try:
            dt = parsedate_to_datetime(t)
        except (ValueError, TypeError, IndexError, OverflowError):
            return math.nan
        if dt is None:
            return math.nan
        off = dt.utcoffset()
        base = days_from_civil(dt.year, dt.month, dt.day) * DAY_MS + (
            (dt.hour * 60 + dt.minute) * 60 + dt.second) * 1000 + dt.microsecond // 1000
        return base - (int(off.total_seconds() * 1000) if off else 0)
    y, mo, d, h, mi, sec, frac, zone = m.groups()
    y, mo, d = int(y), int(mo or 1), int(d or 1)
    h, mi, sec = int(h or 0), int(mi or 0), int(sec or 0)
    if not (1 <= mo <= 12 and 1 <= d <= _month_days(y, mo) and mi < 60 and sec < 60
            and (h < 24 or (h == 24 and mi == sec == 0 and not (frac or "").strip("0")))):
        return math.nan
    if m.group(1) == "-000000":
        return math.nan
    ms = days_from_civil(y, mo, d) * DAY_MS + ((h * 60 + mi) * 60 + sec) * 1000 + int((frac or "0")[:3].ljust(3, "0"))
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60_000
    return ms if abs(ms) <= MAX_MS else math.nan


def _month_days(y: int, m: int) -> int:
    if m == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _parsed(text: str, op: str) -> int:
    ms = parse_ms(text)
    if ms != ms:
        raise _invalid(op, text)
    return ms


@opcode("time.now", label="Now", returns="string", pure=False)
def now(ev):
    """The current time."""
    return to_iso(_time.time_ns() // 1_000_000, "time.now")


@opcode("time.parse", P("time", "string"), label="Parse time", returns="string")
def parse(ev, text):
    """Normalise a time to ISO-8601 UTC with milliseconds."""
    return to_iso(_parsed(text, "time.parse"), "time.parse")


@opcode("time.format", P("time", "string"), P("format", "string", None), label="Format time",
        returns="string")
def format_(ev, text, fmt=None):
    """The time in the normalised ISO-8601 form (the format argument is accepted and, as in the original, unused)."""
    return to_iso(_parsed(text, "time.format"), "time.format")


@opcode("time.from_timestamp", P("timestamp", "number"), label="From timestamp", returns="string")
def from_timestamp(ev, ms):
    """Milliseconds since 1970-01-01 UTC → ISO-8601 text."""
    return to_iso(ms, "time.from_timestamp")


@opcode("time.to_timestamp", P("time", "string"), label="To timestamp", returns="number")
def to_timestamp(ev, text):
    """ISO-8601 text → milliseconds since 1970-01-01 UTC (NaN when the text is not a time)."""
    return parse_ms(text)


def _trunc(x: float) -> int:
    if not math.isfinite(x):
        raise ArgumentError(f"time.offset: amount must be finite, got {to_display(x)}")
    if abs(x) > MAX_MS:  # no unit is shorter than a millisecond: the result is past every valid time
        raise ScriptError(f"time.offset: the result is outside the valid times (±{MAX_MS:,.0f} ms from 1970)",
                          hint="offset by a smaller amount")
    return int(x)


def offset_ms(base: int, amount, unit: str) -> int:
    days, tod = divmod(base, DAY_MS)
    y, mo, d = civil_from_days(days)
    unit = unit[:-1] if unit.endswith("s") else unit
    if unit in MS:
        h, rem = divmod(tod, 3_600_000)
        mi, rem = divmod(rem, 60_000)
        field = {"day": d, "hour": h, "minute": mi, "second": rem // 1000}[unit]
        return base + (_trunc(field + amount) - field) * MS[unit]
    if unit == "month":
        months = _trunc(mo - 1 + amount)
        y, mo = y + months // 12, months % 12 + 1
        d = min(d, _month_days(y, mo))  # deviation 8: Jan 31 + 1 month = the last day of February
    else:  # year: like setFullYear, Feb 29 in a common year carries into March 1
        y = _trunc(y + amount)
    return days_from_civil(y, mo, 1) * DAY_MS + (d - 1) * DAY_MS + tod


@opcode("time.offset", P("amount", "number"), P("unit", "string", choices=UNITS), P("base", "string", None),
        label="Offset time", returns="string")
def offset(ev, amount, unit, base=None):
    """Add an amount of years, months, days, hours, minutes or seconds to a time (default: now)."""
    if unit not in UNITS:
        raise ArgumentError("time.offset: unknown unit", hint="use one of: " + ", ".join(UNITS))
    start = _time.time_ns() // 1_000_000 if base is None else _parsed(base, "time.offset")
    return to_iso(offset_ms(start, amount, unit), "time.offset")
