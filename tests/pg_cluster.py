"""A private PostgreSQL cluster for fault tests: started on its own port, restarted at will.

initdb / pg_ctl from the server's bin directory, run as the `postgres` OS user when we are
root (PostgreSQL refuses to run as root), in a temporary directory that user owns. A restart
touches nothing but this cluster, so other tests on the shared server go on undisturbed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

BIN_DIRS = [Path(p) for p in ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")]


def _bin() -> Path | None:
    env = os.environ.get("TAFANG_PG_BIN")
    for d in ([Path(env)] if env else []) + BIN_DIRS:
        if (d / "pg_ctl").exists() and (d / "initdb").exists():
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateCluster:
    """initdb + pg_ctl start on a free port; `restart()`, `stop()`, `start()`, `destroy()`."""

    def __init__(self) -> None:
        bindir = _bin()
        if bindir is None:
            msg = "no PostgreSQL server binaries (initdb, pg_ctl) for a private cluster"
            if os.environ.get("CI"):
                pytest.fail(msg)
            pytest.skip(msg)
        self.bin = bindir
        self.root = Path(tempfile.mkdtemp(prefix="tafang-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.stop_asked = self.start_asked = 0.0  # time.time() of the last restart's requests
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        conf = (
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.root}'\nfsync = off\n"
            "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n"
        )
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write(conf)
        self.start()

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=self.root)
        if r.returncode != 0:
            raise RuntimeError(f"{tool} failed ({r.returncode}): {r.stderr[-2000:]}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start")

    def stop(self) -> None:
        """Fast shutdown: every session is ended, as in a real restart."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def restart(self, down_for: float = 0.0) -> tuple[float, float]:
        """Stop, stay down `down_for` seconds, start; (went down, came back) as time.time().
        `stop_asked` / `start_asked` keep when the stop and the start were asked: clients may
        see the server go, and come back, before `pg_ctl` returns; it was certainly down from
        the first return to `start_asked`."""
        self.stop_asked = time.time()
        self.stop()
        down = time.time()
        if down_for:
            time.sleep(down_for)
        self.start_asked = time.time()
        self.start()
        return down, time.time()

    def destroy(self) -> None:
        try:
            self.stop()
        except Exception:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
