"""The layers of DESIGN §3 hold, and the package installs under one import name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
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


def test_wheel_owns_one_import_name(tmp_path: Path) -> None:
    """Installed beside PyPI's `console`, `store` or `sla`, Tafang overwrites nothing of theirs."""
    src = tmp_path / "src"  # a clean copy: no stale build/ from an earlier build
    for name in (*FOLDERS, "tafang"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "config.toml"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(src)],
        check=True, capture_output=True, timeout=300, cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("tafang-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"tafang"}
    for folder in FOLDERS:
        assert f"tafang/{folder}/__init__.py" in names
    assert "tafang/__main__.py" in names
    for init in ROOT.glob("*/**/__init__.py"):  # every source package is in the wheel
        folder = init.relative_to(ROOT).parts[0]
        if folder in FOLDERS:
            assert f"tafang/{init.relative_to(ROOT).as_posix()}" in names, init
    assert "tafang/console/tafang.tcss" in names
    assert any(n.startswith("tafang/store/migrations/versions/0001") for n in names)
