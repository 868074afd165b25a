"""`python -m app`: the same as the `experiment-items` command."""

import sys

from app.cli import main

sys.exit(main())
