"""Fidelity against a peer: quoteflow and hftbacktest backtest one strategy on one recording.

The strategy is the simplest market maker (models/strategies/fixed_offset.py): one bid
`offset_ticks` below the best bid and one ask as far above the best ask, `order_size` each,
requoted every `requote_ms`, both sides stopping at `max_inventory_lots`. Both backtests get
the same constant order entry and response latencies, a risk-averse queue (an order only
advances when trades print at its price, hftbacktest's `risk_adverse_queue_model`), no
partial fills, post-only orders and the venue's maker and taker fees.

Both start quoting at the same moment: when quoteflow's engine would first quote, which is
when its online estimators are ready (the engine waits for σ, A and k whatever the
strategy). The recordings are hftbacktest's own raw Binance captures: USD-M files convert
with hftbacktest's `binancefutures.convert`; hftbacktest has no converter for spot, so
`convert_spot` below does the same for spot's messages (depth diffs stamped with their
event time `E`, the REST snapshot placed at the exchange time of the last diff it covers
and the diffs it covers dropped, trades at their trade time `T`).

Both requote on one grid: multiples of `requote_ms` on the recorder's clock (hftbacktest's
local clock less the shift its `correct_local_timestamp` adds), so the two can be compared
requote by requote. hftbacktest has no request budget, so quoteflow's paper venue gets one no
requote reaches (`[paper] rate_limit_ms`, written to a config file here; `--rate-limit-ms`
gives it ccxt's kind instead). quoteflow runs three times: as configured (it quotes and
matches on the fresher of bookTicker and the L2 book), on the L2 touch alone (the recording
without bookTicker: what the fresher touch changes), and on the data as hftbacktest reads it
(also each message at its transaction time `T` instead of its event time `E`). Fills are
matched one to one, and each fill only one engine made is traced to the requote that decided
its order (`attribute`): did the other engine quote another price there?

hftbacktest 2.4.4 pins numpy < 2.3 and quoteflow pins numpy 2.4.6, so hftbacktest cannot
live in quoteflow's environment: it runs in `.venv-bench` (bench/requirements-hftbacktest.txt,
made by `./dev bench`), where this file is run again with `--hftbacktest-side` and prints its
results as JSON. Without that environment the table has quoteflow's column only.

    .venv/bin/python -m bench.fidelity_hftbacktest [--data FILE ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# As in bench/common.py, which this file cannot import at the top: the hftbacktest side runs
# in .venv-bench, where quoteflow's dependencies (rich) are not installed.
ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("QUOTEFLOW_SHARED_DATA", ROOT.parent / "shared" / "data"))
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
DEFAULT_DATA = (
    SHARED_DATA / "binance" / "usdm" / "btcusdt_20240808.gz",
    SHARED_DATA / "binance" / "spot" / "btcusdt_20240808.gz",
)
NS_PER_MS = 1_000_000


# -- settings shared by both sides -------------------------------------------------------------

def venue_rules(path: Path) -> dict:
    """quoteflow's trading rules of a recorded Binance file's instrument (USD-M or spot).

    Read in quoteflow's environment and handed to the hftbacktest side in its settings, so
    both backtests use one tick, lot, fee schedule and quote size.
    """
    try:
        from connectors.venues.market_cache import instrument_for
    except ImportError:  # before the venues' market caches
        from models.instrument import instrument_for

    usdm = path.parent.name == "usdm"
    base = path.name.split("usdt")[0].upper()
    instrument = instrument_for(
        "binanceusdm" if usdm else "binance", f"{base}/USDT:USDT" if usdm else f"{base}/USDT"
    )
    return {
        "instrument": instrument.key,
        "tick_size": float(instrument.tick_size),
        "lot_size": float(instrument.step_size),
        "maker_fee": float(instrument.maker_fee),
        "taker_fee": float(instrument.taker_fee),
        "order_size": float(instrument.default_order_size),
    }


# -- the hftbacktest side (runs in .venv-bench) ------------------------------------------------

def convert_spot(path: Path):
    """hftbacktest events from a raw Binance spot capture (see the module docstring)."""
    import numpy as np
    from hftbacktest import (
        BUY_EVENT,
        DEPTH_CLEAR_EVENT,
        DEPTH_EVENT,
        DEPTH_SNAPSHOT_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
    )
    from hftbacktest.data.validation import (
        correct_event_order,
        correct_local_timestamp,
        validate_event_order,
    )
    from hftbacktest.types import event_dtype

    rows: list[tuple] = []
    diffs: list[tuple[int, int, int]] = []  # (last update id, first row, end row) per diff
    snapshot_at = None
    with gzip.open(path, "rt") as lines:
        for line in lines:
            local_ts = int(line[:19])
            message = json.loads(line[20:])
            data = message.get("data")
            if data is None:  # the REST snapshot
                if "lastUpdateId" in message and snapshot_at is None:
                    snapshot_at = (local_ts, message)
                continue
            kind = data.get("e")
            if kind == "trade":
                side = SELL_EVENT if data["m"] else BUY_EVENT
                rows.append((TRADE_EVENT | side, data["T"] * NS_PER_MS, local_ts,
                             float(data["p"]), float(data["q"]), 0, 0, 0.0))
            elif kind == "depthUpdate":
                first = len(rows)
                exch_ts = data["E"] * NS_PER_MS
                for flag, levels in ((BUY_EVENT, data["b"]), (SELL_EVENT, data["a"])):
                    for price, qty in levels:
                        rows.append((DEPTH_EVENT | flag, exch_ts, local_ts,
                                     float(price), float(qty), 0, 0, 0.0))
                diffs.append((data["u"], first, len(rows)))
    if snapshot_at is not None:
        local_ts, snapshot = snapshot_at
        covered = [d for d in diffs if d[0] <= snapshot["lastUpdateId"]]
        drop = {i for _, start, end in covered for i in range(start, end)}
        exch_ts = rows[covered[-1][1]][1] if covered else rows[0][1]
        rows = [row for i, row in enumerate(rows) if i not in drop]
        for flag, levels in ((BUY_EVENT, snapshot["bids"]), (SELL_EVENT, snapshot["asks"])):
            rows.append((DEPTH_CLEAR_EVENT | flag, exch_ts, local_ts,
                         float(levels[-1][0]), 0.0, 0, 0, 0.0))
            rows.extend((DEPTH_SNAPSHOT_EVENT | flag, exch_ts, local_ts,
                         float(price), float(qty), 0, 0, 0.0) for price, qty in levels)
    events = np.array(rows, dtype=event_dtype)
    events = events[np.argsort(events["local_ts"], kind="stable")]
    events = correct_local_timestamp(events, 0)
    events = correct_event_order(
        events,
        np.argsort(events["exch_ts"], kind="mergesort"),
        np.argsort(events["local_ts"], kind="mergesort"),
    )
    validate_event_order(events)
    return events


def convert(path: Path):
    """hftbacktest's events of a raw capture, converted afresh: its own
    `binancefutures.convert` for USD-M, `convert_spot` for spot."""
    if path.parent.name == "spot":
        return convert_spot(path)
    from hftbacktest.data.utils import binancefutures

    return binancefutures.convert(str(path), buffer_size=20_000_000)


def hftbacktest_events(path: Path, cache: Path):
    """Converted events, cached as npz beside the results (conversion takes seconds)."""
    import numpy as np

    cache.mkdir(parents=True, exist_ok=True)
    npz = cache / f"{path.parent.name}_{path.name.split('.')[0]}.npz"
    if npz.exists() and npz.stat().st_mtime >= path.stat().st_mtime:
        return np.load(npz)["data"]
    events = convert(path)
    np.savez_compressed(npz, data=events)
    return events


@functools.cache  # numba compiles the functions below once per process, on first call
def _quote_loop():
    """The strategy as hftbacktest runs it: compiled once, on first use."""
    from hftbacktest import BUY, FILLED, GTX, LIMIT
    from numba import njit

    @njit
    def record_fills(hbt, fills, n):
        orders = hbt.orders(0)
        values = orders.values()
        while values.has_next():
            order = values.get()
            if order.status == FILLED and n < fills.shape[0]:
                fills[n, 0] = order.exch_timestamp
                fills[n, 1] = 1.0 if order.side == BUY else -1.0
                fills[n, 2] = order.exec_price
                fills[n, 3] = order.exec_qty
                fills[n, 4] = order.order_id
                n += 1
        hbt.clear_inactive_orders(0)
        return n

    @njit
    def side_step(hbt, order_id, want, target, last, on_change, is_buy, next_id, size, tick):
        """One side at one requote: keep the order if it rests at `target`, else cancel it,
        and place a new one if wanted. Returns (order id, last price tick quoted, next id)."""
        orders = hbt.orders(0)
        if order_id != 0 and order_id in orders:
            order = orders.get(order_id)
            if order.cancellable and (not want or order.price_tick != target):
                hbt.cancel(0, order_id, False)
                order_id = 0
        else:
            order_id = 0
        if not want:
            return order_id, -1, next_id
        if order_id != 0 or (on_change and last == target):
            return order_id, last, next_id
        if is_buy:
            hbt.submit_buy_order(0, next_id, target * tick, size, GTX, LIMIT, False)
        else:
            hbt.submit_sell_order(0, next_id, target * tick, size, GTX, LIMIT, False)
        return next_id, target, next_id + 1

    @njit
    def quote_loop(
        hbt, offset, size, requote_ns, start_ns, grid_shift, max_position, on_change, fills,
        touch, placed,
    ):
        n = 0
        samples = 0
        k = 0
        next_id = 1
        bid_id = 0
        ask_id = 0
        # the price each side last quoted (−1: none); with `on_change` a side is quoted again
        # only when its price changes, as quoteflow's engine sends a new desired state only
        # when it differs from the last, so a filled order is not replaced at the same price
        last_bid = -1
        last_ask = -1
        # quoteflow requotes at multiples of `requote_ns` of the recorder's clock, which is
        # hftbacktest's local clock less `grid_shift`: the same grid, so the two can be
        # compared requote by requote
        hbt.elapse(1)  # the clock starts (at the data's first timestamp) with the first step
        phase = (hbt.current_timestamp - grid_shift) % requote_ns
        if phase:
            hbt.elapse(requote_ns - phase)
        while hbt.elapse(requote_ns) == 0:
            n = record_fills(hbt, fills, n)
            if hbt.current_timestamp < start_ns:
                continue
            depth = hbt.depth(0)
            bid_tick, ask_tick = depth.best_bid_tick, depth.best_ask_tick
            if bid_tick <= 0 or ask_tick >= 2**62 or ask_tick <= bid_tick:
                continue
            if samples < touch.shape[0]:
                touch[samples, 0] = hbt.current_timestamp
                touch[samples, 1] = depth.best_bid
                touch[samples, 2] = depth.best_ask
                samples += 1
            position = hbt.position(0)
            before = next_id
            bid_id, last_bid, next_id = side_step(
                hbt, bid_id, position < max_position - size / 2, bid_tick - offset, last_bid,
                on_change, True, next_id, size, depth.tick_size,
            )
            if next_id != before and k < placed.shape[0]:  # (requote time, side, price, id)
                placed[k, 0] = hbt.current_timestamp
                placed[k, 1] = 1.0
                placed[k, 2] = (bid_tick - offset) * depth.tick_size
                placed[k, 3] = bid_id
                k += 1
            before = next_id
            ask_id, last_ask, next_id = side_step(
                hbt, ask_id, position > -max_position + size / 2, ask_tick + offset, last_ask,
                on_change, False, next_id, size, depth.tick_size,
            )
            if next_id != before and k < placed.shape[0]:
                placed[k, 0] = hbt.current_timestamp
                placed[k, 1] = -1.0
                placed[k, 2] = (ask_tick + offset) * depth.tick_size
                placed[k, 3] = ask_id
                k += 1
        return record_fills(hbt, fills, n), next_id - 1, samples, k

    return quote_loop


def run_hftbacktest(events, settings: dict) -> dict:
    """hftbacktest's backtest of the strategy on converted `events`."""
    import numpy as np
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    rules = settings
    size = settings["order_size"]
    asset = (
        BacktestAsset()
        .data([events])
        .linear_asset(1.0)
        .constant_order_latency(
            int(settings["order_latency_ms"] * NS_PER_MS),
            int(settings["response_latency_ms"] * NS_PER_MS),
        )
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(rules["maker_fee"], rules["taker_fee"])
        .tick_size(rules["tick_size"])
        .lot_size(rules["lot_size"])
    )
    hbt = HashMapMarketDepthBacktest([asset])
    fills = np.zeros((200_000, 5))
    touch = np.zeros((1_000_000, 3))
    placed = np.zeros((1_000_000, 4))
    shift = settings["clock_shift_ns"]
    count, orders, samples, placements = _quote_loop()(
        hbt, settings["offset_ticks"], size, int(settings["requote_ms"] * NS_PER_MS),
        settings["start_local_ns"] + shift, shift,
        size * float(settings["max_inventory_lots"]), settings["peer_quotes_on_change"], fills,
        touch, placed,
    )
    state = hbt.state_values(0)
    depth = hbt.depth(0)
    mid = (depth.best_bid + depth.best_ask) / 2
    result = {
        "fills": int(state.num_trades),
        "orders_sent": int(orders),
        "buy_fills": int((fills[:count, 1] > 0).sum()),
        "sell_fills": int((fills[:count, 1] < 0).sum()),
        "volume": float(state.trading_value),
        "final_position": float(state.position),
        "fees": float(state.fee),
        "net_pnl": float(state.balance + state.position * mid - state.fee),
        "final_mid": float(mid),
        # (exchange time ns, +1 buy / −1 sell, price) of each fill, for bench-side analysis
        "fill_records": [[int(ts), int(side), price] for ts, side, price, *_ in fills[:count]],
        # the order of each fill and each order's (requote time on the recording's clock,
        # side, price, id): which requote decided the order that filled
        "fill_order_ids": [int(order_id) for order_id in fills[:count, 4]],
        "placements": [[int(ts) - shift, int(side), price, int(order_id)]
                       for ts, side, price, order_id in placed[:placements]],
        # (receive time on the recording's clock, best bid, best ask) at each requote
        "touch_samples": [[int(ts) - shift, bid, ask] for ts, bid, ask in touch[:samples]],
    }
    hbt.close()
    return result


