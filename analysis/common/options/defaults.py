"""The studies' defaults, each a named constant (light: imports only :mod:`litelvlm.budget`); a study passes
its own to the one declaration of the option (:mod:`litelvlm.shared_options`)."""

from __future__ import annotations

from litelvlm.budget import PAPER_BUDGETS, PAPER_VIDEO_BUDGETS, VIDEO_BUDGETS

#: The default k of every top-k statistic: the Jaccard overlaps of ``importance``, the lowest/highest-k inside
#: shares of ``reversal`` and the sink ablation (GLaMM and LLaVA-1.5 have 576 visual tokens).
DEFAULT_KS: tuple[int, ...] = (32, 64, 128, 192)
#: ``eval-grounding``'s and ``efficiency``'s budgets: the paper's (:data:`PAPER_BUDGETS`), then 32.
GROUNDING_BUDGETS: tuple[int, ...] = (*PAPER_BUDGETS, 32)
#: ``plan``'s image budgets: the paper's pruned ones (192, 128, 64).
PAPER_PRUNED_BUDGETS: tuple[int, ...] = PAPER_BUDGETS[1:]
#: ``retention``'s budgets: those of the paper's animation (LLaVA's 576 tokens down to 32).
RETENTION_BUDGETS: tuple[int, ...] = (576, 192, 64, 32)
#: ``positions``' budgets: two pruned ones of the paper's.
POSITIONS_BUDGETS: tuple[int, ...] = (192, 64)
#: where ``litelvlm figures`` writes without ``--out``: a new folder of the working directory, never the
#: committed ``figures/`` (remade only with an explicit ``--out figures``)
DEFAULT_OUT = "litelvlm-figures"


__all__ = ["DEFAULT_KS", "DEFAULT_OUT", "GROUNDING_BUDGETS", "PAPER_BUDGETS", "PAPER_PRUNED_BUDGETS",
           "PAPER_VIDEO_BUDGETS", "POSITIONS_BUDGETS", "RETENTION_BUDGETS", "VIDEO_BUDGETS"]
