"""What a run of the quote flow produced, gathered from its output sink, and its summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from connectors.paper.trading import PaperTrader
from models.events import DeadLetter, Event, Fill, OrderIntent, Position
from quoteflow.sessions import SessionRegistry


@dataclass
class RunResults:
    """Everything the charts need, per instrument key; counts for the rest."""

    intents: dict[str, list[OrderIntent]] = field(default_factory=dict)
    fills: dict[str, list[Fill]] = field(default_factory=dict)
    positions: dict[str, list[Position]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def collect(self, events: list[Event]) -> None:
        for event in events:
            kind = type(event).__name__
            self.counts[kind] += 1
            if isinstance(event, OrderIntent):
                self.intents.setdefault(event.key, []).append(event)
            elif isinstance(event, Fill):
                self.fills.setdefault(f"{event.venue}:{event.symbol}", []).append(event)
            elif isinstance(event, Position):
                self.positions.setdefault(f"{event.venue}:{event.symbol}", []).append(event)
            elif isinstance(event, DeadLetter):
                self.dead_letters.append(event)


def fill_record(fill: Fill) -> dict:
    """One line of `--fills FILE.jsonl`: the fill and its causality on the exchange clock."""
    return {
        "instrument": f"{fill.venue}:{fill.symbol}",
        "side": fill.side,
        "price": str(fill.price),
        "qty": str(fill.size),
        "fee": str(fill.fee),
        "fee_currency": fill.fee_currency,
        "liquidity": fill.liquidity,
        "order_id": fill.client_order_id,
        "trade_id": fill.trade_id,
        "ts": fill.ts,
        "cause": fill.cause,
        "cause_exchange_ts": fill.cause_exchange_ts,
        "order_trigger_exchange_ts": fill.order_trigger_exchange_ts,
        "order_arrival_exchange_ts": fill.order_arrival_exchange_ts,
    }


def fill_from_record(record: dict) -> Fill:
    """A `--fills` line back into its `Fill` (the reverse of `fill_record`); KeyError,
    ValueError or decimal.InvalidOperation on a line that is not one."""
    venue, _, symbol = record["instrument"].partition(":")
    if record["side"] not in ("buy", "sell") or not symbol:
        raise ValueError(f"side {record['side']!r} of {record['instrument']!r}")
    return Fill(
        venue=venue, symbol=symbol, ts=int(record["ts"]), client_order_id=record["order_id"],
        trade_id=record["trade_id"], side=record["side"], price=Decimal(record["price"]),
        size=Decimal(record["qty"]), fee=Decimal(record["fee"]),
        fee_currency=record["fee_currency"], liquidity=record["liquidity"],
        cause=record.get("cause"), cause_exchange_ts=record.get("cause_exchange_ts"),
        order_trigger_exchange_ts=record.get("order_trigger_exchange_ts"),
        order_arrival_exchange_ts=record.get("order_arrival_exchange_ts"),
    )


def write_fills(results: RunResults, path: Path) -> int:
    """Every fill of the run as JSON lines, in time order per instrument; returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w") as file:
        for key in sorted(results.fills):
            for fill in results.fills[key]:
                file.write(json.dumps(fill_record(fill)) + "\n")
                count += 1
    return count


def _number(value: Decimal) -> float:
    return float(value)


def _markouts(results: dict[str, dict]) -> dict[str, dict]:
    """JSON-friendly: Decimal sums and means become floats, `None` stays for empty horizons."""
    return {
        horizon: {k: float(v) if isinstance(v, Decimal) else v for k, v in stats.items()}
        for horizon, stats in results.items()
    }


def instrument_summary(session: PaperTrader) -> dict:
    ledger = session.ledger
    mark = session.last_mid
    unrealized = ledger.unrealized(mark) if mark is not None else Decimal(0)
    return {
        "fills": session.counts["fills"],
        "volume": _number(ledger.volume),
        "realized_pnl": _number(ledger.realized_pnl),
        "unrealized_pnl": _number(unrealized),
        "fees": _number(ledger.fees),
        "net_pnl": _number(ledger.realized_pnl + unrealized - ledger.fees),
        "final_inventory": _number(ledger.quantity),
        "max_abs_inventory": _number(session.max_abs_inventory),
        "markouts": _markouts(session.markouts.results()),
        "orders": {
            k.removeprefix("order_"): v for k, v in session.counts.items() if k.startswith("order_")
        },
        "risk": {
            k.removeprefix("risk_"): v for k, v in session.counts.items() if k.startswith("risk_")
        },
        "book": dict(session.book_counts()),
    }


def summarize(
    registry: SessionRegistry, results: RunResults, events: int, wall_seconds: float
) -> dict:
    """The backtest JSON: totals over instruments (all quoted in the same currency) + each one."""
    per_instrument = {key: instrument_summary(s) for key, s in sorted(registry.sessions.items())}
    totals = {
        name: sum(summary[name] for summary in per_instrument.values())
        for name in ("fills", "volume", "realized_pnl", "unrealized_pnl", "fees", "net_pnl")
    }
    return {
        "events": events,
        **totals,
        "final_inventory": {k: s["final_inventory"] for k, s in per_instrument.items()},
        "max_abs_inventory": {k: s["max_abs_inventory"] for k, s in per_instrument.items()},
        "markouts": {k: s["markouts"] for k, s in per_instrument.items()},
        "intents": results.counts["OrderIntent"],
        "dead_letters": len(results.dead_letters),
        "wall_seconds": wall_seconds,
        "events_per_second": events / wall_seconds if wall_seconds > 0 else 0.0,
        "instruments": per_instrument,
        "untraded": {
            key: {"events": u.events, "reason": u.reason}
            for key, u in sorted(registry.untraded.items())
        },
    }
