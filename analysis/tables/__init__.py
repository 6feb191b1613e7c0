"""``litelvlm tables``: the paper's tables (grounding, efficiency, video) from a results tree, as Markdown,
LaTeX (booktabs) and CSV; see docs/tables.md."""

from analysis.tables.command import run
from analysis.tables.options import TablesArgs

__all__ = ["TablesArgs", "run"]
