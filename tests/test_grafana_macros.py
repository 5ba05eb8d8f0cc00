"""The macro expander against the expansions Grafana's own tests expect.

Expected strings are those of Grafana's PostgreSQL macro engine tests
(pkg/tsdb/grafana-postgresql-datasource/macros_test.go), gtime.FormatInterval and the SQL
datasources' `interpolateVariable`; no Grafana server can be installed here to ask.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.grafana.macros import (
    MacroError,
    QueryContext,
    expand,
    format_interval,
    parse_interval,
)

START = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
CONTEXT = QueryContext(START, START + timedelta(minutes=5), timedelta(minutes=10),
                       {"venue": ["binance", "o'kx"], "mode": "it's"})


@pytest.mark.parametrize(("sql", "expanded"), [
    ("select $__time(time_column)", 'select time_column AS "time"'),
    ("WHERE $__timeFilter(time_column)",
     "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'"),
    ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
    ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
    ("SELECT $__timeGroup(time_column,'5m')",
     "SELECT floor(extract(epoch from time_column)/300)*300"),
    ("SELECT $__timeGroupAlias(time_column,'5m')",
     'SELECT floor(extract(epoch from time_column)/300)*300 AS "time"'),
    ("$__timeGroup(time_column , '5m')", "floor(extract(epoch from time_column)/300)*300"),
    ("SELECT $__timeGroup(time_column,'5m'), value",  # Grafana's pre-5.3 compatibility
     'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value'),
    ("SELECT $__timeGroup(time_column,'20ms')",
     "SELECT floor(extract(epoch from time_column)/0.02)*0.02"),
    ("SELECT $__timeGroup(t,'12d')", "SELECT floor(extract(epoch from t)/1.0368e+06)*1.0368e+06"),
    ("SELECT $__interval", "SELECT 10m"),  # Grafana's SQLCommenter test: 10 minutes -> 10m
    ("SELECT $__interval_ms, $__unixEpochFrom(), $__unixEpochTo()",
     "SELECT 600000, 1523556000, 1523556300"),
    ("$__timeGroupAlias(ts, $__interval)", 'floor(extract(epoch from ts)/600)*600 AS "time"'),
    ("venue IN ($venue) AND mode = '${mode}'", "venue IN ('binance','o''kx') AND mode = 'it''s'"),
    ("$unknown stays", "$unknown stays"),
])
def test_expansions_match_grafanas(sql, expanded):
    assert expand(sql, CONTEXT) == expanded


def test_fractional_seconds_are_written_like_go():
    context = QueryContext(datetime(1960, 2, 1, 7, 0, 0, 500_000, tzinfo=UTC),
                           datetime(1980, 2, 3, 8, 0, 0, 500_000, tzinfo=UTC), timedelta(1))
    assert expand("$__timeFilter(t)", context) == (
        "t BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'")


@pytest.mark.parametrize(("interval", "text"), [
    (timedelta(days=400), "1y"), (timedelta(days=2, hours=5), "2d"), (timedelta(hours=1), "1h"),
    (timedelta(minutes=1, seconds=30), "1m"), (timedelta(seconds=10), "10s"),
    (timedelta(milliseconds=100), "100ms"), (timedelta(microseconds=10), "1ms"),
])
def test_intervals_are_formatted_like_grafana(interval, text):
    assert format_interval(interval) == text


# Below a year: years are calendar intervals, which panels must not group by.
@given(st.integers(min_value=1, max_value=365 * 86_400_000 - 1))
def test_a_formatted_interval_parses_back_to_its_truncation(milliseconds):
    interval = timedelta(milliseconds=milliseconds)
    parsed = parse_interval(format_interval(interval))
    assert interval / 2 < parsed <= interval


@pytest.mark.parametrize(("sql", "error"), [
    ("$__timeFilter()", "missing time column"),
    ("$__timeGroup(ts)", "needs time column and interval"),
    ("$__timeGroup(ts, 'soon')", "error parsing interval"),
    ("$__timeGroup(ts, '1M')", "error parsing interval"),
    ("$__timeGroup(ts, '1m', previous)", "fill values are not supported"),
    ("$__unixEpochGroup(ts, '1m')", "unknown macro"),
    ("$__nope()", "unknown macro"),
])
def test_sql_grafana_would_refuse_raises(sql, error):
    with pytest.raises(MacroError, match=error):
        expand(sql, CONTEXT)


def test_bad_contexts_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        QueryContext(datetime(2024, 1, 1), datetime(2024, 1, 2), timedelta(1))
    with pytest.raises(ValueError, match="positive"):
        QueryContext(START, START, timedelta(0))
    with pytest.raises(MacroError, match="no value selected"):
        expand("venue IN ($venue)", QueryContext(START, START, timedelta(1), {"venue": []}))
