"""The one way a Bytewax flow runs as a long-lived process: workers, clusters, recovery.

`run_dataflow` starts a flow with Bytewax's `cli_main` (workers per process, a cluster of
processes with `process_id`/`addresses`) and, given a recovery directory, Bytewax snapshots
in `<directory>/<flow id>`: every flow keeps its own, so one configured directory serves all
of them and two flows never resume from each other's state (docs/operations.md).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec
from bytewax._bytewax import cli_main
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir

# Fixed at initialisation: Bytewax spreads these over however many workers run later.
RECOVERY_PARTITIONS = 4


class Recovery(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where snapshots go (None: no recovery) and how often: the config's `[recovery]` section."""

    directory: str | None = None
    snapshot_interval_s: float = 5.0
    backup_interval_s: float = 0.0


def recovery_config(directory: str | Path, backup_interval_s: float = 0.0) -> RecoveryConfig:
    """Bytewax recovery in `directory`, initialised on first use (`python -m bytewax.recovery`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not any(directory.glob("part-*.sqlite3")):
        init_db_dir(directory, RECOVERY_PARTITIONS)
    return RecoveryConfig(str(directory), timedelta(seconds=backup_interval_s))


def flow_recovery_dir(directory: str | Path, flow: Dataflow) -> Path:
    return Path(directory) / flow.flow_id


def run_dataflow(
    flow: Dataflow,
    recovery: Recovery | None = None,
    *,
    workers: int = 1,
    process_id: int | None = None,
    addresses: list[str] | None = None,
    per_flow_directory: bool = True,
) -> None:
    """Run `flow` until its input ends (never, for a tailing one); blocks.

    `per_flow_directory=False` uses the recovery directory as given (`quoteflow flow
    --recovery-dir`, and the Kubernetes init that lays out its partitions there).
    """
    recovery = recovery or Recovery()
    resume = None
    if recovery.directory:
        directory = recovery.directory
        if per_flow_directory:
            directory = flow_recovery_dir(directory, flow)
        resume = recovery_config(directory, recovery.backup_interval_s)
    cli_main(
        flow,
        workers_per_process=workers,
        process_id=process_id,
        addresses=addresses,
        epoch_interval=timedelta(seconds=recovery.snapshot_interval_s),
        recovery_config=resume,
    )
