"""Issue 13.1, as an operator would break it: the robot's receiver down for ten minutes.

The daemon runs as a real process with its clock sixty times fast (tests/fault_daemon.py),
so ten minutes take ten seconds; the receiver is a real HTTP server on 127.0.0.1 that
answers 500 for five minutes, then is gone (connection refused) for five, then comes back.
Before the fix 99 of 240 notices ended `dead` after 8 tries (backoff 2 → 128 s) and were
never sent. Now every notice is delivered, none is dead or given up, each try is charged to
a row actually posted, and the centre hears of the stuck notices through another contact.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.pg_cluster import _free_port
from tests.test_escalate import bulk_cases
from tests.test_escalate import open_store as _open_store
from tests.test_faults_leader import Proc, wait_until

pytestmark = pytest.mark.slow

SPEED = 60.0  # clock seconds per real second
LEVELS = ("grid", "enforcement", "emergency", "risk", "centre")


class Receiver:
    """A webhook receiver whose mode the test sets: up, 500, or down (port closed)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.keys: list[str] = []  # every notice key received in a 2xx answer
        self.alarms: list[dict[str, Any]] = []
        self.tried = 0
        self.mode = "up"
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        rx = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with rx._lock:
                    rx.tried += 1
                    status = 500 if rx.mode == "500" else 200
                    if status == 200:
                        if self.path == "/alarm":
                            rx.alarms.append(body)
                        else:
                            rx.keys += body.get("keys") or [body["key"]]
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_a: Any) -> None:
                pass

        return H

    def up(self) -> None:
        if self._server is None:
            ThreadingHTTPServer.allow_reuse_address = True
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
            threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.mode = "up"

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.mode = "down"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_receiver_down_ten_minutes_then_back_every_notice_delivered(
    db_url: str, tmp_path: Path
) -> None:
    robot, phone = Receiver(_free_port()), Receiver(_free_port())
    robot.up()
    robot.mode = "500"
    phone.up()
    overrides = {
        "contacts": [
            {"level": lv, "name": lv, "url": robot.url("/hook"), "format": "json"} for lv in LEVELS
        ],
        "notices": {
            "alarm_after_minutes": 3,
            "alarm": {"level": "centre", "name": "值班手机", "url": phone.url("/alarm")},
        },
    }
    store = _open_store(db_url)
    wall0 = time.time()
    # 240 cases already 5 s past their respond deadline: 240 notices at the first sweep.
    ids = bulk_cases(store, 240, datetime.now(UTC) - timedelta(seconds=65))

    def clock_minutes() -> float:
        return (time.time() - wall0) * SPEED / 60

    def statuses() -> dict[str, int]:
        with store.engine.connect() as c:
            q = text("SELECT status, count(*) FROM outbox WHERE contact != 'alarm' GROUP BY 1")
            return dict(c.execute(q).all())

    d = Proc("D", db_url, tmp_path / "d.log", "info", speed=SPEED, wall0=wall0, overrides=overrides)
    try:
        wait_until(lambda: statuses().get("pending", 0) == len(ids), "240 notices queued")
        queued = clock_minutes()
        wait_until(lambda: clock_minutes() >= queued + 5, "five minutes of HTTP 500")
        robot.down()
        wait_until(lambda: clock_minutes() >= queued + 10, "five minutes of connection refused")
        assert robot.keys == [] and set(statuses()) == {"pending"}
        assert phone.alarms, "the centre was not told through the other contact"
        robot.up()
        back = time.time()
        wait_until(lambda: set(statuses()) == {"sent"}, "every notice delivered", 30)
        took = (time.time() - back) * SPEED
        assert d.stop() == 0
    finally:
        d.kill()
        robot.down()
        phone.down()
    with store.engine.connect() as c:
        rows = c.execute(text("SELECT key, status, attempts FROM outbox")).all()
    notices = {r.key for r in rows if r.key.startswith("esc-")}
    # The clock is minutes ahead when the daemon starts: the catch-up raises each case to
    # the level due by then (one notice each), later steps add more.
    assert {int(k.split("-")[1]) for k in notices} == set(ids)
    assert set(robot.keys) == notices  # every notice delivered, at least once
    assert {r.status for r in rows} == {"sent"}  # none dead, none given up
    posted = sum(r.attempts for r in rows if r.key.startswith("esc-"))
    alarms = [x["fields"]["alarm"] for x in d.lines() if x["event"] == "notices_undeliverable"]
    print(
        f"\nnotices delivered {len(set(robot.keys))} / queued {len(notices)}; dead 0; "
        f"{robot.tried} requests to the robot; attempts charged {posted}; "
        f"all delivered {took / 60:.1f} clock-min after the receiver came back; "
        f"alarms to the centre's other contact: {len(phone.alarms)} ({alarms[:1]})"
    )
    assert len(phone.alarms) == 1 and phone.alarms[0]["kind"] == "outbox_stuck"
    store.engine.dispose()
