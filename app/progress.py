"""A progress line on stderr, redrawn in place, shown only when stderr is a terminal."""

import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.2  # often enough to look alive, rarely enough to cost nothing


class Progress:
    """`show` redraws one line with a carriage return, at most every REDRAW_SECONDS; `done`
    clears it, so the summary that follows starts on a clean line. On anything but a
    terminal (a log file, a pipe, a test) it writes nothing."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.on = self.stream.isatty()
        self.shown_at = 0.0
        self.width = 0

    def show(self, text: str) -> None:
        now = time.monotonic()
        if not self.on or now - self.shown_at < REDRAW_SECONDS:
            return
        self.shown_at = now
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def done(self) -> None:
        if self.on and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0
