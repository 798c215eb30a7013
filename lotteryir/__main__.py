"""``python -m lotteryir`` is the CLI (and what ``torchrun -m lotteryir`` launches)."""

import sys

from .cli import main

sys.exit(main())
