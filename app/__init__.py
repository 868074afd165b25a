"""Opik's experiment-items REST API served from one SQLite file."""

from importlib import metadata

try:
    __version__ = metadata.version("experiment-items")
except metadata.PackageNotFoundError:  # run from a source tree or a frozen binary
    __version__ = "0.1.0"
