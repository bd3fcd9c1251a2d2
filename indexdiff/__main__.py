"""``python -m indexdiff``: the command line."""

from .cli import main

raise SystemExit(main())
