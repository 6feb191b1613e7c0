"""One image's referring-segmentation scoring, shared by ``eval-grounding`` and ``importance`` (its oracle
ablation scores as eval-grounding does): the official metric (``eval/referring_seg/infer_and_evaluate.py``
L387-437 of the official code; :func:`mask_stats`, :func:`summarize`) and the rows of one image's sentences
per method and budget (:func:`evaluate_images`, several images' prompts per ``ground_many`` call;
:func:`evaluate_image`, one image's). The protocols are :mod:`analysis.grounding.compute`'s."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd
import torch

from analysis.common.grounding.grounding_runs import Run, image_runs, method_options, official_turns, run_keys
from analysis.common.measures.stage_costs import call_costs, forwards_rerun, tower_rerun
from analysis.common.stats import leaderboard as lb
from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.batched import batch_error


class ScoringArgs(Protocol):
    """The options :func:`evaluate_image` reads (``eval-grounding``'s ``GroundingArgs`` has them all, with the
    method options :func:`~analysis.common.grounding.grounding_runs.method_options` reads)."""

    protocol: str
    seed: int
    max_sentences: int
    answer: str
    clip_text: str
    positions: str
    gt_parts: str | None
    stage_costs: bool           # each whole call timed by stage at batch 1
    time_pruning: bool          # each call timed at batch 1 (each row's ``prune_ms``)


# -- metrics ------------------------------------------------------------------------------------
#: The official metric's epsilons (``infer_and_evaluate.py`` L420 and L433).
GIOU_EPS, CIOU_EPS = 1e-5, 1e-10


def mask_stats(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, float]:
    """(intersection, union, IoU) of a boolean prediction and a target as the official evaluation scores
    them: IoU = I / (U + 1e-5), and 1 for an empty prediction on an empty target. A boolean target is a
    plain mask; an integer target holds part counts (``mask(parts="sum")``), scored as
    ``intersectionAndUnionGPU`` (sejong-rcv/LiteLVLM @5896153 ``tools/utils.py`` L92-104) does with
    ``histc`` over [0, 1]: a pixel counted 2 or more is never target nor intersection, but a predicted
    foreground pixel there still counts in the union."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and target {gt.shape} differ in size")
    if gt.dtype == bool:
        inter = int(np.logical_and(pred, gt).sum())
        union = int(np.logical_or(pred, gt).sum())
    else:
        target = gt == 1
        inter = int(np.logical_and(pred, target).sum())
        union = int(pred.sum()) + int(target.sum()) - inter
    return inter, union, (inter / (union + GIOU_EPS) if union else 1.0)


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """(method, budget, ciou, giou, n) with cIoU = sum(I) / (sum(U) + 1e-10) and gIoU = mean(IoU)."""
    cols = ["method", "budget", "ciou", "giou", "n"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    g = rows.groupby(["method", "budget"], sort=True)
    out = g.agg(intersection=("intersection", "sum"), union=("union", "sum"), giou=("iou", "mean"),
                n=("iou", "size")).reset_index()
    out["ciou"] = out["intersection"] / (out["union"] + CIOU_EPS)
    return out[cols]


def gt_parts(args: ScoringArgs) -> str:
    """How a referent's polygon parts become its target: ``--gt-parts``, else the protocol's default."""
    return args.gt_parts or ("sum" if args.protocol == "official" else "union")


def with_pixels(pipe, image) -> tuple:
    """(``image``, its pixels: the family's CPU part of preparing it, :meth:`pixels`), for a loader thread;
    where they cannot be made, the image again: ``prepare_image`` then raises the error in its place."""
    try:
        return image, pipe.pixels(image)
    except Exception:  # noqa: BLE001 -- raised again where the image is prepared, as without the loader
        return image, image


def image_prompts(pipe, args: ScoringArgs, records: list, image, pairs: list[Run],
                  pixels=None, remake: bool = False) -> tuple[list[Run], list]:
    """(the runs this image keeps, its prompts as (records, prepared, targets)): the image (or its
    ``pixels``, :func:`with_pixels`) prepared once, then one prompt per the protocol's group of sentences;
    with ``remake``, each prompt also holds a function making its prepared input again from the image (the
    whole call ``--stage-costs`` times) and one making the image's forwards again (what a tower method's
    timed call is charged less, :func:`~analysis.common.measures.stage_costs.forwards_rerun`)."""
    image_id = records[0].image_id
    if image.size != (records[0].width, records[0].height):  # else mask_stats fails deep in scoring
        raise LiteLVLMError(f"image {str(records[0].image_path)!r} is {image.width} x {image.height} (width "
                            f"x height) but its annotations are for {records[0].width} x {records[0].height}")
    source = image if pixels is None else pixels
    base = pipe.prepare_image(source, seed=args.seed)
    n = pipe.num_visual(base)
    if args.protocol == "official" and pipe.abilities.sentences_per_prompt != 1:
        picked, turns = official_turns(pipe, records, args.seed, image_id, args.max_sentences)
        groups = [(picked, turns)]
    else:   # one expression per prompt, in the family's own prompt (its default turns)
        groups = [([r], None) for r in records]
    todo = image_runs(pairs, n, image_id)  # a family whose N depends on the image: K > this image's N skipped
    answer = {} if args.answer == "teacher-forced" else {"answer": args.answer}

    def prompt(recs: list, turns, prepared=None):
        """The prompt of ``recs`` on ``prepared`` (None: the image prepared again)."""
        prepared = pipe.prepare_image(source, seed=args.seed) if prepared is None else prepared
        return pipe.with_sentences(prepared, [r.sentence for r in recs], turns, clip_text=args.clip_text,
                                   **answer)

    def forwards():
        """The image's forwards made again, as ``prompt`` makes them."""
        return pipe.prepare_image(source, seed=args.seed)

    prompts = []
    for recs, turns in groups:
        again = (lambda recs=recs, turns=turns: prompt(recs, turns), forwards) if remake else ()
        prompts.append((recs, prompt(recs, turns, base), [r.mask(gt_parts(args)) for r in recs], *again))
    return todo, prompts


def output_rows(pipe, args: ScoringArgs, recs: list, gts: list, method: str, budget, out,
                num_visual: int | None = None, timed: dict | None = None) -> list[dict]:
    """One prompt's rows (one per sentence) for ``method`` at ``budget`` from its ``ground`` output ``out``;
    each row carries its predicted mask as a COCO RLE (``pred_rle``: the leaderboard's loyalty,
    :mod:`analysis.common.stats.leaderboard`) and, where given, the layer-averaged visual tokens of the method
    on the input's ``num_visual`` tokens and the call's ``timed`` columns (its pruning time ``prune_ms``, its
    stage costs; on the prompt's first row, NaN on the others)."""
    masks = out.masks.cpu().numpy()
    board = {} if num_visual is None else {lb.LAYER_AVG: lb.layer_avg_tokens(
        pipe.spec(method), budget, num_visual, int(pipe.language_model.config.num_hidden_layers),
        method_options(args, method, pipe))}
    rows = []
    for turn, (r, gt) in enumerate(zip(recs, gts)):
        inter, union, iou = mask_stats(masks[turn], gt)
        rows.append({"protocol": args.protocol, "method": method, "budget": budget.column,
                     "image_id": r.image_id, "ref_id": r.ref_id, "ann_id": r.ann_id,
                     "sent_id": r.sent_id, "sentence": r.sentence, "turn": turn,
                     "intersection": inter, "union": union, "iou": iou,
                     "pred_area": int(masks[turn].sum()), "gt_area": int((gt == 1).sum()),
                     "seq_len": out.seq_len, "prune_layer": out.prune_layer, **out.short_kept(),
                     **pipe.sample_metrics(masks[turn], gt, r.bbox),
                     **({} if out.generated is None else {"seg_generated": bool(out.seg_hidden.shape[0]),
                                                          "generated_tokens": int(out.generated.numel())}),
                     lb.PRED_RLE: lb.encode_masks(masks[turn][None]), **board,
                     **{k: v if turn == 0 else float("nan") for k, v in (timed or {}).items()}})
    return rows


class BatchComparer(Protocol):
    """What compares a run's first shared batch with batch 1
    (:class:`analysis.common.grounding.grounding_batches.BatchCheck`)."""

    def compare(self, pipe, args: ScoringArgs, run: Run, preps: list, outs: list) -> None:
        """Ground ``preps`` one by one for ``run`` and count what differs from ``outs``."""


def ground_part(pipe, args: ScoringArgs, preps: list, method: str, budget, timed: bool = False
                ) -> tuple[list, dict | None]:
    """(``ground_many``'s outputs for ``preps`` with ``method`` at ``budget``, {``prune_ms``: the call's
    pruning time in ms} when ``timed``, else None: :func:`analysis.common.stats.leaderboard.timed_call`)."""
    options = method_options(args, method, pipe)

    def call():
        return pipe.ground_many(preps, method, budget, positions=args.positions, **options)

    if not timed:
        return call(), None
    outs, ms = lb.timed_call(pipe, pipe.spec(method), call)
    return outs, {lb.PRUNE_MS: ms}


def stage_costs(pipe, args: ScoringArgs, fresh, forwards, prepared, method: str, budget, count: bool) -> dict:
    """The stage columns (:func:`analysis.common.measures.stage_costs.call_costs`) of one whole call of
    ``method`` at ``budget`` on the prompt ``fresh()`` makes again (``count``: counted once more); a method
    running the vision tower itself is charged its own run in place of the preparation's: timed, the image's
    ``forwards()`` made again; counted, a full run on ``prepared``."""
    options = method_options(args, method, pipe)
    spec = pipe.spec(method)
    return call_costs(pipe, lambda: pipe.ground_many([fresh()], method, budget, positions=args.positions,
                                                     **options), count, tower_rerun(pipe, spec, prepared),
                      forwards_rerun(spec, forwards))


@torch.no_grad()
def evaluate_images(pipe, args: ScoringArgs, items: list[tuple], pairs: list[Run], batch_size: int = 1,
                    check: BatchComparer | None = None, first: int | None = None) -> list[list[dict]]:
    """Rows per image of ``items`` ((records, image) or (records, image, its pixels) each; one row per scored
    sentence x method x budget), in
    the same order at every ``batch_size``: prompt by prompt, run by run. Each run (method, budget column)
    grounds its prompts ``batch_size`` per ``ground_many`` call, which runs the prompts that cannot share an
    LLM forward one by one itself. ``args.time_pruning`` times each call at batch 1 (each row's ``prune_ms``),
    ``args.stage_costs`` each whole call by stage at batch 1 (:func:`stage_costs`; counted on the first prompt
    of image ``first``); ``check`` (where given) compares each shared run's first batch with batch 1."""
    costs = batch_size == 1 and args.stage_costs
    # (image index, records, prepared, targets, the image's runs[, the prompt and the image's forwards made
    # again])
    prompts = []
    for i, (records, image, *pixels) in enumerate(items):
        todo, image_prompts_ = image_prompts(pipe, args, records, image, pairs, *pixels, remake=costs)
        prompts.extend((i, recs, prep, gts, todo, *fresh) for recs, prep, gts, *fresh in image_prompts_)
    timed = batch_size == 1 and args.time_pruning
    counted: set[tuple[str, int]] = set()
    done: dict[tuple[int, str, int], list[dict]] = {}
    for method, column in dict.fromkeys(run_keys(pairs)):
        mine = [(j, p, b) for j, p in enumerate(prompts)
                for m, b in p[4] if (m, b.column) == (method, column)]
        checked = check is not None and batch_error(pipe, method, args.answer) is None
        for start in range(0, len(mine), batch_size):
            part = mine[start:start + batch_size]
            budget = part[0][2]   # one budget column: equal budgets, each counted against its own image's N
            outs, ms = ground_part(pipe, args, [p[2] for _, p, _ in part], method, budget, timed)
            if costs:   # batch 1: one prompt, its whole call made again
                _, recs, prep, _, _, again, forwards = part[0][1]
                count = recs[0].image_id == first and (method, column) not in counted
                if count:
                    counted.add((method, column))
                ms = (ms or {}) | stage_costs(pipe, args, again, forwards, prep, method, budget, count)
            if checked and start == 0:
                check.compare(pipe, args, (method, budget), [p[2] for _, p, _ in part], outs)
            for (j, p, b), out in zip(part, outs, strict=True):
                done[(j, method, column)] = output_rows(pipe, args, p[1], p[3], method, b, out,
                                                        pipe.num_visual(p[2]), ms)
    rows: list[list[dict]] = [[] for _ in items]
    for j, (i, _, _, _, todo, *_) in enumerate(prompts):
        for method, budget in todo:
            rows[i].extend(done[(j, method, budget.column)])
    return rows


def evaluate_image(pipe, args: ScoringArgs, records: list, image, pairs: list[Run]) -> list[dict]:
    """Rows (one per scored sentence x method x budget) for one image's records: :func:`evaluate_images` of
    this one image at batch 1."""
    return evaluate_images(pipe, args, [(records, image)], pairs)[0]
