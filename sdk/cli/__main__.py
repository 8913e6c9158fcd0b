"""`python -m bmsdk.cli ...`: the same as the `bmsdk` command."""

import sys

from bmsdk.cli import main

sys.exit(main())
