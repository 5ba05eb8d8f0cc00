"""Raw recording to result: quoteflow against hftbacktest's convert plus backtest, in one run.

On each recording, in alternating rounds (a noisy neighbour hurts both alike), the CPU time
(`time.process_time`: every thread of the process, what a shared box distorts least) of

- quoteflow: `quoteflow backtest` on the raw file (decoding and engine, no event cache), run
  in this process through the CLI with the fidelity harness's arguments;
- hftbacktest: the conversion of the same raw file (`binancefutures.convert` for USD-M, the
  harness's `convert_spot` for spot) and its backtest of the same strategy and settings, in
  a child process in `.venv-bench` that runs one round per line it reads.

The strategy, settings and both backtests are bench/fidelity_hftbacktest.py's (its options
apply). One untimed round first loads the code and compiles hftbacktest's numba functions
(its conversion's and the strategy's loop), as a research session pays that once (its
figures are kept apart in the JSON); the least CPU time of the timed rounds is reported,
with the load average at each round.

    .venv/bin/python -m bench.raw_to_result [--rounds 5] [--data FILE ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import fidelity_hftbacktest as fidelity

RESULT_FILE = "raw_to_result.json"
TARGET_RATIO = 0.25  # issue 10: raw to result within 0.25× hftbacktest's convert + backtest


def _rounds_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=_rounds, default=5,
                        help="timed rounds after one untimed; the least CPU time is reported")
    parser.add_argument("--hftbacktest-rounds", type=Path, help=argparse.SUPPRESS)


def _rounds(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _cpu_and_wall(work):
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    return result, time.process_time() - cpu, time.perf_counter() - wall


# -- the hftbacktest side (runs in .venv-bench) ------------------------------------------------

def hftbacktest_rounds(path: Path, settings: dict) -> None:
    """One round per line on stdin: convert `path` afresh and backtest it, each timed; one
    JSON line of figures on stdout per round."""
    for _ in sys.stdin:
        events, convert_cpu, convert_wall = _cpu_and_wall(lambda: fidelity.convert(path))
        result, backtest_cpu, backtest_wall = _cpu_and_wall(
            lambda: fidelity.run_hftbacktest(events, settings)  # noqa: B023 (called at once)
        )
        print(json.dumps({
            "convert_cpu": convert_cpu, "convert_wall": convert_wall,
            "backtest_cpu": backtest_cpu, "backtest_wall": backtest_wall,
            "rows": len(events), "fills": result["fills"],
        }), flush=True)


# -- quoteflow's side and the rounds -----------------------------------------------------------

def quoteflow_round(path: Path, settings: dict, out: Path) -> dict:
    """`quoteflow backtest` on the raw file, in this process; its CPU time and fills."""
    from quoteflow.cli import app

    command, summary_path, missing = fidelity.quoteflow_backtest_args(path, settings, out)
    if missing:
        raise SystemExit(f"raw_to_result: quoteflow backtest lacks {', '.join(missing)}")
    _, cpu, wall = _cpu_and_wall(lambda: app(command, standalone_mode=False))
    summary = json.loads(summary_path.read_text())
    fills = summary["instruments"][settings["instrument"]]["fills"]
    return {"cpu": cpu, "wall": wall, "events": summary["events"], "fills": int(fills)}


def measure(path: Path, settings: dict, rounds: int, out: Path, peer: bool, console) -> dict:
    """Alternating rounds of both sides on `path`; the first of each is untimed."""
    child = None
    if peer:
        child = subprocess.Popen(
            [str(fidelity.BENCH_PYTHON), "-m", "bench.raw_to_result", "--data", str(path),
             "--hftbacktest-rounds", str(path), "--settings", json.dumps(settings)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=fidelity.ROOT,
        )
    runs: dict[str, list] = {"quoteflow": [], "hftbacktest": [], "load_average": []}
    try:
        for round_number in range(rounds + 1):
            label = "untimed" if round_number == 0 else f"{round_number}/{rounds}"
            load = os.getloadavg()[0]
            console.print(f"{path.parent.name}/{path.name}: round {label}, load {load:.1f}")
            ours = quoteflow_round(path, settings, out)
            theirs = None
            if child is not None:
                child.stdin.write("round\n")
                child.stdin.flush()
                theirs = _answer(child)
            if round_number:
                runs["quoteflow"].append(ours)
                runs["hftbacktest"].append(theirs)
                runs["load_average"].append(load)
            else:  # kept apart: it includes imports and hftbacktest's numba compilations
                runs["untimed_round"] = {"quoteflow": ours, "hftbacktest": theirs}
    finally:
        if child is not None:
            child.stdin.close()
            child.wait()
    return summarize(runs)


def _answer(child: subprocess.Popen) -> dict:
    """The child's figures of one round (its JSON line; anything else it prints is not)."""
    for line in child.stdout:
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit("raw_to_result: the hftbacktest side stopped")


