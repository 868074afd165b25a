"""`python -m app`: the same as the `experiment-items` command; also the entry point of the
single-file executable (packaging/experiment-items.spec)."""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    # In the executable, `serve --workers N` starts each worker as this same program with
    # multiprocessing's spawn arguments (uvicorn/_subprocess.py); freeze_support() runs that
    # worker and exits. Anywhere else it does nothing.
    multiprocessing.freeze_support()
    sys.exit(main())
