"""The `[execute]` configuration section: the executor process (`quoteflow execute`)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from connectors.execution.deadman import check_timeout
from connectors.venues.descriptor import STP_MODES


class ExecuteConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The executor process (`quoteflow execute`); see docs/executor.md."""

    venue: str = "paper"  # "paper": matched on md.*; "ccxt": the live exchange
    exchange: str = "binance"  # ccxt exchange id, the `venue` of the intents acted on
    symbols: list[str] = []  # unified symbols traded, e.g. ["BTC/USDT"]
    # Whose exchange keys a ccxt venue trades with: the owner's Keycloak subject.
    owner: str | None = None
    sandbox: bool = False
    ccxt_options: dict = {}  # extra ccxt constructor settings (timeouts, urls)
    supports_amend: bool = False  # the exchange's editOrder modifies in place (docs/executor.md)
    key_poll_interval_s: float = 5.0
    intent_max_age_s: float = 2.0
    price_tolerance: str = "0"
    size_tolerance: str = "0"
    post_only: bool = True
    # The exchange's own self-trade prevention on every order, where it has one
    # (connectors/venues): "taker" expires the incoming order, "maker" the resting one,
    # "both" both, "off" sends nothing. quoteflow's pre-trade SELF_TRADE check applies anyway.
    self_trade_prevention: str = "taker"
    reconcile_interval_s: float = 30.0
    # The account's balances before this audit file's first run, e.g. {"USDT": "100000"} (a
    # futures account: its wallet): reconciliation's `BALANCE` compares the venue's totals
    # with these plus every run's fills and fees. Unset currencies start at 0.
    initial_balances: dict[str, str] = {}
    # The exchange-side dead-man's switch where the venue has one (connectors/execution/
    # deadman.py): the venue cancels our orders this long after the executor stops re-arming
    # it (every third of it). 0 turns it off.
    deadman_timeout_s: float = 60.0
    paper_rate_limit_ms: float = 50.0  # the paper venue's request budget (ccxt's own otherwise)
    rate_limit_capacity: float = 1.0
    # Kafka consumer group. Unset: one per deployment and account, `executor.<prefix>.
    # <account>`, a static member (connectors/kafka/membership.py). Set: used as given (an
    # upgraded deployment keeps the group, and offsets, of `group = "executor"`).
    group: str | None = None
    audit_path: str = "~/.local/share/quoteflow/executor-audit.jsonl"
    # A lockstep replay with the quote flow (`[quote] lockstep`, docs/paper-venue.md): one
    # market event at a time, each once the quote flow has quoted the one before. Paper only.
    lockstep: bool = False

    def __post_init__(self) -> None:
        if self.venue not in ("paper", "ccxt"):
            raise ValueError(f"execute.venue must be 'paper' or 'ccxt', not {self.venue!r}")
        if self.venue == "ccxt" and not self.owner:
            raise ValueError("execute.owner is required for a ccxt venue: whose keys to trade")
        if self.lockstep and self.venue != "paper":
            raise ValueError("execute.lockstep replays the market: it needs the paper venue")
        if not self.symbols:
            raise ValueError("execute.symbols must list at least one symbol")
        if self.self_trade_prevention not in STP_MODES:
            raise ValueError(f"execute.self_trade_prevention must be one of {', '.join(STP_MODES)}")
        if self.group is not None and not self.group.strip():
            raise ValueError("execute.group must not be empty: leave it out for the "
                             "deployment's own group")
        if self.deadman_timeout_s < 0:
            raise ValueError("execute.deadman_timeout_s must be >= 0 (0 turns it off)")
        if self.venue == "ccxt":
            check_timeout(self.exchange, self.deadman_timeout_s)
        self.balances()  # each a Decimal >= 0, or a clear error
        for name in ("price_tolerance", "size_tolerance"):
            try:
                valid = Decimal(getattr(self, name)) >= 0
            except ArithmeticError:
                valid = False
            if not valid:
                raise ValueError(f"execute.{name} must be a number >= 0")

    def balances(self) -> dict[str, Decimal]:
        """`initial_balances` as exact amounts."""
        amounts = {}
        for currency, amount in self.initial_balances.items():
            try:
                amounts[currency] = Decimal(amount)
                valid = amounts[currency].is_finite() and amounts[currency] >= 0
            except ArithmeticError:
                valid = False
            if not valid:
                raise ValueError(
                    f"execute.initial_balances.{currency} must be a number >= 0, not {amount!r}")
        return amounts
