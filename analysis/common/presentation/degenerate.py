"""A degenerate result said on screen: one WARNING line when every mask a run predicted is empty (its scores
then measure nothing), naming the model and the run folder. ``eval-grounding``, ``eval-video`` and
``validate`` call it where they score masks."""

from __future__ import annotations

import logging
from pathlib import Path

from litelvlm.registry.provenance import weights_kind

#: what a random preset's line adds: its mask gate may be closed for this seed (docs/validate.md)
RANDOM_HINT = ("; these are random weights, whose mask gate can be closed for a seed: another seed may open "
               "it (docs/validate.md)")


def warn_if_degenerate(log: logging.Logger, command: str, degenerate: bool, model: str | None,
                       out: str | Path, what: str = "every predicted mask is empty") -> bool:
    """Log one WARNING line when ``degenerate`` (``what`` says how), naming ``model`` and the run ``out``;
    returns ``degenerate``."""
    if degenerate:
        hint = RANDOM_HINT if model is not None and weights_kind(model) == "random" else ""
        log.warning("%s: %s (model %s, run %s): its scores measure nothing%s", command, what, model, out,
                    hint)
    return degenerate
