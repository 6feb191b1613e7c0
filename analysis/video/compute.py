"""``litelvlm eval-video``: VideoGLaMM with per-frame pruning on a Ref-DAVIS-layout folder, J / F / J&F per method
and per-frame budget.

Per video, each clip's towers and SAM 2 features and its CLIP trace are computed once; then for the unpruned
baseline (``none``, 576 tokens a frame) and every (method, budget), every expression of the chosen annotator sets
is segmented (a CLIP-side method: ``litelvlm.videoglamm.referdavis.expression_masks`` with the pruned visual input;
an LLM-side method: the ``videoglamm`` family's ``ground`` on each clip, :func:`family_masks`) and scored:

* ``expressions.parquet``: one row per expression: J and F as frame means against the expression's own object
  (MeViS's per-expression protocol, ``litelvlm.video.metrics.mevis_scores``);
* ``summary.csv``: per (method, budget), the DAVIS 2017 unsupervised scores of each annotator set as
  ``eval_referdavis_metrics.py`` computes them (the objects' masks of a set as label maps, Hungarian matching,
  J-Mean and F-Mean over all objects of all videos), and J, F, J&F averaged over the chosen sets (VideoGLaMM
  prints the four sets apart; the mean is this table's single number), each with its 95% bootstrap interval over
  videos (``J_lo``, ``J_hi``, ...); ``comparisons.csv`` and ``claims.csv`` (:mod:`analysis.video.statistics`).

One part per (video, method, budget) in ``OUT/parts`` (a stopped run resumes; other methods, budgets or a larger
``--limit-videos`` add rows). Seeded and deterministic.
"""

from __future__ import annotations

import logging
import tempfile
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analysis.common.degenerate import warn_if_degenerate
from analysis.common.identity import run_identity
from analysis.common.parts import PartStore
from analysis.common.run_folder import RunFolder
from analysis.common.study import portable_paths, run_record
from analysis.video.options import NUM_PATCHES, VideoArgs, allocation_weights, check_args, is_unipixel
from analysis.video.statistics import add_statistics
from litelvlm.errors import LiteLVLMError
from litelvlm.io import write_csv, write_json, write_parquet
from litelvlm.methods import BASELINE
from litelvlm.provenance import mark_weights, weights_banner
from litelvlm.video import metrics
from litelvlm.video.checks import check_videos
from litelvlm.video.datasets import load_ref_davis
from litelvlm.videoglamm import pruning as vp
from litelvlm.videoglamm.config import NUM_FRAMES
from litelvlm.videoglamm.referdavis import (
    annotator_expressions,
    by_video,
    expression_masks,
    ground_truth,
    label_maps,
)

log = logging.getLogger(__name__)

EXPRESSION_COLUMNS = ["video", "anno_set", "exp_id", "obj_id", "sentence", "method", "budget", "context_tokens",
                      "J", "F", "J&F", "llm_visual_tokens"]
OBJECT_COLUMNS = ["video", "anno_set", "object", "method", "budget", "J", "F"]
SUMMARY_COLUMNS = ["method", "budget", "context_tokens", "J", "F", "J&F", "videos", "objects", "expressions",
                   "llm_visual_tokens"]
NOTE = ("the paper's video numbers need VideoGLaMM's RVOS fine-tuned weights, which are not public; numbers here "
        "come from the weights named in the weights column")


def part_id(video: str, method: str, budget: int) -> int:
    """The stable id of one (video, method, budget) part."""
    return zlib.crc32(f"{video}|{method}@{budget}".encode())


