"""lotteryir: lottery-ticket pruning for image-restoration networks."""
from __future__ import annotations

__version__ = "0.1.0.dev0"
