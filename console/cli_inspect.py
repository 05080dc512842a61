"""Joint inspections, enterprises and risk points on the command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add this module's commands to `sub`; return their handlers by command name."""
    return {}