# -- the quoteflow side ------------------------------------------------------------------------

def quoteflow_start(path: Path) -> tuple[int, int]:
    """The recording's first receive time and the receive time from which quoteflow's engine
    can quote.

    The engine quotes once its volatility and intensity estimators are ready, whatever the
    strategy; they are fed here as the engine feeds them (the book's mid at each book
    change, every trade with the mid before it).
    """
    from connectors.replay.recordings import Recordings
    from models.book import OrderBook
    from models.estimators import IntensityEstimator, VolatilityEstimator
    from models.events import BookDelta, BookSnapshot, Trade

    volatility, intensity = VolatilityEstimator(), IntensityEstimator()
    book = None
    first = mid = None
    for event in Recordings([path]).events():
        if not hasattr(event, "exchange_ts"):
            continue
        first = event.receive_ts if first is None else first
        if isinstance(event, (BookSnapshot, BookDelta)):
            book = book or OrderBook(event.venue, event.symbol)
            book.apply(event)
            if book.best_bid() is not None and book.best_ask() is not None:
                mid = float(book.mid())
                volatility.update(event.receive_ts, mid)
        elif isinstance(event, Trade) and mid is not None:
            intensity.on_trade(event.receive_ts, float(event.price), mid, side=event.side,
                               exchange_ts=event.exchange_ts, trade_id=event.trade_id)
        if volatility.ready and intensity.ready:
            return first, event.receive_ts
    raise SystemExit(f"fidelity: quoteflow's estimators never warm up on {path}")


