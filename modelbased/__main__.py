import sys

from modelbased.cli import main

sys.exit(main())
