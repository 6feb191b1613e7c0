"""Token retention on a model family's pipeline (``--model`` names an LVLM: a UniPixel or GLaMM model string):
which of the family's visual tokens every method the family runs keeps, at each budget.

Asked of the family contract and the methods' declarations only: the methods a family cannot run are refused
before anything is written (``GroundingPipeline.method_error``); the budgets are planned per image against its
own N (``analysis.common.grounding.grounding_runs.plan``: the baseline keeps all of an image's N,
``Budget.ALL``, written 0; a budget above N is skipped with a warning); what each kept token is comes from the
method's ``Selection`` (``parts``, ``scores``, ``prune_layer``) and its ``Method.stage``, never from its name.
A family that asks one expression per prompt (``sentences_per_prompt == 1``, UniPixel) selects for each
expression alone; otherwise the image's expressions share one prompt, as the CLIP tables do.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from analysis.common.grounding.grounding_runs import NOTHING_FITS, Run, image_runs, plan
from analysis.common.grounding.method_choice import study_methods
from analysis.retention.parts import selection_parts
from litelvlm.budget import Budget
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method

log = logging.getLogger(__name__)


def family_methods(pipe, methods: list[str], args) -> list[str]:
    """``methods`` checked against the family and the model's layers (any it cannot run is an error naming
    why), or, when empty, every method it runs that is no analysis oracle and whose layer options fit."""
    return study_methods(pipe, methods, args, keep=lambda m: not get_method(m).oracle)


def _kept_rows(meta: dict, method: str, budget: Budget, sel, n: int, stage: str) -> pd.DataFrame:
    """One row per kept token of ``sel`` (indices into the family's N visual tokens, negative: no single
    token)."""
    kept = sel.indices.cpu().numpy().astype(np.int64)
    return pd.DataFrame({**meta, "method": method, "budget": budget.column, "position": np.arange(kept.size),
                         "patch": kept, "part": selection_parts(sel, kept, n).astype(str),
                         "stage": stage, "prune_layer": int(sel.prune_layer), "num_visual": n})


def _score_rows(meta: dict, method: str, budget: Budget, sel, grid: tuple[int, int]) -> pd.DataFrame | None:
    """The per-token score the selection ranked by (``Selection.scores``, one per visual token), if it has
    one."""
    n = grid[0] * grid[1]
    if sel.scores is None or sel.scores.numel() != n:
        return None
    patch = np.arange(n)
    return pd.DataFrame(
        {**meta, "method": method, "budget": budget.column, "patch": patch, "row": patch // grid[1],
                         "col": patch % grid[1],
                         "score": sel.scores.detach().float().cpu().numpy().astype(np.float64)})


def _image_tables(pipe, model: str, image_id: str, image, texts: list[str], pairs: list[Run],
                  seed: int) -> tuple[list[pd.DataFrame], list[pd.DataFrame], dict]:
    """(kept-token frames, score frames, this image's N and grid) of one image."""
    base = pipe.prepare_image(image, seed=seed)
    groups = [[t] for t in texts] if pipe.abilities.sentences_per_prompt == 1 else [list(texts)]
    rows, scores, info = [], [], {}
    for group in groups:
        prep = pipe.with_sentences(base, group)
        if not info:
            n, grid = pipe.num_visual(prep), pipe.visual_grid(prep)
            info = {"image_id": image_id, "num_visual": n, "grid_h": grid[0], "grid_w": grid[1]}
            todo = image_runs(pairs, n, image_id)
        meta = {"image_id": image_id, "text": " | ".join(group), "model": str(model)}
        for method, budget in todo:
            with torch.no_grad():
                sel = pipe.ground(prep, method, budget).selection
            rows.append(_kept_rows(meta, method, budget, sel, n, pipe.spec(method).stage.name))
            if (s := _score_rows(meta, method, budget, sel, grid)) is not None:
                scores.append(s)
    return rows, scores, info


def family_tables(pipe, model: str, examples, budgets: list[Budget], methods: list[str],
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """(kept-token table, per-token score table, {image_id: display image in [0, 1]}, metadata) for
    ``examples`` ((image_id, RGB image, texts)) on ``pipe``'s family."""
    pairs = plan(methods, sorted(set(budgets), key=lambda b: b.column, reverse=True), pipe.num_visual_tokens)
    rows, scores, images, visual = [], [], {}, []
    for image_id, image, texts in examples:
        r, s, info = _image_tables(pipe, model, image_id, image, texts, pairs, seed)
        rows += r
        scores += s
        visual.append(info)
        images[image_id] = pipe.visual_window(image).astype(np.float64) / 255.0
    if not rows:
        raise LiteLVLMError(NOTHING_FITS)
    table = pd.concat(rows, ignore_index=True)
    score_cols = ["image_id", "text", "model", "method", "budget", "patch", "row", "col", "score"]
    score_table = pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(columns=score_cols)
    vis = pd.DataFrame(visual)
    meta = {"family": pipe.family, "num_patches": pipe.num_visual_tokens,
            "grid": [int(vis["grid_h"].iloc[0]), int(vis["grid_w"].iloc[0])],
            "grids": {str(r.image_id): [int(r.grid_h), int(r.grid_w)] for r in vis.itertuples()},
            "budgets": sorted({b.column for _, b in pairs}, reverse=True), "methods": list(methods)}
    return table, score_table, images, {**meta, "visual_tokens": vis}
