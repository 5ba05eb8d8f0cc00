"""`quoteflow suggest` on a slice of a real recording: fit, validate, publish, chart; its
marking clock on constructed events."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pytest
from typer.testing import CliRunner

from models.events import BBO, Fill
from quoteflow.cli import app
from quoteflow.suggest import (
    NS_PER_S,
    exchange_seconds,
    mids_per_second,
    parse_grid,
    pnl_path,
    split_events,
)
from quoteflow.suggestion_store import PATH_ENV, NoSuggestion, read_latest
from tests.recording_slices import slice_recording

LINES = 9000  # about 80 s of Binance spot ETHUSDT: short, so the backtests are quick


@pytest.fixture(scope="module")
def recording_slice(shared_data, tmp_path_factory):
    """The first lines of a shared recording, as a file of the same format (in a temp dir)."""
    return slice_recording(shared_data / "binance" / "spot" / "ethusdt_20240808.gz",
                           tmp_path_factory.mktemp("slice") / "ethusdt_slice.gz", LINES)


def test_suggest_fits_validates_and_publishes(recording_slice, tmp_path, monkeypatch):
    latest = tmp_path / "latest" / "suggestion.json"
    monkeypatch.setenv(PATH_ENV, str(latest))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "suggest", "--data", str(recording_slice), "--out", str(out),
        "--candidate", "ladder:spread_bps=2", "--candidate", "glft:gamma=0.1",
        "--workers", "2", "--cache", str(tmp_path / "cache"),
    ])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1  # the workers' shared decode
    suggestion = json.loads((out / "suggestion.json").read_text())
    assert read_latest() == suggestion  # what the API serves
    assert (out / "suggestion.png").exists()
    fit = {(run["strategy"], tuple(run["params"].items())): run for run in suggestion["fit"]}
    assert set(fit) == {("ladder", (("spread_bps", "2"),)), ("glft", (("gamma", "0.1"),))}
    chosen = fit[(suggestion["strategy"], tuple(suggestion["params"].items()))]
    assert suggestion["is_baseline"] is False  # neither candidate is the default ladder
    assert chosen["net_pnl"] == max(run["net_pnl"] for run in suggestion["fit"])
    validation = suggestion["validation"]
    for side in ("recommended", "baseline"):
        # The mark-to-market path ends where the backtest's own accounting does.
        assert validation[side]["marked_pnl"] == pytest.approx(validation[side]["net_pnl"],
                                                               abs=1e-6)
        assert validation[side]["marked_pnl_se"] >= 0
    advantage = validation["advantage"]
    assert advantage["pnl"] == pytest.approx(
        validation["recommended"]["net_pnl"] - validation["baseline"]["net_pnl"], abs=1e-6
    )


def test_the_validation_part_continues_the_book_from_the_cut(recording_slice):
    from models.book import OrderBook
    from models.events import BookDelta, BookSnapshot
    from quoteflow.suggest import load_events

    events = load_events([recording_slice])
    fit, validation, cut = split_events(events, 0.5)
    assert fit[-1].receive_ts <= cut < validation[1].receive_ts
    snapshot = validation[0]
    assert type(snapshot) is BookSnapshot and snapshot.receive_ts == cut
    # On the exchange clock the book is as of its last diff, not the recorder's cut.
    last_diff = next(e for e in reversed(fit) if type(e) in (BookDelta, BookSnapshot))
    assert snapshot.exchange_ts == last_diff.exchange_ts != cut
    book = OrderBook(snapshot.venue, snapshot.symbol)
    for event in validation:
        if type(event) in (BookDelta, BookSnapshot):
            book.apply(event)
    assert book.synced and book.stats.gaps == 0


def test_bad_candidates_and_missing_suggestions_are_clear(recording_slice, tmp_path,
                                                          monkeypatch):
    result = CliRunner().invoke(app, ["suggest", "--data", str(recording_slice),
                                      "--candidate", "glft:gamma"])
    assert result.exit_code == 2 and "NAME=VALUE" in result.output
    result = CliRunner().invoke(app, ["suggest", "--data", str(recording_slice),
                                      "--candidate", "nope:x=1"])
    assert result.exit_code == 2 and "unknown strategy" in result.output
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_grid(["ladder:spread_bps"])
    monkeypatch.setenv(PATH_ENV, str(tmp_path / "none.json"))
    with pytest.raises(NoSuggestion, match="quoteflow suggest"):
        read_latest()
    (tmp_path / "none.json").write_text("{half")
    with pytest.raises(NoSuggestion, match="unreadable"):
        read_latest()


OFFSET = 1_270_000_000  # the exchange clock 1.27 s ahead of the recorder's, as on these files
T0 = 1_000 * NS_PER_S


def _touch(receive_s: float, mid: int) -> BBO:
    receive = T0 + round(receive_s * NS_PER_S)
    return BBO(venue="binance", symbol="ETH/USDT", exchange_ts=receive + OFFSET,
               receive_ts=receive, bid_price=Decimal(mid - 1), bid_size=Decimal(1),
               ask_price=Decimal(mid + 1), ask_size=Decimal(1))


def test_fills_are_marked_on_their_own_exchange_clock():
    """The grid and the mids are on the exchange clock, the clock the paper venue stamps
    fills on: a fill counts from the first grid point at or after it, against the mid the
    market showed then. (On the recorder's clock the fill, made when the mid was 111, would
    be marked against 121 a second early.)"""
    # Exchange times 1.37, 2.77, 4.27, 5.77 s after T0; the mid after each 101 ... 131.
    events = [_touch(0.1, 101), _touch(1.5, 111), _touch(3.0, 121), _touch(4.5, 131)]
    grid = exchange_seconds(events)
    seconds = [T0 + s * NS_PER_S for s in (2, 3, 4, 5)]
    assert grid.tolist() == [*seconds, T0 + 5_770_000_000]
    stamps, mids = mids_per_second(events)["binance:ETH/USDT"]
    index = np.searchsorted(stamps, grid, side="right") - 1
    assert mids[index].tolist() == [101, 111, 111, 121, 131]  # the state at each instant
    # Bought at the second touch's exchange time (2.77 s), at its mid.
    fill = Fill(venue="binance", symbol="ETH/USDT", ts=events[1].exchange_ts,
                client_order_id="c", trade_id="t", side="buy", price=Decimal(111),
                size=Decimal(1), fee=Decimal(0), fee_currency="USDT", liquidity="maker")
    path = pnl_path({"binance:ETH/USDT": [fill]}, {"binance:ETH/USDT": (stamps, mids)}, grid)
    assert path.tolist() == [0, 0, 0, 10, 20]