def hftbacktest_clock_shift_ns(path: Path) -> int:
    """What hftbacktest adds to every local timestamp of `path` (`correct_local_timestamp`):
    the recorder's clock runs behind the exchange's (about 1.27 s in the shared files), and
    hftbacktest moves it forward until no message arrives before it was sent."""
    shift = 0
    with gzip.open(path, "rt") as lines:
        for line in lines:
            data = json.loads(line[20:]).get("data") or {}
            kind = data.get("e")
            exchange_ms = data.get("T") if kind == "trade" else (
                data.get("T") or data.get("E") if kind == "depthUpdate" else None
            )
            if exchange_ms:
                shift = max(shift, exchange_ms * NS_PER_MS - int(line[:19]))
    return shift


def quoteflow_touches(path: Path, times: list[int]) -> list[tuple]:
    """quoteflow's books at each of `times` (the recording's clock, ascending), replayed as
    its quote session keeps them: (L2 bid, L2 ask, fresh bid, fresh ask), the fresh touch
    being the fresher of the L2 book and bookTicker (`models.fresh_book`); None before a
    two-sided book."""
    from connectors.replay.recordings import Recordings
    from models.book import OrderBook
    from models.events import BBO, BookDelta, BookSnapshot
    from models.fresh_book import FreshBook

    book: FreshBook | None = None
    touches: list[tuple] = []

    def price(level) -> float | None:
        return None if level is None else float(level[0])

    for event in Recordings([path]).events():
        while len(touches) < len(times) and times[len(touches)] < event.receive_ts:
            l2 = None if book is None else book.l2
            touches.append((
                None if l2 is None else price(l2.best_bid()),
                None if l2 is None else price(l2.best_ask()),
                None if book is None else price(book.bid),
                None if book is None else price(book.ask),
            ))
        if isinstance(event, (BookSnapshot, BookDelta, BBO)):
            book = book or FreshBook(OrderBook(event.venue, event.symbol))
            book.apply(event)
    touches += [touches[-1] if touches else (None,) * 4] * (len(times) - len(touches))
    return touches


