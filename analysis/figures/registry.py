"""The figure sets, one module each in its study's package (``analysis/<study>/figure_set.py``: its
smoke-results maker, loader and drawing, and its :class:`~analysis.common.presentation.figure_set.FigureSet`),
registered here once, in notebook order. A figure set is named after the study whose runs it draws (the study
itself, or ``<study>_<what>``), so that a user finds a run's figures under its command's name; one drawing
several studies' runs says so in :data:`CROSS_STUDY`.

A new figure set: ``analysis/<study>/figure_set.py`` defining ``FIGURE_SET``, one line in :data:`FIGURE_SETS`,
then ``litelvlm figures --write-notebooks`` for its notebook.
"""

from __future__ import annotations

from analysis.common.presentation.figure_set import FigureSet
from analysis.efficiency import figure_set as efficiency
from analysis.grounding import figure_set as grounding
from analysis.importance import figure_set as importance
from analysis.merged_grounding import figure_set as grounding_merged_grid
from analysis.paired import figure_set as paired
from analysis.positions import figure_set as positions
from analysis.quantization import figure_set as validate
from analysis.retention import figure_set as retention
from analysis.reversal import figure_set as reversal
from analysis.reversal_grid import figure_set as reversal_grid
from analysis.sink import figure_set as sink
from analysis.video import figure_set as video

#: the figure sets drawing the runs of several studies, named after what they draw instead
CROSS_STUDY = {"paired": "the paired comparisons of grounding and video runs"}
#: earlier names of figure sets, still accepted by ``--figure-set`` with a line naming the new one
RENAMED = {"quantization": "validate", "merged_grounding": "grounding_merged_grid"}

#: every figure set by name, in notebook order (``notebooks/01_...`` first)
FIGURE_SETS: dict[str, FigureSet] = {fs.name: fs for fs in (
    reversal.FIGURE_SET,  # 01_similarity_reversal
    sink.FIGURE_SET,  # 02_text_attention_sink
    retention.FIGURE_SET,  # 03_token_retention
    grounding.FIGURE_SET,  # 04_grounding_vs_budget
    importance.FIGURE_SET,  # 05_importance_correlation
    efficiency.FIGURE_SET,  # 06_efficiency
    validate.FIGURE_SET,  # 07_quantization
    positions.FIGURE_SET,  # 08_positions
    grounding_merged_grid.FIGURE_SET,  # 09_merged_grid_grounding
    reversal_grid.FIGURE_SET,  # 10_reversal_merged_grid
    video.FIGURE_SET,  # 11_video_referring_segmentation
    paired.FIGURE_SET,  # 12_paired_comparisons
)}
