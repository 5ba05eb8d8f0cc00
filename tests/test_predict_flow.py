"""The predict flow on the real Binance recordings, on in-memory connectors."""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest
from bytewax.testing import run_main

from connectors.memory import CallbackSink, ChunkedSource
from connectors.replay.recordings import Recordings
from flows.predict import build_predict_flow
from models.events import DeadLetter, Prediction, encode
from models.predictor import PredictorConfig
from quoteflow.predict_report import predict_events, predict_report
from tests.conftest import BINANCE_FILES

CONFIG = PredictorConfig()
pytestmark = pytest.mark.slow


def run_flow(events, config: PredictorConfig = CONFIG, chunk_size: int = 512) -> list:
    out: list = []
    source = ChunkedSource(events, chunk_size=chunk_size)
    run_main(build_predict_flow(source, CallbackSink(out.extend), config))
    return out


@pytest.mark.parametrize("path", BINANCE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_predictions_on_each_recording_are_sane(shared_data, path):
    predictions = run_flow(Recordings([path]).events())
    assert all(type(p) is Prediction for p in predictions)
    assert len({p.key for p in predictions}) == 1
    # About 5 min 45 s of data sampled every 100 ms.
    assert 3000 < len(predictions) < 3600
    interval = CONFIG.sample_interval_ns
    stamps = [p.ts for p in predictions]
    assert all(ts % interval == 0 for ts in stamps)
    assert all(b - a == interval for a, b in pairwise(stamps))
    for p in predictions:
        assert 0.0 <= p.prob_up <= 1.0 and p.prob_up + p.prob_down == pytest.approx(1.0)
        assert math.isfinite(p.expected_move)
    scored = [p for p in predictions if p.rolling_accuracy is not None]
    assert len(scored) > 0.9 * len(predictions)
    late = scored[-1]
    assert 0.0 <= late.baseline_accuracy <= 1.0 and 0.0 < late.rolling_log_loss < 2.0
    # The model has learned something: its forecasts are not all coin flips.
    assert max(abs(p.prob_up - 0.5) for p in scored) > 0.2
    # A mid move over 1 s on these books is a few ticks at most.
    assert max(abs(p.expected_move) for p in scored) < 20.0


def test_same_input_same_predictions(shared_data):
    path = BINANCE_FILES[0]
    first = run_flow(Recordings([path]).events(), chunk_size=512)
    second = run_flow(Recordings([path]).events(), chunk_size=37)
    assert [encode(p) for p in first] == [encode(p) for p in second]


def test_flow_matches_the_session_run_directly(shared_data):
    """The flow only wires: its output is the sessions' output, instrument by instrument."""
    paths = [p for p in BINANCE_FILES if p.parent.name == "spot"]
    by_key: dict[str, list] = defaultdict(list)
    for p in run_flow(Recordings(paths).events()):
        by_key[p.key].append(p)
    _, direct = predict_events(Recordings(paths).events(), CONFIG)
    assert set(by_key) == {"binance:BTC/USDT", "binance:ETH/USDT"}
    assert by_key == direct


def test_dead_letters_are_dropped(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    events = list(Recordings([bad]).events())
    assert events and all(isinstance(e, DeadLetter) for e in events)
    assert run_flow(events) == []


def test_report_on_a_recording_it_never_trained_on(shared_data, tmp_path):
    """Trained on spot BTC, scored on spot ETH: every baseline and the model, with SEs."""
    spot = shared_data / "binance" / "spot"
    report = predict_report(
        [spot / "ethusdt_20240808.gz"], train=[spot / "btcusdt_20240808.gz"],
        horizons_ms=[1000], models=["logreg"], n_boot=50, chart_dir=tmp_path,
    )
    assert report["protocol"]["train_instruments"] == ["binance:BTC/USDT"]
    two, three = report["results"]
    assert (two["task"], three["task"]) == ("two_class", "three_class")
    assert two["instrument"] == three["instrument"] == "binance:ETH/USDT"
    assert 0.2 < two["flat_share"] == three["flat_share"] < 0.8
    assert two["scored"] < three["scored"] <= three["samples"]  # flats are left out of two
    for row in (two, three):
        assert set(row["scores"]) == {
            "majority", "momentum", "imbalance", "microprice", "ofi", "logreg"
        }
        for score in row["scores"].values():
            assert 0.0 < score["accuracy_se"] < 0.1 and 0.0 < score["log_loss_se"] < 0.2
        assert row["block_samples"] >= 10  # at least the horizon
    assert 0.6 < two["scores"]["logreg"]["accuracy"] <= 1.0
    assert report["charts"] and all(Path(p).exists() for p in report["charts"])


def test_report_refuses_data_with_nothing_to_score(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="no instrument in the data"):
        predict_report([bad], horizons_ms=[1000], models=["logreg"])


def test_report_refuses_to_score_what_it_trained_on(shared_data):
    spot_btc = shared_data / "binance" / "spot" / "btcusdt_20240808.gz"
    with pytest.raises(ValueError, match="also training ones"):
        predict_report([spot_btc], train=[spot_btc], horizons_ms=[1000], models=["logreg"])
