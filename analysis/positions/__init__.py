"""The position switch on the sample image: kept tokens at their original RoPE positions or renumbered."""

from analysis.positions.command import run
from analysis.positions.options import PositionsArgs

__all__ = ["PositionsArgs", "run"]
