"""Surveillance's false positives: a normal market-making backtest (the production quote
session, executor and paper venue; `quoteflow backtest`'s default strategy) on each shared
Binance recording raises no alert at the default thresholds. The rates (alerts per hour and
per 1000 orders) and the largest ratios seen are in docs/surveillance.md.

The cryptofeed recordings are not here: no market rules are cached for their instruments,
so a backtest on them places no order and could raise nothing."""

from __future__ import annotations

import pytest

from connectors.replay.recordings import Recordings
from models.events import Fill, OrderEvent
from models.surveillance import SurveillanceConfig, survey
from quoteflow.runner import run_paper_trading
from quoteflow.sessions import TradingOptions
from tests.conftest import BINANCE_FILES


@pytest.mark.parametrize("path", BINANCE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_normal_market_making_backtest_raises_no_alert(path):
    events: list = []

    def keep(batch: list) -> None:
        events.extend(e for e in batch if isinstance(e, (OrderEvent, Fill)))

    run_paper_trading(Recordings([path]).events(),
                      TradingOptions(strategy="avellaneda-stoikov-infinite"), on_output=keep)
    orders = sum(1 for e in events if isinstance(e, OrderEvent) and e.kind in ("ack", "amend"))
    fills = sum(1 for e in events if isinstance(e, Fill))
    assert orders > 1000 and fills > 50  # it did trade: the silence means something
    assert survey(events, "backtest", SurveillanceConfig()) == []