def touch_agreement(samples: list, touches: list[tuple]) -> dict:
    """How often hftbacktest's L2 touch equals quoteflow's replayed L2 book at the same
    requote (a check of both conversions, so that no difference comes from the data), and
    how often quoteflow's fresh touch differs from it, per side."""
    def same(a, b) -> bool:
        return a is not None and abs(a - b) < 1e-9

    return {
        "samples": len(samples),
        "same": sum(same(t[0], bid) and same(t[1], ask)
                    for (_, bid, ask), t in zip(samples, touches, strict=True)),
        "fresh_bid_differs": sum(not same(t[2], bid)
                                 for (_, bid, _), t in zip(samples, touches, strict=True)),
        "fresh_ask_differs": sum(not same(t[3], ask)
                                 for (_, _, ask), t in zip(samples, touches, strict=True)),
    }


def attribute(ours: dict, peer: dict, touches: list[tuple], settings: dict,
              fresh: bool = True) -> dict:
    """Fills one engine made and the other did not, each traced to the requote that decided
    its order: `touch` when the other engine quoted another price on that side at that
    requote (quoteflow's fresher touch), `same_quote` when both quoted the same price there
    (the rest: queue position, what was still resting, the position cap).

    hftbacktest's orders are known by id; quoteflow's requote is its order's arrival on the
    exchange clock less the clock shift and the entry latency, on the grid."""
    step = round(settings["requote_ms"] * NS_PER_MS)
    offset = settings["offset_ticks"] * settings["tick_size"]
    samples = peer["touch_samples"]
    # requotes by their number on the grid (hftbacktest's times went through float64, which
    # keeps nanoseconds since 1970 only to 256 ns)
    index = {round(ts / step): i for i, (ts, _, _) in enumerate(samples)}
    placed = {order_id: round(ts / step) for ts, _, _, order_id in peer["placements"]}

    def quoted(i: int, side: int, engine: str) -> float | None:
        """What `engine` quoted on `side` at requote `i` (the touch, `offset` ticks out)."""
        if engine == "hftbacktest":
            touch = samples[i][1] if side == 1 else samples[i][2]
        else:
            touch = touches[i][(2 if fresh else 0) + (0 if side == 1 else 1)]
        return None if touch is None else touch - offset if side == 1 else touch + offset

    ours_steps = [
        index.get(round((arrival - settings["clock_shift_ns"]
                         - settings["order_latency_ms"] * NS_PER_MS) / step))
        for arrival in ours["fill_arrivals"]
    ]
    theirs_steps = [index.get(placed.get(order_id)) for order_id in peer["fill_order_ids"]]
    only = match_fills(ours["fill_records"], peer["fill_records"], unmatched=True)
    result = {}
    for engine, other, fills, steps in (
        ("quoteflow", "hftbacktest", ours["fill_records"], ours_steps),
        ("hftbacktest", "quoteflow", peer["fill_records"], theirs_steps),
    ):
        counts = {"touch": 0, "same_quote": 0, "unknown_requote": 0}
        for position in only[engine]:
            _, side, price = fills[position]
            i = steps[position]
            if i is None:
                counts["unknown_requote"] += 1
                continue
            theirs = quoted(i, side, other)
            counts["touch" if theirs is None or abs(theirs - price) > 1e-9
                   else "same_quote"] += 1
        result[f"{engine}_only"] = counts
    return result


