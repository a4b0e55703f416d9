"""A one-line progress indicator for long CLI work (``recon era``, ``recon load``).

Why only on a terminal: a script, a pipe or a test reading stderr must see exactly
the command's messages, so when stderr is not a TTY nothing is written at all. On
a terminal the line is rewritten in place (carriage return) and cleared at the end,
so what the command prints afterwards starts on a clean line.
"""

from __future__ import annotations

import shutil
import sys
from types import TracebackType
from typing import TextIO


class TtyProgress:
    """``progress(text)`` rewrites one line on stderr when it is a terminal; silent otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.on = bool(self.stream.isatty())
        except (AttributeError, ValueError):  # a closed or replaced stream is not a terminal
            self.on = False
        self.shown = 0

    def __call__(self, text: str) -> None:
        if not self.on:
            return
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        line = text if len(text) <= width else text[: width - 1] + "…"
        self.stream.write("\r" + line.ljust(self.shown))
        self.stream.flush()
        self.shown = len(line)

    def clear(self) -> None:
        """Erase the line (before the command's own output)."""
        if self.on and self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()
            self.shown = 0

    def __enter__(self) -> TtyProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.clear()