class Runner:
    """One loaded VideoGLaMM with its paired CLIP, and the per-clip caches of the video being scored."""

    def __init__(self, a: VideoArgs) -> None:
        from litelvlm.clip import load_clip
        from litelvlm.videoglamm.checkpoint import load_videoglamm

        dtype = None if a.dtype == "auto" else getattr(torch, a.dtype)
        self.model, self.tokenizer, _ = load_videoglamm(a.model, device=a.device, dtype=dtype)
        self.clip_name = a.clip or vp.default_clip(a.model)
        self.clip = vp.pair_clip(self.model, load_clip(self.clip_name, "hf", device=a.device, dtype=self.model.dtype))
        from litelvlm.videoglamm.family import VideoGLaMMPipeline

        #: the same model on the family contract: the LLM-side methods run through its ``ground``
        self.pipe = VideoGLaMMPipeline(self.model, self.tokenizer, name=a.model, clip=self.clip,
                                       clip_text=a.clip_text, arrangement=a.arrangement)
        self.args = a
        self.prepared: dict = {}
        self.traces: dict[int, object] = {}
        self.budgets: list[list[int]] = []   # the frames' budgets of each pruned clip, in order

    def allocation(self, trace, text, method: str, budget: int) -> list[int] | None:
        """The 16 frames' budgets of ``--allocation`` (None: ``uniform``, K on every frame; the baseline keeps all)."""
        from litelvlm.videoglamm import allocation as va

        rule = allocation_weights(self.args.allocation)
        if rule == "uniform" or method == BASELINE:
            return None
        weights = va.relevance_weights(trace, text, va.clip_logit_scale(self.clip)) if rule == "relevance" else rule
        return va.frame_allocation(weights, budget, self.args.arrangement)

    def new_video(self) -> None:
        """Drop the previous video's clips."""
        self.prepared.clear()
        self.traces.clear()

    def visual_fn(self, method: str, budget: int, tokens: list[int]):
        """``expression_masks``' ``visual`` callable for (method, budget); appends each clip's context tokens."""
        a = self.args

        def visual(prepared, rec):
            trace = self.traces.get(id(prepared))
            if trace is None:
                trace = self.traces[id(prepared)] = vp.trace_context(self.model, self.clip, prepared)
            text = vp.clip_text_trace(self.clip, rec.sentence, a.clip_text)
            allocation = self.allocation(trace, text, method, budget)
            out = vp.prune_clip(self.model, prepared, trace, text, method, None if allocation else budget,
                                allocation=allocation, arrangement=a.arrangement, seed=a.seed)
            tokens.append(sum(out.context_tokens))
            self.budgets.append(out.budgets)
            return out.visual
        return visual

    def expression(self, rec, method: str, budget: int) -> tuple[torch.Tensor, int | None, dict]:
        """((frames, H, W) masks, CLIP context tokens per frame (None: an LLM-side method), the row's extra columns)
        of one expression; an LLM-side method runs through the family's ``ground``."""
        if method != BASELINE and self.pipe.spec(method).stage != "clip":
            return family_masks(self, rec, method, budget), None, {"llm_visual_tokens": self.pipe.llm_budget(budget)}
        tokens: list[int] = []
        self.budgets.clear()
        masks = expression_masks(self.model, self.tokenizer, rec, self.prepared,
                                 visual=self.visual_fn(method, budget, tokens),
                                 sam2_video_branch=self.args.sam2_video_branch)
        extra = {"llm_visual_tokens": tokens[0] + self.pipe.num_visual_tokens - NUM_FRAMES * vp.POOLED ** 2}
        if self.args.allocation != "uniform":  # what the allocation gave each frame (first clip)
            extra.update(frame_budgets=",".join(map(str, self.budgets[0])), kept_tokens=sum(self.budgets[0]),
                         llm_context_tokens=tokens[0])
        return masks, tokens[0] // NUM_FRAMES, extra


def make_runner(a: VideoArgs):
    """VideoGLaMM's runner, or UniPixel's video path for a UniPixel model (:mod:`analysis.video.unipixel`)."""
    if is_unipixel(a.model):
        from analysis.video.unipixel import UniPixelRunner

        return UniPixelRunner(a, NUM_PATCHES)
    return Runner(a)


