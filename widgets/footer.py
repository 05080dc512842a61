"""Textual's Footer, rebuilt only when the keys it shows change.

Textual's Footer recomposes (unmounts and mounts a FooterKey per binding, each restyled)
on every `bindings_updated` signal of its screen, and a screen publishes that signal on
every focus change and on resume. Closing the dispatch modal published it twice, so two
full footer rebuilds (50–100 ms each on two shared cores) stood between the Enter key and the
frame showing the dispatched row, though the dashboard's keys were the ones shown before.
This footer compares what it would show with what it shows and recomposes only on a change.
"""

from __future__ import annotations

from typing import Any

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
        keys = self._keys()
        if keys == self._shown and self.children:
            return
        self._shown = keys
        await super().recompose()
