"""The progress line: redrawn in place on a terminal, silent anywhere else."""

import io

from app.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_redrawn_then_cleared() -> None:
    stream = Terminal()
    progress = Progress(stream)

    progress.show("read 1,000 lines")
    progress.show("read 2,000 lines")  # too soon after the first: not drawn
    progress.done()

    assert stream.getvalue() == "\rread 1,000 lines" + "\r" + " " * 16 + "\r"


def test_elsewhere_nothing_is_written() -> None:
    stream = io.StringIO()
    progress = Progress(stream)

    progress.show("read 1,000 lines")
    progress.done()

    assert stream.getvalue() == ""