def summarize(runs: dict) -> dict:
    """Least CPU of the rounds per side; hftbacktest's is the round whose convert plus
    backtest was least (its parts from that round)."""
    ours = min(runs["quoteflow"], key=lambda r: r["cpu"])
    result = {
        "quoteflow_cpu": ours["cpu"], "quoteflow_wall": ours["wall"],
        "events": ours["events"], "quoteflow_fills": ours["fills"],
        "load_average": [min(runs["load_average"]), max(runs["load_average"])],
        "rounds": runs,
    }
    if runs["hftbacktest"][0] is not None:
        theirs = min(runs["hftbacktest"], key=lambda r: r["convert_cpu"] + r["backtest_cpu"])
        total = theirs["convert_cpu"] + theirs["backtest_cpu"]
        result.update(
            hftbacktest_convert_cpu=theirs["convert_cpu"],
            hftbacktest_backtest_cpu=theirs["backtest_cpu"],
            hftbacktest_cpu=total,
            hftbacktest_wall=theirs["convert_wall"] + theirs["backtest_wall"],
            hftbacktest_fills=theirs["fills"],
            ratio=ours["cpu"] / total,
            target=TARGET_RATIO,
            target_met=ours["cpu"] / total <= TARGET_RATIO,
        )
    return result


def print_table(results: dict, console) -> None:
    from rich.table import Table

    table = Table(title="Raw recording to result, CPU seconds (least of the rounds)")
    for column in ("recording", "events", "quoteflow", "hftbacktest convert", "backtest",
                   "convert + backtest", "ratio", f"target ≤ {TARGET_RATIO}", "load avg"):
        table.add_column(column, justify="left" if column == "recording" else "right")
    for name, r in results.items():
        peer = "hftbacktest_cpu" in r
        table.add_row(
            name, f"{r['events']:,}", f"{r['quoteflow_cpu']:.3f}",
            f"{r['hftbacktest_convert_cpu']:.3f}" if peer else "-",
            f"{r['hftbacktest_backtest_cpu']:.3f}" if peer else "-",
            f"{r['hftbacktest_cpu']:.3f}" if peer else "-",
            f"{r['ratio']:.2f}" if peer else "-",
            ("met" if r["target_met"] else "not met") if peer else "-",
            "{:.1f}-{:.1f}".format(*r["load_average"]),
        )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> dict:
    args = fidelity.parse_args(argv, __doc__.splitlines()[0], _rounds_option)
    if args.hftbacktest_rounds is not None:  # inside .venv-bench: rounds on request
        hftbacktest_rounds(args.hftbacktest_rounds, json.loads(args.settings))
        return {}

    from bench.common import console as bench_console
    from bench.common import write_json

    console = bench_console()
    out = args.out / "raw_to_result"
    out.mkdir(parents=True, exist_ok=True)
    peer = not args.no_hftbacktest and fidelity.BENCH_PYTHON.exists()
    if not peer and not args.no_hftbacktest:
        console.print(f"no {fidelity.BENCH_PYTHON}: hftbacktest skipped (./dev bench makes it)")
    results = {}
    for path in args.data:
        settings = fidelity.comparison_settings(path, args)
        results[f"{path.parent.name}/{path.name}"] = measure(
            path, settings, args.rounds, out, peer, console
        )
    print_table(results, console)
    summary = {
        "benchmark": "raw_to_result",
        "command": " ".join([Path(sys.executable).name, "-m", "bench.raw_to_result",
                             *(sys.argv[1:] if argv is None else argv)]),
        "machine": fidelity.machine(),
        "results": results,
    }
    console.print(f"results: {write_json(args.out / RESULT_FILE, summary)}")
    return summary


if __name__ == "__main__":
    main()
