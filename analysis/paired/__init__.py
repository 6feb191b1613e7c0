"""Figure set 12, paired comparisons: every method minus the unpruned model and minus LiteLVLM on the same
images, expressions or videos, with paired bootstrap intervals (``comparisons.csv`` of ``eval-grounding`` and
``eval-video``, :mod:`analysis.common.stats.accuracy_stats`)."""
