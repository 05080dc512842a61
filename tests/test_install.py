"""Installed as a user installs it: the built wheel, in a fresh venv outside the checkout.

CI installs the checkout in editable mode, which hides files missing from the wheel (the
packaged deployment, stylesheets, migrations); these tests build the wheel and use it.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("console", "widgets", "store", "sla")


def build_wheel(out: Path) -> Path:
    """The wheel of a clean copy of the source (no stale build/ from an earlier build)."""
    src = out / "src"
    ignore = shutil.ignore_patterns("__pycache__")
    for name in (*FOLDERS, "tafang"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore, symlinks=True)
    for name in ("pyproject.toml", "README.md", "config.toml"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=out,
    )
    (wheel,) = out.glob("tafang-*.whl")
    return wheel


def test_wheel_owns_one_import_name(tmp_path: Path) -> None:
    """Installed beside PyPI's `console`, `store` or `sla`, Tafang overwrites nothing of theirs."""
    names = zipfile.ZipFile(build_wheel(tmp_path)).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"tafang"}
    assert "tafang/__main__.py" in names
    assert "tafang/console/tafang.tcss" in names
    assert "tafang/store/config.toml" in names
    assert any(n.startswith("tafang/store/migrations/versions/0001") for n in names)
    for init in ROOT.glob("*/**/__init__.py"):  # every source package is in the wheel
        rel = init.relative_to(ROOT)
        if rel.parts[0] in FOLDERS:
            assert f"tafang/{rel.as_posix()}" in names, init
    for data in ROOT.glob("store/locale/*.toml"):
        assert f"tafang/store/locale/{data.name}" in names, data


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_wheel_runs_on_its_own_outside_the_checkout(tmp_path: Path) -> None:
    """--version, config check (packaged default), ingest and daemon --once on a scratch store.

    The wheel goes into a fresh venv by itself; its dependencies are this test run's (a path
    line to their site-packages, which does not run the checkout's editable finder), so the
    test takes seconds, not a minute of installing. That the declared dependencies suffice
    at their floors is `.ci/lowest`'s proof: it installs the project with them, not editable."""
    wheel = build_wheel(tmp_path / "dist")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    env_py = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_py),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    site = subprocess.run(
        [env_py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    (Path(site) / "tafang-test-deps.pth").write_text(deps + "\n", encoding="utf-8")
    home = tmp_path / "home"  # no user config, no checkout in sight
    home.mkdir()
    env = {
        "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "TAFANG_DB": str(home / "scratch.db"),
        # No TAFANG_OPERATOR: --operator may only name yourself; who acts is the OS user.
        "LANG": "C.UTF-8",
    }

    def tafang(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [env_dir / "bin" / "tafang", *argv],
            cwd=home,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    r = tafang("--version")
    assert r.returncode == 0 and r.stdout.startswith("tafang "), r.stderr
    r = tafang("config", "check")
    assert r.returncode == 0, r.stderr
    assert "(packaged default)" in r.stdout and str(ROOT) not in r.stdout
    lines = "".join(
        f'{{"source": "hotline", "external_id": "w{i}", "title": "占道经营 {i}",'
        f' "grid": "33010600700801"}}\n'
        for i in range(3)
    )
    r = tafang("ingest", "-", stdin=lines)  # the OS user is not on the packaged roster
    assert r.returncode == 1 and "is not on the roster" in r.stderr, r.stderr
    r = tafang("config", "init")  # as an operator does: the packaged roster, to edit
    assert r.returncode == 0, r.stderr
    user_config = home / ".config" / "tafang" / "config.toml"
    text = user_config.read_text(encoding="utf-8")
    me = getpass.getuser()
    user_config.write_text(text.replace('login = "zhangmin"', f'login = "{me}"'), "utf-8")
    r = tafang("config", "check")
    assert r.returncode == 0 and "(user config dir)" in r.stdout, r.stderr
    r = tafang("ingest", "-", stdin=lines)
    assert r.returncode == 0 and "accepted=3" in r.stdout, r.stderr
    r = tafang("daemon", "--once")
    assert r.returncode == 0, r.stderr
    r = tafang("cases", "--json")
    assert r.returncode == 0 and r.stdout.count('"external_id"') == 3, r.stderr
    assert (home / "scratch.db").is_file()  # the store went where TAFANG_DB says
