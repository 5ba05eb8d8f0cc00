"""What both benchmarks share: options, the machine they ran on, progress, results on disk."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("QUOTEFLOW_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_DATA = SHARED_DATA / "binance" / "usdm" / "btcusdt_20240808.gz"
DEFAULT_STRATEGIES = ("avellaneda-stoikov-infinite", "avellaneda-stoikov")


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """One option set for every benchmark, so `./dev bench ARGS` hands ARGS to each of them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="recorded file")
    parser.add_argument(
        "--strategy", action="append", dest="strategies",
        help=f"quoting model (repeatable; default: {', '.join(DEFAULT_STRATEGIES)})",
    )
    parser.add_argument(
        "--repeat", type=_positive_int, default=5,
        help="runs per measurement; the best one is reported (the box is shared)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "out" / "bench", help="directory for JSON and charts"
    )
    parser.add_argument(
        "--img-dir", type=Path,
        help="directory for the charts (default: --out); docs/img refreshes the docs' charts",
    )
    parser.add_argument(
        "--baseline", type=Path,
        help="--out directory of an earlier run, drawn beside this one in the charts",
    )
    parser.add_argument(
        "--cached", action="store_true",
        help="backtest_throughput: also time replays from the event cache (--cache DIR)",
    )
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"--data {args.data} is not a file (is ../shared beside the repo?)")
    args.strategies = args.strategies or list(DEFAULT_STRATEGIES)
    args.img_dir = args.img_dir or args.out
    return args


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def run_summary(args: argparse.Namespace, module: str, results: object) -> dict:
    """A benchmark's JSON: the command that ran it (`module` is its `__spec__.name`), on
    what data, how many repeats, on which machine, and its results."""
    return {
        "benchmark": module.rpartition(".")[2],
        "command": " ".join([Path(sys.executable).name, "-m", module, *sys.argv[1:]]),
        "data": str(args.data),
        "repeat": args.repeat,
        "machine": machine(),
        "results": results,
    }


def machine() -> dict:
    """What the figures were measured on: they mean nothing without it."""
    return {
        "cpu": _lscpu_model() or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "ram_gib": round(_mem_total_kib() / 2**20, 1),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": _os_name(),
    }


def _lscpu_model() -> str | None:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Model name":
            return value.strip()
    return None


def _mem_total_kib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.partition('=')[2].strip(chr(34))}, {platform.release()}"
    except OSError:
        pass
    return platform.platform()


def console() -> Console:
    """Progress and tables on stderr, wide enough for the tables when it is not a terminal."""
    stderr = Console(stderr=True)
    return stderr if stderr.is_terminal else Console(stderr=True, width=120)


def progress_bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
    )


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def read_baseline(baseline_dir: Path | None, name: str) -> dict | None:
    if baseline_dir is None:
        return None
    path = baseline_dir / name
    return json.loads(path.read_text()) if path.is_file() else None
