"""Benchmarks behind docs/benchmarks.md: `./dev bench` runs them all.

- `python -m bench.backtest_throughput`: events/s of the backtest path, end to end and split
  into decoding and the quote flow;
- `python -m bench.tick_to_intent`: tick-to-intent latency inside the quote flow, and the
  compute time of the per-instrument step.
- `python -m bench.raw_to_result`: raw recording to result, quoteflow against hftbacktest's
  convert plus backtest (bench/fidelity_hftbacktest.py's comparison, timed in rounds).

The first two take the same options (see `bench.common.parse_args`) so `./dev bench ARGS` can pass
the same arguments to each.
"""
