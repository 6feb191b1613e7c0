"""What ``litelvlm validate`` runs on one image, asked of the family contract only (``litelvlm.lvlm.family``).

* :func:`check_methods`: the methods to run (default: every registered method the model's family runs), each
  refused with the family's reason (``GroundingPipeline.method_error``) or a layer option out of the model's
  range, before the image is prepared or anything is written; a video model's ``--arrangement`` given to its
  pipeline (refused for an image model);
* :func:`plan_runs`: the (method, :class:`~litelvlm.budget.Budget`) runs planned against this image's N
  (``analysis.common.grounding.grounding_runs.plan``; the baseline at all N; a budget above this image's N is
  skipped);
* :func:`text_tokens`: the prompt's tokens that are not visual tokens (``layout(prepared, N)``).
"""

from __future__ import annotations

import logging

from analysis.common.grounding.grounding_runs import Run, image_runs, plan
from analysis.common.grounding.method_choice import study_methods
from analysis.validate.video import use_arrangement
from litelvlm.budget import Budget
from litelvlm.cli_args import split_list
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import BASELINE, get_method

log = logging.getLogger(__name__)


def check_methods(a, pipe) -> list[str]:
    """The baseline then ``--methods`` (default: every registered method ``pipe``'s family runs whose layer
    options fit the model, :func:`~analysis.common.grounding.method_choice.study_methods`); refuses, naming
    each, a method the family cannot run and a layer option (``--fastv-layer``) the model does not have;
    gives a video model its ``--arrangement`` (:func:`analysis.validate.video.use_arrangement`)."""

    given = split_list(a.methods)
    for m in given:
        get_method(m)  # an unknown name: an error naming the known ones
    # a video family's default leaves the oracles out: saliency's backward over a video prompt (~3420 tokens)
    # would hold every layer's attention (about 3 GB a layer at VideoGLaMM's real size)
    methods = study_methods(pipe, given, a, keep=lambda m: _has_schedule(pipe, m) and not (
        pipe.abilities.budget_unit == "frame" and pipe.spec(m).oracle))
    methods = [BASELINE, *[m for m in methods if not get_method(m).baseline]]
    use_arrangement(a, pipe, methods)  # a video model's --arrangement (refused for an image model)
    return methods


def _has_schedule(pipe, method: str) -> bool:
    """Whether ``method`` has a token schedule for the model's decoder (SparseVLM's three stages need more
    than 2 layers); a default method without one is left out with a warning."""
    n = pipe.num_visual_tokens or 576
    try:
        pipe.spec(method).schedule(max(1, n // 2), n, int(pipe.language_model.config.num_hidden_layers))
    except LiteLVLMError as e:
        log.warning("%s left out of the default methods: %s", method, e)
        return False
    return True


def plan_runs(methods: list[str], budgets: list[Budget], pipe, n: int) -> tuple[list[Run], list[int]]:
    """((method, budget) runs for an image of ``n`` visual tokens, the budgets skipped as above ``n``, as
    their table columns): the studies' plan (``grounding_runs.plan``: the baseline once, at all N; a fixed
    grid refuses K > N there), a budget above this image's N skipped (``image_runs``) when the family's N
    depends on the image."""
    planned = plan(methods, budgets, pipe.num_visual_tokens if pipe.abilities.budget_unit == "visual" else n)
    runs = image_runs(planned, n)
    kept = {b for _, b in runs}
    skipped = sorted({b.column for _, b in planned if b not in kept}, reverse=True)
    if all(get_method(m).baseline for m, _ in runs) and len(methods) > 1:
        raise LiteLVLMError(f"--budgets: every budget is above this image's {n} visual tokens; nothing to "
                            "compare")
    return runs, skipped


def text_tokens(pipe, prepared, n: int) -> int:
    """Tokens of ``prepared``'s LLM sequence that are not visual tokens (the sequence with all ``n`` of them,
    less ``n``): GLaMM's prompt less its one image placeholder, UniPixel's less its N video-pad tokens."""
    return int(pipe.layout(prepared, n).seq_len) - n


__all__ = ["check_methods", "plan_runs", "text_tokens"]
