"""Alpha skew in the realistic backtest: predictions reach the quote session and move it."""

from __future__ import annotations

from itertools import islice

from connectors.replay.recordings import Recordings
from models.events import DeadLetter, Prediction
from models.predictor import PredictorConfig
from quoteflow.skew_report import SkewOptions, run, with_predictions

EVENTS = 12_000  # about 100 s of Binance spot ETHUSDT


def _events(path, n):
    return [e for e in islice(Recordings([path]).events(), n) if not isinstance(e, DeadLetter)]


def test_predictions_are_interleaved_where_the_flow_emits_them(shared_data):
    spot = shared_data / "binance" / "spot"
    train = _events(spot / "btcusdt_20240808.gz", 3000)
    events = _events(spot / "ethusdt_20240808.gz", 3000)
    stream = with_predictions(train, events, PredictorConfig())
    assert [e for e in stream if type(e) is not Prediction] == events
    for position, event in enumerate(stream):
        if type(event) is Prediction:
            after = next(e for e in stream[position:] if type(e) is not Prediction)
            assert event.ts < after.receive_ts  # emitted before the event that triggers it
    predictions = [e for e in stream if type(e) is Prediction]
    assert predictions and any(abs(p.prob_up - 0.5) > 0.1 for p in predictions)


def test_the_weight_reaches_the_quote_session_and_changes_the_quotes(shared_data):
    spot = shared_data / "binance" / "spot"
    train = _events(spot / "btcusdt_20240808.gz", 3000)
    stream = with_predictions(train, _events(spot / "ethusdt_20240808.gz", EVENTS),
                              PredictorConfig())
    assert SkewOptions("avellaneda-stoikov-infinite", prediction_weight=2.0).quoting() \
        .prediction_weight == 2.0
    _, plain = run(stream, SkewOptions("avellaneda-stoikov-infinite"))
    _, skewed = run(stream, SkewOptions("avellaneda-stoikov-infinite", prediction_weight=5.0))
    quotes = [[(i.bids, i.asks) for i in r.intents["binance:ETH/USDT"]] for r in (plain, skewed)]
    assert quotes[0] and quotes[0] != quotes[1]  # the skew moved the quotes
