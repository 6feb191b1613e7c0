"""Defaults more than one study shares (light: imports nothing)."""

from __future__ import annotations

#: The default k of every top-k statistic: the Jaccard overlaps of ``importance``, the lowest/highest-k inside
#: shares of ``reversal`` and the sink ablation (GLaMM and LLaVA-1.5 have 576 visual tokens).
DEFAULT_KS: tuple[int, ...] = (32, 64, 128, 192)
#: The paper's budgets of LLaVA-1.5's 576 visual tokens: all of them (the unpruned model), then 192, 128 and
#: 64.
PAPER_BUDGETS: tuple[int, ...] = (576, 192, 128, 64)
#: The paper's per-frame video budgets (of each frame's 576 CLIP patches; 576: all).
PAPER_VIDEO_BUDGETS: tuple[int, ...] = (576, 196, 81)
#: where ``litelvlm figures`` writes without ``--out``: a new folder of the working directory, never the
#: committed ``figures/`` (remade only with an explicit ``--out figures``)
DEFAULT_OUT = "litelvlm-figures"
