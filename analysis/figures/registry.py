"""The figure families, one module each in its study's package (``analysis/<study>/family.py``: its
smoke-results maker, loader and drawing, and its :class:`~analysis.figures.family.Family`),
registered here once, in notebook order.

A new family: ``analysis/<study>/family.py`` defining ``FAMILY``, one line in :data:`FAMILIES`, then
``litelvlm figures --write-notebooks`` for its notebook.
"""

from __future__ import annotations

from analysis.efficiency import family as efficiency
from analysis.figures.family import Family
from analysis.grounding import family as grounding
from analysis.importance import family as importance
from analysis.merged_grounding import family as merged_grounding
from analysis.paired import family as paired
from analysis.positions import family as positions
from analysis.quantization import family as quantization
from analysis.retention import family as retention
from analysis.reversal import family as reversal
from analysis.reversal_grid import family as reversal_grid
from analysis.sink import family as sink
from analysis.video import family as video

#: every figure family by name, in notebook order (``notebooks/01_...`` first)
FAMILIES: dict[str, Family] = {fam.name: fam for fam in (
    reversal.FAMILY,  # 01_similarity_reversal
    sink.FAMILY,  # 02_text_attention_sink
    retention.FAMILY,  # 03_token_retention
    grounding.FAMILY,  # 04_grounding_vs_budget
    importance.FAMILY,  # 05_importance_correlation
    efficiency.FAMILY,  # 06_efficiency
    quantization.FAMILY,  # 07_quantization
    positions.FAMILY,  # 08_positions
    merged_grounding.FAMILY,  # 09_merged_grid_grounding
    reversal_grid.FAMILY,  # 10_reversal_merged_grid
    video.FAMILY,  # 11_video_referring_segmentation
    paired.FAMILY,  # 12_paired_comparisons
)}
