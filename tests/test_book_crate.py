"""The compiled book crate's own Rust unit tests (`cargo test`), run with the suite.

`rust/quoteflow_book` holds tests that only Rust can reach (the tick parser's refusals, the
`str(Decimal)` formatting of `Levels`); `./dev test` runs pytest only, so this test runs
them. The bootstrap installs cargo (it builds the crate), so a missing cargo is a failure,
not a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CRATE = Path(__file__).resolve().parent.parent / "rust" / "quoteflow_book"


def _cargo() -> str:
    found = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    assert Path(found).exists(), "cargo not found: run scripts/bootstrap.sh test"
    return found


def test_rust_unit_tests_pass():
    # The crate's own target directory, so a second run only relinks what changed.
    done = subprocess.run(
        [_cargo(), "test", "--locked", "--quiet", "--manifest-path", str(CRATE / "Cargo.toml")],
        capture_output=True, text=True, env=os.environ | {"CARGO_TERM_COLOR": "never"},
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "test result: ok" in done.stdout
