"""The one message shape the widgets post: "this widget's cursor is on / chose that item"."""

from __future__ import annotations

from typing import Generic, TypeVar

from textual.message import Message
from textual.widget import Widget

T = TypeVar("T")


class Picked(Message, Generic[T]):
    """An item (a grid code, an officer code, a case id) picked in `widget`.

    Subclasses name the event (CellChosen, OfficerHighlighted …) so handlers stay specific;
    `control` makes `@on(..., "#selector")` work as for Textual's own widgets.
    """

    def __init__(self, widget: Widget, value: T) -> None:
        super().__init__()
        self.widget = widget
        self.value = value

    @property
    def control(self) -> Widget:
        return self.widget
