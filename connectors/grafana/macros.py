"""What Grafana does to a panel's SQL before PostgreSQL sees it, without a Grafana.

No Grafana server can be installed where quoteflow is tested, so the dashboards' SQL is
checked by expanding it the way Grafana's PostgreSQL datasource does and running it on a real
PostgreSQL. Three steps, in Grafana's order:

1. the frontend replaces dashboard variables (`$venue`, `${venue}`): a multi-value or
   include-all variable becomes its values as quoted literals joined by commas (so panels
   write `venue IN ($venue)`), a single-value variable its value with quotes doubled;
   names that are not variables stay as they are;
2. the backend's global substitutions (pkg/tsdb/sqleng): `$__interval_ms`, `$__interval`
   (formatted like gtime.FormatInterval: `1m`, `10s`, `100ms`), `$__unixEpochFrom()`,
   `$__unixEpochTo()`;
3. the PostgreSQL macro engine (pkg/tsdb/grafana-postgresql-datasource/macros.go): every
   `$name(args)`; times as RFC 3339 with nanoseconds in UTC, `$__timeGroup` without
   TimescaleDB as `floor(extract(epoch from col)/N)*N` (the datasource is provisioned with
   `timescaledb: false`, see docs/grafana.md).

Only the macros quoteflow's panels may use are implemented; any other `$name(...)` raises
`MacroError`, as Grafana does for names it does not know, so a panel cannot pass its test
with SQL that Grafana would expand differently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_CALENDAR_INTERVAL = re.compile(r"^(\d+)([dwMy])$")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNIT_NS = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
    "m": 60_000_000_000, "h": 3_600_000_000_000,
}
_DAY = timedelta(days=1)
_YEAR = timedelta(days=365)


class MacroError(ValueError):
    """SQL Grafana would refuse to expand (unknown macro, missing or bad argument)."""


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What Grafana knows when it runs a panel: the time range, the interval it chose for the
    panel's width, and the dashboard variables' current values (a sequence for a multi-value
    or include-all variable, a string for a single-value one)."""

    start: datetime
    end: datetime
    interval: timedelta
    variables: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("the time range must be timezone-aware")
        if self.interval <= timedelta(0):
            raise ValueError(f"interval must be positive, got {self.interval}")


def expand(sql: str, context: QueryContext) -> str:
    """The SQL Grafana sends to PostgreSQL for `sql` under `context`."""
    sql = _replace_variables(sql, context.variables)
    sql = _replace_globals(sql, context)
    return _MACRO.sub(lambda match: _macro(match, sql, context), sql)


def format_interval(interval: timedelta) -> str:
    """`$__interval` as Grafana writes it: the largest whole unit, truncated."""
    for unit, size in (("y", _YEAR), ("d", _DAY), ("h", timedelta(hours=1)),
                       ("m", timedelta(minutes=1)), ("s", timedelta(seconds=1)),
                       ("ms", timedelta(milliseconds=1))):
        if interval >= size:
            return f"{interval // size}{unit}"
    return "1ms"


def parse_interval(text: str) -> timedelta:
    """An interval argument (`'5m'`, `1h30m`, `2d`) as gtime.ParseInterval reads it."""
    calendar = _CALENDAR_INTERVAL.match(text)
    if calendar:
        count, unit = int(calendar[1]), calendar[2]
        if unit in "My":
            # Months and years depend on today's date in Grafana; no panel should group by them.
            raise MacroError(f"calendar interval {text!r} is not supported")
        return count * (_DAY if unit == "d" else 7 * _DAY)
    return timedelta(microseconds=_go_duration_ns(text) / 1_000)


def _replace_variables(sql: str, variables: Mapping[str, str | Sequence[str]]) -> str:
    def replace(match: re.Match) -> str:
        name = match[1] or match[2]
        if name not in variables:
            return match[0]
        value = variables[name]
        if isinstance(value, str):
            return value.replace("'", "''")
        if not value:
            raise MacroError(f"variable ${name} has no value selected")
        return ",".join(_quote(v) for v in value)

    return _VARIABLE.sub(replace, sql)


def _replace_globals(sql: str, context: QueryContext) -> str:
    sql = sql.replace("$__interval_ms", str(context.interval // timedelta(milliseconds=1)))
    sql = sql.replace("$__interval", format_interval(context.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(context.start.timestamp())))
    return sql.replace("$__unixEpochTo()", str(int(context.end.timestamp())))


def _macro(match: re.Match, sql: str, context: QueryContext) -> str:
    name = match[1]
    args = [arg.strip(" ") for arg in match[2].split(",")]
    if name == "__timeGroup":
        # Grafana's pre-5.3 compatibility: `$__timeGroup(...)` directly followed by a comma
        # is taken to be a select-list item and gets the alias.
        end = sql.find(match[0]) + len(match[0])
        if 0 < end < len(sql) and sql[end] == ",":
            name = "__timeGroupAlias"
    if name == "__time":
        return f'{_column(name, args)} AS "time"'
    if name == "__timeFilter":
        column = _column(name, args)
        return f"{column} BETWEEN '{_rfc3339(context.start)}' AND '{_rfc3339(context.end)}'"
    if name == "__timeFrom":
        return f"'{_rfc3339(context.start)}'"
    if name == "__timeTo":
        return f"'{_rfc3339(context.end)}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        group = _time_group(name, args)
        return f'{group} AS "time"' if name == "__timeGroupAlias" else group
    raise MacroError(f"unknown macro {name!r}")


def _column(name: str, args: list[str]) -> str:
    if not args[0]:
        raise MacroError(f"missing time column argument for macro {name}")
    return args[0]


def _time_group(name: str, args: list[str]) -> str:
    if len(args) < 2:
        raise MacroError(f"macro {name} needs time column and interval and optional fill value")
    if len(args) == 3:
        # A fill value makes Grafana resample the result after the query: not SQL, not used.
        raise MacroError(f"macro {name}: fill values are not supported")
    try:
        interval = parse_interval(args[1].strip("'"))
    except ValueError:
        raise MacroError(f"error parsing interval {args[1]}") from None
    seconds = _go_float(interval / timedelta(seconds=1))
    return f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _rfc3339(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: fraction without trailing zeros, none when zero."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _go_duration_ns(text: str) -> int:
    """Go's time.ParseDuration for the non-negative durations Grafana intervals are."""
    if text == "0":
        return 0
    position, total = 0, Decimal(0)
    for part in _GO_DURATION_PART.finditer(text):
        if part.start() != position:
            break
        total += Decimal(part[1]) * _GO_UNIT_NS[part[2]]
        position = part.end()
    if not text or position != len(text):
        raise MacroError(f"invalid duration {text!r}")
    return int(total)


def _go_float(value: float) -> str:
    """A float64 as Go's %v prints it: shortest digits, exponent form outside 1e-4..1e6."""
    number = Decimal(repr(value)).normalize()
    exponent = number.adjusted()
    if -4 <= exponent < 6:
        return format(number, "f")
    digits = "".join(map(str, number.as_tuple().digits))
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
