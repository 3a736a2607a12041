"""`python -m runtime`: the same as the `edgewatch` command."""

import sys

from runtime.cli import main

sys.exit(main())