def expression_row(rec, anno: int, masks: torch.Tensor, method: str, budget: int, tokens: int | None,
                   llm_tokens: int | None = None) -> dict:
    """The per-expression row: J and F frame means against the expression's own object; ``tokens``: LLM context
    tokens a frame (None: an LLM-side method, which keeps ``llm_tokens`` of the whole visual sequence)."""
    gt = np.stack([rec.mask(i) for i in range(len(rec.frames))])
    j, f = metrics.mevis_scores(gt, masks.numpy() > 0.5)
    return {"video": rec.video, "anno_set": anno, "exp_id": rec.exp_id, "obj_id": ",".join(str(o) for o in rec.obj_ids),
            "sentence": rec.sentence, "method": method, "budget": budget, "context_tokens": tokens,
            "J": j, "F": f, "J&F": (j + f) / 2, "llm_visual_tokens": llm_tokens}


def family_masks(run: Runner, rec, method: str, budget: int) -> torch.Tensor:
    """(T, H, W) float 0/1 masks of an LLM-side ``method`` over the expression's video, clip by clip (clips of at
    most 64 frames, as ``expression_masks``), each through the family's ``ground`` at the per-frame ``budget``."""
    from litelvlm.videoglamm.family import VideoGLaMMInput
    from litelvlm.videoglamm.pipeline import prepare_clip
    from litelvlm.videoglamm.referdavis import clip_ranges

    out = []
    for frames in clip_ranges(len(rec.frames)):
        key = (rec.video, frames.start)
        if key not in run.prepared:
            run.prepared[key] = prepare_clip(run.model, [np.asarray(rec.frame(i)) for i in frames])
        clip = VideoGLaMMInput(run.prepared[key], [], torch.empty(0, dtype=torch.long), seed=run.args.seed)
        masks = run.pipe.ground(run.pipe.with_sentences(clip, [rec.sentence]), method, budget).masks[0]
        out.append(masks.float().cpu())
    return torch.cat(out, dim=0)


@torch.no_grad()
def video_part(run: Runner, records: list, sets: list[int], method: str, budget: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(expression rows, object rows) of one video for (method, budget)."""
    gt, void = metrics.gt_objects(ground_truth(records[0]))
    rows, objects = [], []
    for anno in sets:
        recs = annotator_expressions(records, anno)
        masks = []
        for rec in recs:
            m, tokens, extra = run.expression(rec, method, budget)
            masks.append(m)
            rows.append({**expression_row(rec, anno, m, method, budget, tokens, None), **extra})
        j, f = metrics.sequence_scores(gt, metrics.pred_objects(label_maps(torch.stack(masks))), void)
        objects += [{"video": records[0].video, "anno_set": anno, "object": f"{records[0].video}_{k + 1}",
                     "method": method, "budget": budget, "J": float(np.mean(j[k])), "F": float(np.mean(f[k]))}
                    for k in range(len(j))]
    extra = ["frame_budgets", "kept_tokens", "llm_context_tokens"] if run.args.allocation != "uniform" else []
    frame = pd.DataFrame(rows, columns=EXPRESSION_COLUMNS + extra).astype({"context_tokens": "Int64"})
    return frame, pd.DataFrame(objects, columns=OBJECT_COLUMNS)


def summary_table(expr: pd.DataFrame, objects: pd.DataFrame, pairs: list[tuple[str, int]]) -> pd.DataFrame:
    """One row per (method, budget) in ``pairs``' order: the sets' DAVIS J-Mean / F-Mean (means over objects),
    averaged over the sets; J&F the mean of the sets' (J + F) / 2."""
    out = []
    for method, budget in pairs:
        o = objects[(objects.method == method) & (objects.budget == budget)]
        e = expr[(expr.method == method) & (expr.budget == budget)]
        per_set = [(float(np.mean(g.J.tolist())), float(np.mean(g.F.tolist()))) for _, g in o.groupby("anno_set")]
        j = float(np.mean([s[0] for s in per_set]))
        f = float(np.mean([s[1] for s in per_set]))
        tokens = e.context_tokens.iloc[0]
        out.append({"method": method, "budget": budget, "context_tokens": None if pd.isna(tokens) else int(tokens),
                    "J": j, "F": f, "J&F": float(np.mean([(a + b) / 2 for a, b in per_set])),
                    "videos": e.video.nunique(), "objects": len(o), "expressions": len(e),
                    "llm_visual_tokens": int(e.llm_visual_tokens.iloc[0])})
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS).astype({"context_tokens": "Int64"})