def backtest_flags() -> set[str]:
    """The options this checkout's `quoteflow backtest` offers (the latency flags are new)."""
    help_text = subprocess.run(
        [str(quoteflow_command()), "backtest", "--help"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=True,
    ).stdout
    return {word.strip("│ ,") for word in help_text.split() if word.startswith("--")}


def quoteflow_command() -> Path:
    return Path(sys.executable).parent / "quoteflow"


# hftbacktest has no request budget; quoteflow's paper venue always has one, so it gets one
# that no requote reaches: a burst of 1,000 requests, one more every microsecond.
UNLIMITED_BUDGET = (0.001, 1000.0)


def quoteflow_config(settings: dict, out: Path) -> Path:
    """The `[paper]` section of quoteflow's run: the request budget the comparison gives it
    (`rate_limit_ms` None: none, as hftbacktest; else ccxt's kind, one request per that many
    ms, no burst)."""
    budget = settings["rate_limit_ms"]
    ms, capacity = UNLIMITED_BUDGET if budget is None else (budget, 1.0)
    path = out / "quoteflow_fidelity.toml"
    path.write_text(f"[paper]\nrate_limit_ms = {ms}\nrate_limit_capacity = {capacity}\n")
    return path


def without_book_ticker(path: Path, out: Path) -> Path:
    """The recording without its bookTicker stream: quoteflow then quotes, matches and
    checks post-only on the L2 touch alone, as hftbacktest does (to measure what the fresher
    touch changes). Kept beside the results, in a folder named like the original's."""
    return _rewritten(path, out / "l2_touch", lambda line: line)


def as_hftbacktest_reads_it(path: Path, out: Path) -> Path:
    """The recording as hftbacktest's conversion reads it: no bookTicker, and each message
    stamped with its transaction time `T` where it has one (trades, USD-M depth) instead of
    its event time `E`, which quoteflow reads as the exchange time (E − T is 0 to a few ms:
    whether an order arrived before a book change or a print can differ)."""

    def transaction_time(line: str) -> str:
        message = json.loads(line[20:])
        data = message.get("data")
        if not isinstance(data, dict) or "T" not in data or "E" not in data:
            return line
        data["E"] = data["T"]
        return f"{line[:20]}{json.dumps(message, separators=(',', ':'))}\n"

    return _rewritten(path, out / "peer_view", transaction_time)


def _rewritten(path: Path, folder: Path, change) -> Path:
    """`path` without bookTicker lines and with `change` applied to the others, kept in
    `folder` under the name and parent folder name (spot/, usdm/) of the original."""
    target = folder / path.parent.name / path.name
    if not (target.exists() and target.stat().st_mtime >= path.stat().st_mtime):
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "rt") as source, gzip.open(target, "wt") as sink:
            sink.writelines(change(line) for line in source if "@bookTicker" not in line[20:80])
    return target


