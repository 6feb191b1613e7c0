"""The position switch on the sample image (``litelvlm positions``): each method at each budget with its kept
tokens at their original RoPE positions (``keep``), renumbered (``renumber``) and under PosPad (``pad``:
original positions, one marker per run of dropped tokens; :mod:`litelvlm.llm.positions_pad`), compared.

Per (method, budget), one row of ``positions.csv``: the method's official rule (``Method.positions``), whether
``keep`` applies (``Method.original_positions``), the cosine and the relative distance between the [SEG]
states of the keep and renumber runs (mean over the prompt's [SEG]s), the IoU between their masks, and each
run's mask IoU with the unpruned model's (all N tokens, where the rules coincide); then whether ``pad``
applies (:func:`litelvlm.method.position_error`), the markers it added, its [SEG] states against ``keep``'s
(cosine, relative distance), its masks' IoU with keep's and with the unpruned model's. A method whose tokens
have no original position gets its ``renumber`` columns only. The pad columns are kept in parts of their own,
so a folder written before them resumes with its keep / renumber rows as they were and makes only the pad
ones.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.common.grounding.grounding_runs import (
    Run,
    clip_record,
    method_options,
    pick_image,
    plan,
    prompt_records,
    run_keys,
)
from analysis.common.grounding.method_choice import study_methods
from analysis.common.grounding.model_setup import quantize_kwargs, study_numerics
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import run_identity
from analysis.common.runs.run_record import run_record
from analysis.common.runs.study import portable_paths
from analysis.positions.options import PositionsArgs, check_args
from litelvlm.budget import Budget
from litelvlm.image_resize import image_resize_kwargs
from litelvlm.method import position_error
from litelvlm.methods import BASELINE, get_method
from litelvlm.registry.families import image_resize_record, load_pipeline
from litelvlm.registry.provenance import mark_weights, weights_banner
from litelvlm.registry.resolved_model import record
from litelvlm.runs.io import write_csv, write_json
from litelvlm.runs.parts import PartStore
from litelvlm.runs.run_folder import RunFolder

log = logging.getLogger(__name__)

COLUMNS = ["method", "budget", "official_rule", "keep_available", "seg_cos_keep_renumber",
           "seg_rel_diff_keep_renumber", "mask_iou_keep_renumber", "mask_iou_keep_none",
           "mask_iou_renumber_none"]
#: the pad run's columns (parts of their own: :func:`pad_part_id`)
PAD_COLUMNS = ["method", "budget", "pad_available", "pad_markers", "seg_cos_pad_keep",
               "seg_rel_diff_pad_keep", "mask_iou_pad_keep", "mask_iou_pad_none"]
#: ``positions.csv``'s columns
TABLE_COLUMNS = COLUMNS + PAD_COLUMNS[2:]


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """IoU of two stacks of boolean masks (1.0 when both are empty)."""
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def compare_runs(a, b) -> tuple[float, float, float]:
    """(mean cosine of the [SEG] states of runs ``a`` and ``b``, ‖a − b‖ / ‖b‖, the IoU of their masks)."""
    x, y = a.seg_hidden.double().cpu(), b.seg_hidden.double().cpu()
    return (float(torch.nn.functional.cosine_similarity(x, y, dim=-1).mean()),
            float((x - y).norm() / y.norm().clamp_min(1e-30)), mask_iou(a.masks.cpu(), b.masks.cpu()))


def compare_rules(keep, renumber, none) -> dict:
    """The row's measurements from the ``keep`` run (None: not applicable), the ``renumber`` run and the
    unpruned run (``GroundingOutput``s)."""
    nan = float("nan")
    row = {"mask_iou_renumber_none": mask_iou(renumber.masks.cpu(), none.masks.cpu())}
    if keep is None:
        return {**row, "seg_cos_keep_renumber": nan, "seg_rel_diff_keep_renumber": nan,
                "mask_iou_keep_renumber": nan, "mask_iou_keep_none": nan}
    cos, rel, iou = compare_runs(keep, renumber)
    return {**row, "seg_cos_keep_renumber": cos, "seg_rel_diff_keep_renumber": rel,
            "mask_iou_keep_renumber": iou, "mask_iou_keep_none": mask_iou(keep.masks.cpu(), none.masks.cpu())}


def compare_pad(pad, keep, none) -> dict:
    """The pad columns from the ``pad`` run (None: not applicable), the ``keep`` run and the unpruned run."""
    if pad is None:
        return {c: float("nan") for c in PAD_COLUMNS[3:]}
    cos, rel, iou = compare_runs(pad, keep)
    return {"pad_markers": int(pad.seq_len) - int(keep.seq_len), "seg_cos_pad_keep": cos,
            "seg_rel_diff_pad_keep": rel, "mask_iou_pad_keep": iou,
            "mask_iou_pad_none": mask_iou(pad.masks.cpu(), none.masks.cpu())}


def part_id(method: str, budget: Budget) -> int:
    """The stable id of the (method, budget) row in ``OUT/parts`` (runs of any plan share one folder)."""
    return zlib.crc32(f"{method}@{budget.column}".encode())


def pad_part_id(method: str, budget: Budget) -> int:
    """The stable id of the (method, budget) pad columns in ``OUT/parts`` (a part of its own)."""
    return zlib.crc32(f"{method}@{budget.column}#pad".encode())


def positions_rows(pipe, prep, method: str, budget: Budget, none, args, main: bool = True,
                   pad: bool = True) -> tuple[dict | None, dict | None]:
    """(the row of (method, budget) (:data:`COLUMNS`): its ``keep`` and ``renumber`` runs against each other
    and against ``none``, the unpruned run; its pad columns (:data:`PAD_COLUMNS`): the ``pad`` run against
    ``keep`` and ``none``), each made only when asked (``main``, ``pad``; else None)."""
    spec = pipe.spec(method)
    opts = method_options(args, method, pipe)
    pad_ok = position_error(method, spec, "pad") is None
    rules = ["keep"] if spec.original_positions and (main or (pad and pad_ok)) else []
    rules += (["renumber"] if main else []) + (["pad"] if pad and pad_ok else [])
    runs = {rule: pipe.ground(prep, method, budget, positions=rule, **opts) for rule in rules}
    key = {"method": method, "budget": budget.column}
    row = None if not main else {**key, "official_rule": pipe.official_rule(method),
                                 "keep_available": spec.original_positions,
                                 **compare_rules(runs.get("keep"), runs["renumber"], none)}
    pads = None if not pad else {**key, "pad_available": pad_ok,
                                 **compare_pad(runs.get("pad"), runs.get("keep"), none)}
    return row, pads


def positions_table(pipe, prep, pairs: list[Run], args, store: PartStore) -> pd.DataFrame:
    """One row per (method, budget) (:data:`TABLE_COLUMNS`), in ``pairs``' order; each row's keep / renumber
    columns and its pad columns are kept in ``store`` as they finish, and those already there are not made
    again (a stopped run resumes; a folder written before the pad columns makes only them)."""
    done = store.done()
    todo = [p for p in pairs if part_id(*p) not in done or pad_part_id(*p) not in done]
    if todo:
        none = pipe.ground(prep, BASELINE, Budget.ALL)
        for method, budget in tqdm(todo, desc="positions"):
            main, pad = part_id(method, budget) not in done, pad_part_id(method, budget) not in done
            row, pads = positions_rows(pipe, prep, method, budget, none, args, main, pad)
            if row is not None:
                store.write([part_id(method, budget)], pd.DataFrame([row], columns=COLUMNS))
            if pads is not None:
                store.write([pad_part_id(method, budget)], pd.DataFrame([pads], columns=PAD_COLUMNS))
    frames = [f for f in store.frames() if not f.empty]
    keyed = [pd.concat([f for f in frames if kind in f.columns], ignore_index=True)
             .drop_duplicates(["method", "budget"]).set_index(["method", "budget"])
             for kind in ("official_rule", "pad_available")]
    rows = keyed[0].join(keyed[1].drop(columns=[c for c in keyed[1].columns if c in keyed[0].columns]))
    return rows.loc[run_keys(pairs)].reset_index()[TABLE_COLUMNS]


def run_positions(a: PositionsArgs, checked: tuple | None = None, screen: Screen = Screen()) -> int:
    """``litelvlm positions`` with checked options (``checked``: :func:`check_args`' result, handed down by
    :func:`analysis.positions.command.run`; None: checked here): the table, then its head on ``screen``."""
    given, budgets = checked if checked is not None else check_args(a)
    out = Path(a.out)
    recs, image = pick_image(a)
    pipe = load_pipeline(a.model, clip=a.clip, sam=a.sam, device=a.device,
                         dtype=None if a.dtype == "auto" else getattr(torch, a.dtype),
                         numerics=study_numerics(a, "official"), **image_resize_kwargs(a.image_resize),
                         **quantize_kwargs(a))
    # before anything is written: a named method the family refuses or whose layer the model lacks
    methods = study_methods(pipe, given, a, keep=lambda m: not get_method(m).oracle)
    # methods and budgets are not part of the run's identity: a re-run with others adds their rows
    config = {k: v for k, v in record(a).items() if k not in ("out", "device", "methods", "budgets")}
    # recorded for a family that has one
    config.update(image_resize_record(config.pop("image_resize"), a.model))
    config.update(image_id=recs[0].image_id, paths=portable_paths(record(a), out),
                  model_dtype=str(pipe.dtype).replace("torch.", ""), **clip_record(pipe),
                  numerics=pipe.numerics.to_dict(), run=run_record(screen.argv),
                  **run_identity("positions", a.model))
    with torch.no_grad(), RunFolder(out, command="positions") as folder:
        folder.resume(config)
        picked, turns = prompt_records(pipe, recs, a.seed, a.max_sentences)
        prep = pipe.prepare(image, [r.sentence for r in picked], turns, seed=a.seed)
        pairs = plan(methods, budgets, pipe.num_visual(prep))
        write_json(out / "config.json", config)  # staged: it reaches the folder with the table
        table = mark_weights(positions_table(pipe, prep, pairs, a, PartStore(out)), a.model, a.clip)
        write_csv(out / "positions.csv", table)
    with pd.option_context("display.width", 160, "display.max_rows", 80):
        shown = table.drop(columns=["weights"]).to_string(index=False, float_format=lambda x: f"{x:.4f}")
        screen.show_table(shown, out / "positions.csv", "[SEG] states and masks per method, budget and "
                          "position rule")
    print(f"{len(table)} rows -> {out / 'positions.csv'}")
    screen.headline("positions", positions_headline(table), weights_banner(a.model, a.clip))
    return 0


def positions_headline(table: pd.DataFrame) -> list[str]:
    """The answer in a few lines: where the position rule (kept tokens at their original RoPE positions, or
    renumbered) changes the [SEG] states most and least, each rule's mask IoU with the unpruned model, and pad
    against keep; one image, so no interval."""
    both = table.dropna(subset=["seg_rel_diff_keep_renumber"])
    lines = [f"keep vs renumber on one image (n = 1 image, no interval), {len(both)} of {len(table)} "
             "method x budget rows with both rules:"]
    if both.empty:
        return lines + ["  no method here has original positions to keep: every row is renumbered"]

    def said(r) -> str:
        return (f"{r['method']} K={r['budget']} ([SEG] relative difference "
                f"{r['seg_rel_diff_keep_renumber']:.4f}, mask IoU between the rules "
                f"{r['mask_iou_keep_renumber']:.3f})")

    most = both.loc[both["seg_rel_diff_keep_renumber"].idxmax()]
    least = both.loc[both["seg_rel_diff_keep_renumber"].idxmin()]
    lines.append(f"  largest change {said(most)}; smallest {said(least)}")
    keep, renumber = both["mask_iou_keep_none"].mean(), both["mask_iou_renumber_none"].mean()
    lines.append(f"  mask IoU with the unpruned model, mean over those rows: keep {keep:.3f}, renumber "
                 f"{renumber:.3f}")
    return lines + [pad_headline(table)]


def pad_headline(table: pd.DataFrame) -> str:
    """The headline's pad line: the pad runs against keep (mean [SEG] cosine, each rule's mask IoU with the
    unpruned model over the rows with a pad run)."""
    pad = table.dropna(subset=["seg_cos_pad_keep"])
    if pad.empty:
        return ("  pad (PosPad): no row here runs it (it needs single visual tokens dropped at the LLM "
                "input)")
    return (f"  pad (PosPad) vs keep, {len(pad)} rows: [SEG] cosine {pad['seg_cos_pad_keep'].mean():.4f}; "
            f"mask IoU with the unpruned model: keep {pad['mask_iou_keep_none'].mean():.3f}, pad "
            f"{pad['mask_iou_pad_none'].mean():.3f}")
