"""`quoteflow report trades`: every order and fill of a period, joined with why it happened.

Sources (connectors.timescale.compliance.trading_records): `order_events` and `fills` (the
venue's view), the executors' `audit` trail (the local time each was heard, the create
request naming its intent, the risk decision, cancel reasons, control commands) and
`order_intents` (the strategy). docs/compliance.md lists the columns and the rules of
`acted_by`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from models.execution.client_ids import client_order_id
from quoteflow.tax_report import iso, write_csv

ORDER_COLUMNS = (
    "record", "exchange_ts", "exchange_ts_ns", "local_ts", "local_ts_ns", "venue", "symbol",
    "kind", "client_order_id", "exchange_order_id", "side", "price", "size", "filled",
    "remaining", "reason", "intent_id", "intent_ts", "strategy", "risk_accepted",
    "risk_reason_code", "risk_detail", "cancel_reason", "acted_by", "command_id", "trace_id",
    "executor",
)
FILL_COLUMNS = (
    "exchange_ts", "exchange_ts_ns", "local_ts", "local_ts_ns", "venue", "symbol", "trade_id",
    "client_order_id", "exchange_order_id", "side", "price", "size", "fee", "fee_currency",
    "liquidity", "intent_id", "intent_ts", "strategy", "risk_accepted", "risk_reason_code",
    "acted_by", "executor",
)
_DIGEST_HEX = 24  # models.execution.client_ids: prefix + 24 hex digits
_COMMANDS_THAT_CANCEL = ("kill", "pause", "reduce")


class _Audit:
    """The audit records of a report, indexed by client order id."""

    def __init__(self, records: list[dict]):
        self.local_ts: dict[tuple, int] = {}
        self.intent_of: dict[str, str] = {}
        self.actor_of: dict[str, str] = {}
        self.decisions: dict[str, list[dict]] = defaultdict(list)
        self.cancels: dict[str, list[dict]] = defaultdict(list)
        self.controls: list[dict] = []
        for r in records:
            payload, action = r["payload"], r["action"]
            if action == "control" or (action == "state" and payload.get("executor")):
                self.controls.append(r)
            elif action == "order_event":
                e = payload["event"]
                self.local_ts.setdefault((e["client_order_id"], e["kind"], e["ts"]), r["ts_ns"])
            elif action == "fill":
                self.local_ts.setdefault(("fill", payload["fill"]["trade_id"]), r["ts_ns"])
            elif action == "risk_decision":
                self.decisions[payload["client_order_id"]].append(r)
            elif action == "order_request":
                cid = payload["client_order_id"]
                self.actor_of.setdefault(cid, r["actor"])
                if payload.get("request") == "create" and payload.get("intent_id"):
                    self.intent_of.setdefault(cid, payload["intent_id"])
                elif payload.get("request") == "cancel":
                    self.cancels[cid].append(r)

    def decision(self, cid: str, at_ns: int | None) -> dict:
        """The last risk decision on the order up to `at_ns` (an amend's, if any); with
        `at_ns` None the placement's, which let the order out."""
        decisions = self.decisions.get(cid, ())
        found = decisions[0]["payload"] if decisions else {}
        for r in decisions[1:]:
            if at_ns is not None and r["ts_ns"] <= at_ns:
                found = r["payload"]
        return found

    def cancel_request(self, cid: str, at_ns: int | None) -> dict | None:
        """Our first request to cancel the order up to `at_ns`: the one that caused it (a
        shutdown after a kill asks again)."""
        requests = [r for r in self.cancels.get(cid, ()) if at_ns is None or r["ts_ns"] <= at_ns]
        return requests[0] if requests else None

    def command_before(self, request: dict) -> dict | None:
        """The last command that halts or reduces heard by the executor that made `request`
        before it (its chain's order), unless it shut down since (its own cancel-all then)."""
        for r in reversed(self.controls):
            if r["actor"] != request["actor"] or r["seq"] >= request["seq"]:
                continue
            if r["action"] == "state":
                if r["payload"]["executor"] == "shutdown":
                    return None
            elif r["payload"].get("action") in _COMMANDS_THAT_CANCEL:
                return r["payload"]
        return None


def trade_report(records: dict[str, list]) -> dict[str, list[dict]]:
    """`{"orders": [...], "fills": [...]}`, rows keyed by ORDER_COLUMNS and FILL_COLUMNS."""
    audit = _Audit(records["audit"])
    intents = {i["intent_id"]: i for i in records["intents"]}
    derived = _intents_by_client_id(records["intents"], {
        r["client_order_id"] for r in (*records["order_events"], *records["fills"])
    } | {r["payload"]["client_order_id"] for r in records["rejected"]})
    exchange_ids = {e["client_order_id"]: e["exchange_order_id"]
                    for e in records["order_events"] if e["exchange_order_id"]}

    def why(cid: str) -> dict:
        intent = intents.get(audit.intent_of.get(cid) or derived.get(cid, ("",))[0])
        return {
            "intent_id": intent["intent_id"] if intent else "",
            "intent_ts": iso(intent["ts_ns"]) if intent else "",
            "strategy": intent["strategy"] if intent else "",
            "executor": audit.actor_of.get(cid, ""),
        }

    def risk(cid: str, at_ns: int | None) -> dict:
        decision = audit.decision(cid, at_ns)
        return {"risk_accepted": decision.get("accepted", ""),
                "risk_reason_code": decision.get("reason_code") or "",
                "risk_detail": decision.get("detail") or ""}

    orders = []
    for e in records["order_events"]:
        cid = e["client_order_id"]
        local = audit.local_ts.get((cid, e["kind"], e["ts_ns"]))
        context = why(cid)
        cancel = audit.cancel_request(cid, local) if e["kind"] == "cancel" else None
        orders.append({
            "record": "order_event", **_times(e["ts_ns"], local),
            **{k: e[k] for k in ("venue", "symbol", "kind", "client_order_id", "side", "price",
                                 "size", "filled", "remaining")},
            "exchange_order_id": e["exchange_order_id"] or "", "reason": e["reason"] or "",
            **context, **risk(cid, local),
            "cancel_reason": cancel["payload"]["reason"] if cancel else "",
            **_acted_by(e["kind"], cancel, context, audit),
        })
    for rejection in records["rejected"]:
        cid, decision = rejection["payload"]["client_order_id"], rejection["payload"]
        context = why(cid)
        intent_id, side, price, size = derived.get(cid, ("", "", "", ""))
        intent = intents.get(intent_id, {})
        orders.append({
            "record": "risk_reject", **_times(rejection["ts_ns"], rejection["ts_ns"]),
            "venue": intent.get("venue", ""), "symbol": intent.get("symbol", ""),
            # An order refused before it was sent, or an amend of one that was.
            "kind": "amend_reject" if cid in audit.intent_of else "reject",
            "client_order_id": cid, "exchange_order_id": "", "side": side,
            "price": price, "size": size, "filled": "", "remaining": "", "cancel_reason": "",
            "reason": decision.get("reason_code") or "", **context,
            "executor": rejection["actor"], "risk_accepted": False,
            "risk_reason_code": decision.get("reason_code") or "",
            "risk_detail": decision.get("detail") or "", "acted_by": _strategy(context),
            "command_id": "", "trace_id": "",
        })
    orders.sort(key=lambda row: row["exchange_ts_ns"])
    fills = []
    for f in records["fills"]:
        cid = f["client_order_id"]
        context = why(cid)
        fills.append({
            **_times(f["ts_ns"], audit.local_ts.get(("fill", f["trade_id"]))),
            **{k: f[k] for k in ("venue", "symbol", "trade_id", "client_order_id", "side",
                                 "price", "size", "fee", "fee_currency", "liquidity")},
            "exchange_order_id": exchange_ids.get(cid, ""), **context,
            **{k: v for k, v in risk(cid, None).items() if k != "risk_detail"},
            "acted_by": _strategy(context),
        })
    return {"orders": orders, "fills": fills}


def write_trade_report(report: dict, start_ns: int, end_ns: int, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_csv(out / "trades_orders.csv", ORDER_COLUMNS, report["orders"]),
             write_csv(out / "trades_fills.csv", FILL_COLUMNS, report["fills"])]
    paths.append(out / "trades_report.json")
    paths[-1].write_text(json.dumps(
        {"from": iso(start_ns), "to": iso(end_ns), **report}, indent=2, default=str
    ))
    return paths


def _acted_by(kind: str, cancel: dict | None, context: dict, audit: _Audit) -> dict:
    """The strategy, except for cancels: the user whose command halted trading (with the
    command's id and trace id, which finds it in the ECS logs), the risk engine, the
    executor (shutdown) or the venue (a cancel we never asked for)."""
    acted = {"command_id": "", "trace_id": ""}
    if kind != "cancel":
        return {"acted_by": _strategy(context), **acted}
    if cancel is None:
        return {"acted_by": "venue", **acted}
    reason = cancel["payload"]["reason"]
    if reason == "REPLACED":
        return {"acted_by": _strategy(context), **acted}
    state_reason = reason.partition(":")[2]
    if reason == "CANCEL_ALL" or state_reason.startswith("CMD_"):
        command = audit.command_before(cancel)
        if command is not None:
            return {"acted_by": f"user:{command['issued_by']}",
                    "command_id": command["command_id"], "trace_id": command.get("trace_id") or ""}
        return {"acted_by": "executor" if reason == "CANCEL_ALL" else "risk", **acted}
    return {"acted_by": "risk", **acted}


def _strategy(context: dict) -> str:
    return f"strategy:{context['strategy']}" if context["strategy"] else "unknown"


def _times(exchange_ns: int, local_ns: int | None) -> dict:
    return {"exchange_ts": iso(exchange_ns), "exchange_ts_ns": exchange_ns,
            "local_ts": iso(local_ns) if local_ns is not None else "",
            "local_ts_ns": local_ns if local_ns is not None else ""}


def _intents_by_client_id(intents: list[dict], cids: set[str]) -> dict[str, tuple]:
    """Client ids are digests of (intent, side, level): recompute them to find an order's
    intent, side, price and size when no create request names it (a risk rejection sends
    none). Values: (intent_id, side, price, size)."""
    prefixes = {cid[:-_DIGEST_HEX] for cid in cids if len(cid) > _DIGEST_HEX}
    found = {}
    for intent in intents:
        for side, prices, sizes in (("buy", intent["bid_prices"], intent["bid_sizes"]),
                                    ("sell", intent["ask_prices"], intent["ask_sizes"])):
            for level, (price, size) in enumerate(zip(prices or (), sizes or (), strict=True)):
                for prefix in prefixes:
                    cid = client_order_id(intent["intent_id"], side, level, prefix)
                    if cid in cids:
                        found[cid] = (intent["intent_id"], side, price, size)
    return found
