"""Run the console: the first read of the store starts before Textual and the app are imported.

Process start to the first queue rows is what the dispatcher waits through (DESIGN §5: 1.5 s
with 10k open cases); importing the app and composing the screen take about a third of it,
and the read of the open cases runs meanwhile (console/first_read.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tafang.console.demo import DemoOptions
    from tafang.store.cases import Store
    from tafang.store.config import Deployment


def run_console(
    store: Store,
    deployment: Deployment,
    *,
    operator: str,
    terminal: str | None = None,
    lang: str | None = None,
    demo: DemoOptions | None = None,
) -> int:
    """Run the console until the dispatcher quits; with `demo`, a simulated feed runs too.

    Returns the process exit code (0).
    """
    from tafang.console import first_read
    from tafang.console.i18n import Strings
    from tafang.console.view_model import ViewModel

    feed = None
    if demo is not None:
        from tafang.console.demo import DemoFeed, prepare

        prepare(store, demo)
        feed = DemoFeed(store, demo)
        feed.start()
    try:
        vm = ViewModel(deployment, Strings(lang or deployment.ui.lang))
        read = first_read.start(store, vm)
        from tafang.console.app import TafangApp  # meanwhile

        app = TafangApp(
            store, deployment, operator=operator, terminal=terminal, lang=lang, first_read=read
        )
        app.run()
    finally:
        if feed is not None:
            feed.stop()
    return 0