def quoteflow_backtest_args(
    path: Path, settings: dict, out: Path, variant: str = ""
) -> tuple[list[str], Path, list[str]]:
    """The arguments of `quoteflow backtest` with the fixed-offset strategy and the
    comparison's settings, the summary JSON it writes, and the flags this checkout lacks.
    `variant` names a run on a changed recording (its files get it as a suffix)."""
    size = settings["order_size"]
    flags = backtest_flags()
    stem = f"{path.parent.name}_{path.name.split('.')[0]}{variant and '_' + variant}"
    summary_path = out / f"quoteflow_{stem}.json"
    command = [
        "backtest", "--data", str(path), "--strategy", "fixed-offset",
        "--param", f"offset_ticks={settings['offset_ticks']}",
        "--param", f"order_size={size}", "--param", f"tick_size={settings['tick_size']}",
        "--max-inventory-lots", str(settings["max_inventory_lots"]),
        "--json", str(summary_path),
    ]
    missing = []
    wanted = {
        "--config": [str(quoteflow_config(settings, out))],
        "--requote-ms": [str(settings["requote_ms"])],
        "--order-latency-ms": [str(settings["order_latency_ms"])],
        # hftbacktest's constant latency applies its entry latency to cancels too
        "--cancel-latency-ms": [str(settings["order_latency_ms"])],
        "--response-latency-ms": [str(settings["response_latency_ms"])],
        "--queue-model": ["risk-averse"],
        "--no-partial-fills": [],
        "--fills": [str(summary_path.with_suffix(".fills.jsonl"))],
    }
    for flag, values in wanted.items():
        if flag in flags:
            command += [flag, *values]
        elif flag == "--order-latency-ms" and "--latency-ms" in flags:
            command += ["--latency-ms", *values]
        else:
            missing.append(flag)
    return command, summary_path, missing


def run_quoteflow(path: Path, settings: dict, out: Path, variant: str = "") -> dict:
    """`quoteflow backtest` with the fixed-offset strategy; the flags it lacks are reported.
    `variant` names a run on a changed recording (its files get it as a suffix)."""
    command, summary_path, missing = quoteflow_backtest_args(path, settings, out, variant)
    subprocess.run([str(quoteflow_command()), *command], check=True, capture_output=True,
                   text=True)
    summary = json.loads(summary_path.read_text())
    instrument = summary["instruments"][settings["instrument"]]
    result = {
        "fills": int(instrument["fills"]),
        "volume": float(instrument["volume"]),
        "final_position": float(instrument["final_inventory"]),
        "fees": float(instrument["fees"]),
        "net_pnl": float(instrument["net_pnl"]),
        "intents": summary["intents"],
        "orders": instrument.get("orders", {}),
        "risk": instrument.get("risk", {}),
        "missing_flags": missing,
    }
    fills_file = summary_path.with_suffix(".fills.jsonl")
    if fills_file.exists():
        records = [json.loads(line) for line in fills_file.read_text().splitlines() if line]
        result["buy_fills"] = sum(r["side"] == "buy" for r in records)
        result["sell_fills"] = sum(r["side"] == "sell" for r in records)
        result["fills_by_cause"] = {
            cause: sum(r["cause"] == cause for r in records) for cause in ("trade", "book")
        }
        result["fill_records"] = [
            [r["cause_exchange_ts"], 1 if r["side"] == "buy" else -1, float(r["price"])]
            for r in records
        ]
        result["fill_arrivals"] = [r["order_arrival_exchange_ts"] for r in records]
    return result


def match_fills(
    ours: list, theirs: list, window_ns: int = 100 * NS_PER_MS, *, unmatched: bool = False
) -> dict:
    """Fills both backtests made (same side and price, exchange times within `window_ns`),
    and those only one of them made, per side; with `unmatched`, the positions in `ours`
    and `theirs` of those only one of them made instead."""
    free = sorted(range(len(theirs)), key=lambda i: theirs[i])
    matched = {1: 0, -1: 0}
    only_ours = {1: 0, -1: 0}
    ours_only = []
    for position in sorted(range(len(ours)), key=lambda i: ours[i]):
        ts, side, price = ours[position]
        found = next(
            (
                n for n, i in enumerate(free)
                if abs(theirs[i][0] - ts) <= window_ns and theirs[i][1] == side
                and abs(theirs[i][2] - price) < 1e-9
            ),
            None,
        )
        if found is None:
            only_ours[side] += 1
            ours_only.append(position)
        else:
            matched[side] += 1
            del free[found]
    if unmatched:
        return {"quoteflow": ours_only, "hftbacktest": free}
    only_theirs = {side: sum(theirs[i][1] == side for i in free) for side in (1, -1)}
    return {
        f"{name}_{label}": counts[side]
        for name, counts in (("both", matched), ("quoteflow_only", only_ours),
                             ("hftbacktest_only", only_theirs))
        for side, label in ((1, "buys"), (-1, "sells"))
    }


# -- the comparison ----------------------------------------------------------------------------

