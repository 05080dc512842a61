"""The layers of DESIGN §3 hold: checked by import-linter's contracts in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_contracts_hold() -> None:
    r = _lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout


def test_a_wrong_import_breaks_a_contract(tmp_path: Path) -> None:
    """Prove the contracts bite: a copy of the tree where the store imports Textual."""
    for pkg in ("console", "widgets", "store", "sla"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "store" / "leak.py").write_text("import textual\nimport sla\n")
    r = _lint_imports(tmp_path)
    assert r.returncode != 0
    assert "store imports nothing of ours and no Textual" in r.stdout
    assert "BROKEN" in r.stdout
