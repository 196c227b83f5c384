"""`python -m devkit ...`: the operator CLI."""

import sys

from devkit.cli import main

sys.exit(main())
