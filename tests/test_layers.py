"""No module imports from an outer layer: models ← connectors ← flows ← quoteflow.

The contract is import-linter's layers contract in pyproject.toml ([tool.importlinter]);
this runs it as part of the suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_import_reaches_from_an_inner_layer_to_an_outer_one():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
