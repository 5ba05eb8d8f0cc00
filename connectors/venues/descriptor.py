"""What quoteflow knows about one exchange, in one record: `Venue`.

Most of it is derived from cryptofeed's feed class (the venue's name from its exchange id, its
channels, its websocket endpoints); a venue module of its own (`connectors/venues/NAME.py`)
exists only for what cannot be derived. docs/venues.md explains each field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class RecordingAdapter(Protocol):
    """Bridges a recording made against an older exchange API to the installed cryptofeed."""

    def feed_config(self) -> dict: ...

    def rest(self, url: str, body: str) -> tuple[str, str]: ...

    def message(self, text: str) -> str: ...

    def unrecorded(self, url: str) -> str | None: ...


class AsRecorded:
    """For recordings the installed cryptofeed reads unchanged."""

    def feed_config(self) -> dict:
        # Explicitly empty: a CRYPTOFEED_CONFIG file in the environment must not alter replay.
        return {}

    def rest(self, url: str, body: str) -> tuple[str, str]:
        return url, body

    def message(self, text: str) -> str:
        return text

    def unrecorded(self, url: str) -> str | None:
        """The answer to a start-up call cryptofeed makes that the recording lacks (an older
        recorder did not ask it), where its absence has a meaning; None: there is none."""
        return None


# Self-trade prevention modes an order can ask the exchange for (`[execute]
# self_trade_prevention`): which of two of our orders that would match each other the exchange
# expires. "taker" (the incoming one) is what quoteflow's own pre-trade check does.
STP_MODES = ("taker", "maker", "both", "off")


def check_stp_mode(mode: str) -> str:
    if mode not in STP_MODES:
        raise ValueError(f"self-trade prevention mode must be one of {STP_MODES}, not {mode!r}")
    return mode


@dataclass(frozen=True, slots=True)
class SelfTradePrevention:
    """The exchange's own self-trade prevention: the order parameter (passed through ccxt's
    `params`) and its value for each of quoteflow's modes."""

    param: str
    taker: str
    maker: str
    both: str

    def params(self, mode: str) -> dict[str, str]:
        return {} if check_stp_mode(mode) == "off" else {self.param: getattr(self, mode)}


# Recording formats a venue can be replayed from.
CRYPTOFEED = "cryptofeed"  # cryptofeed's raw-data recorder (connectors.replay.cryptofeed_recording)
BINANCE_HFT = "binance-hft"  # hftbacktest's Binance files (connectors.replay.binance_hft)


@dataclass(frozen=True, slots=True)
class Venue:
    """One exchange (or one market family of it: Binance spot, USD-M and COIN-M are three).

    - `name`: quoteflow's venue id, in every event and instrument key. ccxt's exchange id where
      ccxt has the exchange, else cryptofeed's id in lower case without `_` and `.`.
    - `cryptofeed_id`: the key of cryptofeed's EXCHANGE_MAP: its Feed class reads the venue
      live and replays its raw recordings (files named `CRYPTOFEED_ID.*`).
    - `ccxt_id`: the ccxt exchange class that lists its markets (trading rules, fees) and
      trades on it; None where ccxt has none.
    - `sequencing`: the name of the book-sequencing rule its update ids follow
      (`models.sequencing.RULES`); "arrival" for feeds cryptofeed sequences itself.
    - `fee_source`: where the maker/taker fees in its market cache come from.
    - `ticker_sizes`: where the best bid/ask sizes are in cryptofeed's raw ticker (a key, or
      a dotted path into nested messages), since its Ticker carries prices only; None where
      unknown: then its tickers are not consumed (not subscribed live, ignored in replay)
      rather than made into BBOs with made-up sizes.
    - `adapter`: rewrites recordings made against an older exchange API.
    - `needs_keys`: cryptofeed signs even its public subscriptions or snapshot requests (an
      API key is needed live; replay gives the feed a placeholder key, since nothing it signs
      is sent). Derived from the feed class where it marks a consumed channel authenticated.
    - `recordings`: the recording formats it replays from.
    - `self_trade_prevention`: the exchange's own self-trade prevention order parameter and
      its values; None where the exchange has none per order (or quoteflow does not know it).
    """

    name: str
    cryptofeed_id: str | None
    ccxt_id: str | None
    sequencing: str = "arrival"
    fee_source: str = "ccxt load_markets: the exchange's default (lowest tier) maker/taker"
    ticker_sizes: tuple[str, str] | None = None
    adapter: RecordingAdapter = field(default_factory=AsRecorded)
    needs_keys: bool = False
    recordings: tuple[str, ...] = (CRYPTOFEED,)
    self_trade_prevention: SelfTradePrevention | None = None

    def order_params(self, stp_mode: str) -> dict[str, str]:
        """What every order sends in ccxt's `params` for the self-trade prevention mode."""
        if self.self_trade_prevention is None:
            check_stp_mode(stp_mode)  # a mistyped mode is refused on every venue alike
            return {}
        return self.self_trade_prevention.params(stp_mode)