def compute(run: Runner, groups: dict, pairs: list[tuple[str, int]], sets: list[int], store: PartStore) -> None:
    """Every (video, method, budget) part not in ``store`` yet, video by video (the clips' work done once)."""
    done = store.done()
    for video, records in groups.items():
        todo = [p for p in pairs if part_id(video, *p) not in done]
        run.new_video()
        for method, budget in todo:
            log.info("%s: %s @ %d", video, method, budget)
            rows, objects = video_part(run, records, sets, method, budget)
            store.write([part_id(video, method, budget)], rows, tables={"objects": objects})


def collect(store: PartStore, groups: dict, pairs: list[tuple[str, int]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan's expression and object rows from the finished parts, in video and plan order."""
    expr = pd.concat(store.frames(), ignore_index=True)
    objects = pd.concat(store.frames("objects"), ignore_index=True)
    keep = {(v, m, int(b)) for v in groups for m, b in pairs}
    expr = expr[[(v, m, int(b)) in keep for v, m, b in zip(expr.video, expr.method, expr.budget, strict=True)]]
    objects = objects[[(v, m, int(b)) in keep for v, m, b in
                       zip(objects.video, objects.method, objects.budget, strict=True)]]
    order = {p: i for i, p in enumerate(pairs)}
    vorder = {v: i for i, v in enumerate(groups)}

    def sort(df, cols):
        key = df.apply(lambda r: (vorder[r.video], order[(r.method, int(r.budget))]), axis=1)
        return df.assign(_k=key).sort_values(["_k", *cols], kind="stable").drop(columns="_k").reset_index(drop=True)
    return sort(expr, ["anno_set"]), sort(objects, ["anno_set"])


def dataset(a: VideoArgs, tmp: str) -> tuple[Path, dict]:
    """The data folder (``--video-dir`` or the synthetic set written under ``tmp``) and the videos the run uses, in
    order, every frame and annotation of them checked (:func:`~litelvlm.video.checks.check_videos`)."""
    from litelvlm.video.synthetic import write_synthetic_videos

    root = Path(a.video_dir) if a.video_dir else write_synthetic_videos(
        Path(tmp) / "synthetic", videos=a.synthetic_videos, frames=a.synthetic_frames, size=(64, 48),
        seed=a.synthetic_seed)
    groups = by_video(load_ref_davis(root, a.split))
    if not groups:
        raise LiteLVLMError(f"{root} has no video in split {a.split!r}")
    groups = dict(list(groups.items())[:a.limit_videos])
    for video, records in groups.items():   # annotator_expressions reads four expressions per object
        if len(records) % 4:
            raise LiteLVLMError(f"video {video!r} of {str(root)!r} has {len(records)} expressions, not four per "
                                "object (Ref-DAVIS's four annotator sets)")
    check_videos(rec for records in groups.values() for rec in records)   # every file the run reads, up front
    return root, groups


def family_error(given: list[str], budgets: list[int]) -> None:
    """Refuse the given methods the ``videoglamm`` family cannot run (its ``method_error``, asked of the class)."""
    from litelvlm.videoglamm.family import VideoGLaMMPipeline

    if errors := [why for m in given if (why := VideoGLaMMPipeline.method_error(VideoGLaMMPipeline, m))]:
        raise LiteLVLMError("; ".join(errors))


def plan_methods(pipe, given: list[str], budgets: list[int]) -> list[str]:
    """The methods to run: ``given``, or every per-frame CLIP-side method (VisPruner first) then every LLM-side one
    the family runs (oracles aside); an LLM-side method with no token schedule for this model's decoder (e.g.
    SparseVLM's three stages in a 2-layer model) is refused when given and left out, with a warning, by default."""
    from litelvlm.pruning import available_methods

    llm = [m for m in available_methods() if pipe.method_error(m) is None and pipe.spec(m).stage != "clip"
           and not pipe.spec(m).baseline and not pipe.spec(m).oracle]
    methods = given or vp.per_frame_methods() + llm
    layers, n = len(pipe.language_model.layers), pipe.num_visual_tokens
    bad = {}
    for m in methods:
        spec = pipe.spec(m)
        try:
            if spec.stage != "clip":
                [spec.schedule(pipe.llm_budget(k), n, layers) for k in budgets]
        except LiteLVLMError as e:
            bad[m] = f"{m}: {e}"
    if given and bad:
        raise LiteLVLMError("; ".join(bad.values()))
    for why in bad.values():
        log.warning("left out: %s", why)
    return [m for m in methods if m not in bad]


def run_video(a: VideoArgs) -> int:
    """``litelvlm eval-video`` with checked options: the parts, then the tables and the summary on screen."""
    given, budgets, sets = check_args(a)
    out = Path(a.out)
    unipixel = is_unipixel(a.model)
    if unipixel:
        from analysis.video.unipixel import NOTE as note
    else:
        note = NOTE
        family_error(given, budgets)   # a method the family cannot run: refused before anything is loaded or written
    skip = ("out", "device", "methods", "budgets", "limit_videos", "sam2_video_branch")
    skip += ("allocation",) if a.allocation == "uniform" else ()
    config = {k: v for k, v in asdict(a).items() if k not in skip}
    if a.sam2_video_branch:   # non-default options only: folders written before them stay resumable
        config["sam2_video_branch"] = True
    config.update(paths=portable_paths(asdict(a), out), run=run_record(), note=note, **run_identity("video", a.model))
    with tempfile.TemporaryDirectory() as tmp:
        _, groups = dataset(a, tmp)
        run = make_runner(a)
        if unipixel:
            from analysis.video.unipixel import offered_methods

            methods = given or offered_methods()
        else:
            methods = plan_methods(run.pipe, given, budgets)
        pairs = [(BASELINE, NUM_PATCHES)] + [(m, k) for m in methods for k in budgets]
        config.update(clip=run.clip_name, model_dtype=str(run.model.dtype).replace("torch.", ""))
        if unipixel:
            config.update(run.config())
        with RunFolder(out) as folder:
            folder.resume(config, ignore=("n_boot",))   # --n-boot changes the tables, not the parts
            write_json(out / "config.json", config)   # staged: it reaches the folder with the tables
            store = PartStore(out)
            compute(run, groups, pairs, sets, store)
            expr, objects = collect(store, groups, pairs)
            summary = summary_table(expr, objects, pairs)
            if unipixel:   # UniPixel's own score (eval_seg.py) beside the DAVIS table
                from analysis.video.unipixel import own_summary

                summary = own_summary(summary, expr)
            summary = add_statistics(out, summary, expr, objects, a.n_boot, a.seed, (a.model, run.clip_name))
            summary = mark_weights(summary, a.model, run.clip_name)
            write_parquet(out / "expressions.parquet", mark_weights(expr, a.model, run.clip_name))
            write_csv(out / "summary.csv", summary)
    with pd.option_context("display.width", 160, "display.max_rows", 80):
        print(summary.drop(columns=["weights"]).to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(f"{len(summary)} rows -> {out / 'summary.csv'}; {len(expr)} expressions -> {out / 'expressions.parquet'}")
    warn_if_degenerate(log, "eval-video", len(expr) > 0 and not (expr["J"].any() or expr["F"].any()), a.model, out,
                       "every J and F is 0 (every mask empty, or missing its object)")
    if banner := weights_banner(a.model, run.clip_name):
        print(banner)
    print(f"Note: {note}.")
    return 0