COMPARED = (("fills", 0.10), ("volume", 0.10), ("final_position", None), ("net_pnl", 0.20))


def compare(quoteflow: dict, peer: dict | None) -> dict:
    """Per measure: both values, quoteflow's relative difference and whether it is in target."""
    rows = {}
    for name, target in COMPARED:
        ours = quoteflow[name]
        theirs = None if peer is None else peer[name]
        diff = None
        if theirs is not None and theirs != 0:
            diff = (ours - theirs) / abs(theirs)
        rows[name] = {
            "quoteflow": ours, "hftbacktest": theirs, "relative_difference": diff,
            "target": target,
            "within_target": None if diff is None or target is None else abs(diff) <= target,
        }
    return rows


def print_table(results: dict, console) -> None:
    from rich.table import Table

    table = Table(title="Fidelity against hftbacktest (same recording, strategy, latencies)")
    for column in ("recording", "measure", "quoteflow", "hftbacktest", "difference", "target",
                   "quoteflow, L2 touch", "difference"):
        table.add_column(column, justify="left" if column in ("recording", "measure") else "right")

    def difference(row: dict) -> str:
        diff = row["relative_difference"]
        mark = {True: " ok", False: " out", None: ""}[row["within_target"]]
        return "-" if diff is None else f"{diff:+.1%}{mark}"

    for name, result in results.items():
        for measure, row in result["comparison"].items():
            l2 = result["comparison_l2_touch"][measure]
            table.add_row(
                name, measure, f"{row['quoteflow']:,.4f}",
                "-" if row["hftbacktest"] is None else f"{row['hftbacktest']:,.4f}",
                difference(row), "-" if row["target"] is None else f"±{row['target']:.0%}",
                f"{l2['quoteflow']:,.4f}", difference(l2),
            )
            name = ""
    console.print(table)


def print_matching(results: dict, console) -> None:
    """Fills matched one to one, for quoteflow as configured and its two variants."""
    from rich.table import Table

    table = Table(title="Fills one to one (same side and price, exchange times within 100 ms)")
    for column in ("recording", "quoteflow run", "fills", "both", "quoteflow only",
                   "hftbacktest only"):
        table.add_column(column, justify="left" if column in ("recording", "quoteflow run")
                         else "right")
    runs = (
        ("as configured", "", "quoteflow"),
        ("L2 touch only", "_l2_touch", "quoteflow_l2_touch"),
        ("as hftbacktest reads the data", "_peer_view", "quoteflow_peer_view"),
    )
    for name, result in results.items():
        for label, suffix, key in runs:
            matching = result.get(f"fill_matching{suffix}")
            if matching is None:
                continue
            table.add_row(
                name, label, str(result[key]["fills"]),
                str(matching["both_buys"] + matching["both_sells"]),
                str(matching["quoteflow_only_buys"] + matching["quoteflow_only_sells"]),
                str(matching["hftbacktest_only_buys"] + matching["hftbacktest_only_sells"]),
            )
            name = ""
    console.print(table)


def machine() -> dict:
    """The shared benchmarks' machine record, the peer's version and quoteflow's commit."""
    from bench.common import machine as common_machine

    record = common_machine()
    if BENCH_PYTHON.exists():
        record["hftbacktest"] = subprocess.run(
            [str(BENCH_PYTHON), "-c", "import hftbacktest; print(hftbacktest.__version__)"],
            capture_output=True, text=True,
        ).stdout.strip()
    git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                         text=True, cwd=ROOT)
    record["quoteflow_commit"] = git.stdout.strip() or None
    return record


def comparison_settings(path: Path, args: argparse.Namespace) -> dict:
    """What both backtests of `path` share: the venue's rules, the strategy and latencies of
    the options, when quoting starts and hftbacktest's clock shift."""
    rules = venue_rules(path)
    settings = {
        **rules,
        "offset_ticks": args.offset_ticks,
        "order_size": args.order_size or rules["order_size"],
        "requote_ms": args.requote_ms, "order_latency_ms": args.order_latency_ms,
        "response_latency_ms": args.response_latency_ms,
        "max_inventory_lots": args.max_inventory_lots,
        "peer_quotes_on_change": args.peer_quotes_on_change,
        "rate_limit_ms": args.rate_limit_ms,
    }
    first, start = quoteflow_start(path)
    settings.update(
        start_offset_ns=start - first, start_local_ns=start,
        clock_shift_ns=hftbacktest_clock_shift_ns(path),
    )
    return settings


