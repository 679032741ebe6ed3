"""`python -m evaluation --adapter huanhuan`: see evaluation.cli."""

import sys

from evaluation.cli import main

sys.exit(main())
