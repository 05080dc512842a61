"""The layers of DESIGN §3 hold: checked by import-linter's contracts in pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("console", "widgets", "store", "sla")


def _lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    return subprocess.run(
        [exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def test_contracts_hold() -> None:
    r = _lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 kept, 0 broken" in r.stdout


def _tree_with(tmp_path: Path, leak: str, source: str) -> dict[str, str]:
    """A copy of the tree laid out as installed (tafang/<folder>), with one wrong import added."""
    for pkg in FOLDERS:
        shutil.copytree(
            ROOT / pkg, tmp_path / "tafang" / pkg, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "tafang" / leak).write_text(source)
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_a_wrong_import_breaks_a_contract(tmp_path: Path) -> None:
    """Prove the contracts bite: a copy of the tree where the store imports Textual."""
    env = _tree_with(tmp_path, "store/leak.py", "import textual\nimport tafang.sla\n")
    r = _lint_imports(tmp_path, env)
    assert r.returncode != 0
    assert "store imports nothing of ours and no Textual" in r.stdout
    assert "BROKEN" in r.stdout


def test_console_runs_no_sql_of_its_own(tmp_path: Path) -> None:
    """Queries belong to the store: a console module importing SQLAlchemy breaks a contract."""
    env = _tree_with(tmp_path, "console/leak.py", "import sqlalchemy\n")
    r = _lint_imports(tmp_path, env)
    assert r.returncode != 0
    assert "console asks the store, and runs no SQL" in r.stdout
