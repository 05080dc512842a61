"""Textual's Footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes (unmounts and mounts a FooterKey per binding, each restyled)
on every `bindings_updated` signal of its screen, and a screen publishes that signal on
every focus change and on resume. Closing the old dispatch modal published it twice, so two
full footer rebuilds (50–100 ms each on two shared cores) stood between the Enter key and
the frame showing the dispatched row, though the dashboard's keys were the ones shown before.
This footer compares what it would show with what it shows and recomposes only on a change.
While focus is inside a widget that says its own keys (`SAYS_ITS_KEYS`, the dispatch panel),
the footer stays as it is: the panel opens and closes without a footer rebuild on either side.
"""

from __future__ import annotations

from typing import Any

from textual.widget import Widget
from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    """A Footer that skips recomposing when its keys, their words and states are the same."""

    _shown: Any = None

    def _keys(self) -> tuple[Any, ...]:
        """Everything `compose` reads: the active bindings (with enabled state and tooltip)
        and the footer's own switches."""
        active = self.screen.active_bindings
        keys = tuple(
            (binding, enabled, tooltip, self.app.get_key_display(binding))
            for (_node, binding, enabled, tooltip) in active.values()
            if binding.show or binding.key == self.app.COMMAND_PALETTE_BINDING
        )
        switches = (self.show_command_palette, self.combine_groups, self._bindings_ready)
        return (keys, switches, self.app.ENABLE_COMMAND_PALETTE)

    async def recompose(self) -> None:
        if not self.is_attached:
            return
        if self.children and _says_its_keys(self.screen.focused):
            return
        keys = self._keys()
        if keys == self._shown and self.children:
            return
        self._shown = keys
        await super().recompose()


def _says_its_keys(focused: Widget | None) -> bool:
    if focused is None:
        return False
    return any(getattr(node, "SAYS_ITS_KEYS", False) for node in focused.ancestors_with_self)
