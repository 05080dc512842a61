"""The daemon as a real process for the fault suite: `python tests/fault_daemon.py URL CONFIG
LOG_LEVEL SPEED WALL0 OVERRIDES_JSON`.

SPEED > 1 runs the daemon's clock fast from WALL0 (a time.time() the test also knows):
clock = start + (time.time() - WALL0) * SPEED, so a ten-minute outage takes ten seconds.
OVERRIDES_JSON replaces top-level keys of the deployment (contacts, notices).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def fast_clock(speed: float, wall0: float) -> Callable[[], datetime]:
    start = datetime.fromtimestamp(wall0, UTC)

    def clock() -> datetime:
        return start + timedelta(seconds=(time.time() - wall0) * speed)

    return clock


def main(argv: list[str]) -> int:
    from tafang.sla.daemon import run_daemon, utcnow
    from tafang.sla.policy import Policy
    from tafang.store.cases import Store
    from tafang.store.config import Deployment, load_config
    from tafang.store.db import make_engine

    url, config, level, speed, wall0, overrides = argv
    d = load_config(config)
    extra = json.loads(overrides)
    if extra:
        d = Deployment.model_validate({**d.model_dump(), **extra})
    clock = fast_clock(float(speed), float(wall0)) if float(speed) != 1.0 else utcnow
    store = Store(make_engine(url), d, clocks=Policy(d))
    return run_daemon(store, d, clock=clock, log_level=level, batch=50)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
