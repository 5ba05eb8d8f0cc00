"""No module imports from an outer layer: models ← connectors ← flows ← quoteflow.

The contract is import-linter's layers contract in pyproject.toml ([tool.importlinter]);
this runs it as part of the suite. In tests/, no module imports a test module: what tests
share lives in helper modules (tests/*.py not named test_*).
"""

from __future__ import annotations

import ast
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


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_test_module_is_imported_by_another_module_of_the_tests():
    imports = {path.name: sorted(name for name in _imported_modules(path)
                                 if name.startswith("tests.test_"))
               for path in sorted((ROOT / "tests").glob("*.py"))}
    assert {name: found for name, found in imports.items() if found} == {}
