"""``python -m modelbased``: the command line (``modelbased --help``)."""

import sys

from modelbased.cli import main

sys.exit(main())
