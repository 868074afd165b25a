"""Export: a workspace, or one experiment, as the transfer file that `import` reads back."""

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app import lines
from app.lines import KINDS, Kind
from app.progress import Progress
from app.store import snapshot

OUTPUT_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Exported:
    """How many lines of each kind an export wrote, and how long it took."""

    lines: dict[Kind, int]
    seconds: float


def export(
    database: Path | str,
    workspace: str,
    experiment: bytes | None,
    out: BinaryIO,
    progress: Progress,
) -> Exported:
    """Writes every record of the workspace (or of the experiment and what it refers to),
    kind after kind in dependency order, each kind in primary-key order, from one snapshot."""
    started = time.monotonic()
    counts: dict[Kind, int] = {}
    with snapshot(database, workspace, experiment) as snap:
        for kind in KINDS:
            counts[kind] = 0
            for page in snap.pages(kind):
                out.write(b"".join(lines.encode(kind, record) for record in page))
                counts[kind] += len(page)
                progress.show(f"exported {sum(counts.values()):,} lines ({kind})")
    out.flush()
    progress.done()
    return Exported(counts, time.monotonic() - started)


@contextmanager
def output_file(path: Path) -> Iterator[BinaryIO]:
    """A file that appears at `path` only once the block has written it whole: an export
    that fails half-way leaves no half file that an import would take for all of it."""
    staged = path.with_name(f".{path.name}.partial")
    try:
        with staged.open("wb", buffering=OUTPUT_BUFFER_BYTES) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
