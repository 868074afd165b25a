"""Capacity: the limit on open files a server process runs with, and the connections a worker
takes below it (reliability probe D6)."""

import contextlib

# Descriptors a worker keeps besides its connections: the listening socket, the event loop's,
# stdio, logs, a stream's spooled file, and the database, -wal and -shm of the writer and of
# each reader (RESERVED_FDS_PER_CONNECTION each).
RESERVED_FDS = 64
RESERVED_FDS_PER_CONNECTION = 3


def raise_open_files_limit() -> int | None:
    """Raises the soft limit on open files to the hard one, as nginx and Go do (systemd's
    default soft limit, 1024, is 1,000 idle connections: probe D6); returns the limit now in
    force, None when there is none (or, on Windows, no such limit)."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        # macOS refuses an unlimited soft limit (above OPEN_MAX): the old one stays.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return None if soft == resource.RLIM_INFINITY else soft


def connection_cap(open_files: int | None, readers: int) -> int | None:
    """Connections one worker serves at once; None (no cap) when open files are unlimited."""
    if open_files is None:
        return None
    reserved = RESERVED_FDS + RESERVED_FDS_PER_CONNECTION * (readers + 1)
    return max(open_files - reserved, 1)