def parse_args(
    argv: Sequence[str] | None, description: str | None = None, more_options=None
) -> argparse.Namespace:
    """The comparison's options; `more_options(parser)` adds those of another benchmark
    that runs the same comparison (bench/raw_to_result.py)."""
    parser = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="recorded Binance file "
                        "(repeatable; default: USD-M and spot BTCUSDT)")
    parser.add_argument("--offset-ticks", type=int, default=0)
    parser.add_argument("--order-size", type=float, default=0.0,
                        help="base units (default: the instrument's usual size)")
    parser.add_argument("--requote-ms", type=float, default=100.0)
    parser.add_argument("--order-latency-ms", type=float, default=5.0, help="order entry")
    parser.add_argument("--response-latency-ms", type=float, default=5.0)
    parser.add_argument("--max-inventory-lots", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    parser.add_argument(
        "--peer-quotes-on-change", action="store_true",
        help="hftbacktest re-places a side only when its price changes, as quoteflow's engine "
        "does (by default it replaces a filled order at the next requote)",
    )
    parser.add_argument(
        "--rate-limit-ms", type=float, default=None,
        help="quoteflow's request budget, ms per request, no burst (default: none, as "
        "hftbacktest has none; 50 is ccxt's Binance budget, the paper venue's default)",
    )
    parser.add_argument("--no-hftbacktest", action="store_true",
                        help="quoteflow's side only (what tests run)")
    parser.add_argument("--hftbacktest-side", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    if more_options is not None:
        more_options(parser)
    args = parser.parse_args(argv)
    args.data = args.data or list(DEFAULT_DATA)
    for path in args.data:
        if not path.is_file():
            parser.error(f"--data {path} is not a file (is ../shared beside the repo?)")
        if path.parent.name not in ("spot", "usdm"):
            parser.error(f"--data {path}: only Binance spot/ and usdm/ captures are supported")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.hftbacktest_side is not None:  # inside .venv-bench: answer on stdout
        settings = json.loads(args.settings)
        events = hftbacktest_events(args.hftbacktest_side, args.out / "hftbacktest")
        result = run_hftbacktest(events, settings)
        print(json.dumps(result))
        return result

    from rich.console import Console

    console = Console(stderr=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for path in args.data:
        name = f"{path.parent.name}/{path.name}"
        settings = comparison_settings(path, args)
        console.print(f"{name}: quoteflow")
        ours = run_quoteflow(path, settings, args.out)
        if not ours["intents"]:
            console.print(f"[red]{name}: quoteflow sent no intent: the comparison is void[/]")
        console.print(f"{name}: quoteflow on the L2 touch only (no bookTicker)")
        ours_l2 = run_quoteflow(without_book_ticker(path, args.out), settings, args.out, "l2")
        console.print(f"{name}: quoteflow on the data as hftbacktest reads it (L2, times T)")
        ours_peer_view = run_quoteflow(
            as_hftbacktest_reads_it(path, args.out), settings, args.out, "peer_view"
        )
        peer = None
        if not args.no_hftbacktest:
            if BENCH_PYTHON.exists():
                console.print(f"{name}: hftbacktest")
                peer = json.loads(subprocess.run(
                    [str(BENCH_PYTHON), str(Path(__file__).resolve()), "--out", str(args.out),
                     "--hftbacktest-side", str(path), "--settings", json.dumps(settings)],
                    check=True, capture_output=True, text=True, cwd=ROOT,
                ).stdout.splitlines()[-1])
            else:
                console.print(f"no {BENCH_PYTHON}: hftbacktest skipped (./dev bench makes it)")
        results[name] = {
            "settings": settings, "quoteflow": ours, "quoteflow_l2_touch": ours_l2,
            "quoteflow_peer_view": ours_peer_view, "hftbacktest": peer,
            "comparison": compare(ours, peer), "comparison_l2_touch": compare(ours_l2, peer),
            "comparison_peer_view": compare(ours_peer_view, peer),
        }
        if peer is not None:
            touches = quoteflow_touches(path, [ts for ts, _, _ in peer["touch_samples"]])
            agreement = touch_agreement(peer["touch_samples"], touches)
            results[name]["l2_touch_agreement"] = agreement
            console.print(f"{name}: L2 touch equal at {agreement['same']} of "
                          f"{agreement['samples']} requotes")
            if "fill_records" in ours and "fill_records" in ours_l2:
                results[name]["fill_matching"] = match_fills(
                    ours["fill_records"], peer["fill_records"]
                )
                results[name]["fill_matching_l2_touch"] = match_fills(
                    ours_l2["fill_records"], peer["fill_records"]
                )
                results[name]["fill_matching_peer_view"] = match_fills(
                    ours_peer_view["fill_records"], peer["fill_records"]
                )
                results[name]["attribution"] = attribute(ours, peer, touches, settings)
                results[name]["attribution_l2_touch"] = attribute(
                    ours_l2, peer, touches, settings, fresh=False
                )
            for bulky in ("touch_samples", "placements", "fill_order_ids"):
                peer.pop(bulky)
    print_table(results, Console())
    print_matching(results, Console())
    summary = {"machine": machine(), "results": results}
    from bench.common import write_json

    write_json(args.out / "fidelity_hftbacktest.json", summary)
    return summary


if __name__ == "__main__":
    main()
