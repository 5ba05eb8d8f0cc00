"""The `[paper]` configuration section and the paper venue's settings built from it.

Flags (`quoteflow backtest|run --order-latency-ms ...`) override the file, which overrides
the defaults: 10 ms for each latency (hftbacktest's example settings; docs/paper-venue.md),
the risk-averse queue, partial fills, and ccxt's Binance request budget (one request per
50 ms, no burst: `PaperSettings`).
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import msgspec

from connectors.paper.trading import PaperSettings
from models.latency import (
    DEFAULT_LATENCY_MS,
    ConstantLatency,
    InterpolatedLatency,
    LatencyModel,
    LatencyRow,
)
from models.queue_model import parse_queue_model


class PaperConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    order_latency_ms: float = DEFAULT_LATENCY_MS
    cancel_latency_ms: float = DEFAULT_LATENCY_MS
    response_latency_ms: float = DEFAULT_LATENCY_MS
    latency_file: str | None = None
    queue_model: str = "risk-averse"
    partial_fills: bool = True
    # The request budget (ccxt's rateLimit: one unit of request cost per `rate_limit_ms`, a
    # bucket of `rate_limit_capacity` units); unset: `PaperSettings`' (ccxt's Binance budget).
    rate_limit_ms: float | None = None
    rate_limit_capacity: float | None = None


class PaperConfigError(ValueError):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def paper_settings(
    config: PaperConfig | None,
    *,
    order_latency_ms: float | None = None,
    cancel_latency_ms: float | None = None,
    response_latency_ms: float | None = None,
    latency_file: Path | None = None,
    queue_model: str | None = None,
    partial_fills: bool | None = None,
) -> PaperSettings:
    config = config if config is not None else PaperConfig()
    entry = _chosen(order_latency_ms, config.order_latency_ms, "--order-latency-ms")
    cancel = _chosen(cancel_latency_ms, config.cancel_latency_ms, "--cancel-latency-ms")
    response = _chosen(response_latency_ms, config.response_latency_ms, "--response-latency-ms")
    file = latency_file if latency_file is not None else config.latency_file
    latency: LatencyModel = (
        ConstantLatency.from_ms(entry, cancel, response) if file is None else load_latencies(file)
    )
    spec = queue_model if queue_model is not None else config.queue_model
    try:
        queue = parse_queue_model(spec)
    except ValueError as error:
        raise PaperConfigError(str(error), "--queue-model") from None
    budget = {}
    for key in ("rate_limit_ms", "rate_limit_capacity"):
        value = getattr(config, key)
        if value is not None:
            if not (0 < value < 1e12):
                raise PaperConfigError(f"paper.{key} must be > 0, got {value}", "--config")
            budget[key] = value
    return replace(
        PaperSettings(),
        latency=latency,
        queue_model=queue,
        partial_fills=config.partial_fills if partial_fills is None else partial_fills,
        **budget,
    )


def _chosen(flag: float | None, configured: float, hint: str) -> float:
    value = configured if flag is None else flag
    if not (0 <= value < 60_000):
        raise PaperConfigError(f"latency must be 0 to 60000 ms, got {value}", hint)
    return value


def load_latencies(path: str | Path) -> InterpolatedLatency:
    """A CSV of measured latencies: `ts_ns,entry_ns,cancel_ns,response_ns` per row (a header
    row is allowed), in time order; interpolated between rows."""
    rows: list[LatencyRow] = []
    try:
        with open(path, newline="") as file:
            for number, fields in enumerate(csv.reader(file), 1):
                if not fields or (number == 1 and not fields[0].strip().lstrip("-").isdigit()):
                    continue
                if len(fields) != 4:
                    raise PaperConfigError(
                        f"{path}:{number}: expected ts_ns,entry_ns,cancel_ns,response_ns",
                        "--latency-file",
                    )
                try:
                    rows.append(LatencyRow(*(int(field) for field in fields)))
                except ValueError:
                    raise PaperConfigError(
                        f"{path}:{number}: not whole nanoseconds: {','.join(fields)}",
                        "--latency-file",
                    ) from None
    except OSError as error:
        raise PaperConfigError(f"cannot read {path}: {error.strerror}", "--latency-file") from None
    try:
        return InterpolatedLatency(rows)
    except ValueError as error:
        raise PaperConfigError(f"{path}: {error}", "--latency-file") from None
