"""Where the listing commands print: tables for people, JSON for scripts.

On a terminal a table fits the window (rich shortens long cells with "…"). Piped or redirected,
nothing may be cut short (``mailpipe providers | grep sendgrid`` must find it), so the console
has no width limit there; ``COLUMNS`` or an explicit width still wins. ``--json`` prints plain
JSON with no markup or wrapping, for ``jq``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console, ConsoleDimensions

# Wide enough that no cell is ever cut; rich sizes a table to its content, not to this.
PIPED_WIDTH = 100_000


class ScriptFriendlyConsole(Console):
    """A rich Console that does not cut lines when stdout is not a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(PIPED_WIDTH, super().size.height)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (dates and enums as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()
