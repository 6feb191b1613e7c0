"""``litelvlm eval-video``: a family's video path with per-frame budgets on a Ref-DAVIS-layout folder, J / F /
J&F per method and per-frame budget.

Details: docs/video.md (``analysis.video.compute``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import zlib
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.common.grounding.grounding_runs import Run, plan, run_keys
from analysis.common.options.prefill_args import prefill_record
from analysis.common.presentation.caveats import null_results
from analysis.common.presentation.screen import table_notes
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import run_identity
from analysis.common.runs.run_record import run_record
from analysis.common.runs.shards import Shards
from analysis.common.runs.study import llm_attn_record, portable_paths
from analysis.common.stats.leaderboard import encode_masks
from analysis.video import batches, protocols, statistics
from analysis.video.headline import announce
from analysis.video.options import NUM_PATCHES, VideoArgs, check_args
from analysis.video.statistics import add_statistics, summary_text, write_unit_tables
from litelvlm.budget import Budget
from litelvlm.data.prefetch import prefetched
from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.captured_paths import install_paths
from litelvlm.methods import BASELINE
from litelvlm.registry.families import image_resize_record, video_eval
from litelvlm.registry.provenance import mark_weights, weights_banner
from litelvlm.registry.resolved_model import record
from litelvlm.runs.io import write_csv, write_json, write_parquet, write_text
from litelvlm.runs.parts import PartStore
from litelvlm.video import metrics
from litelvlm.video.checks import check_videos
from litelvlm.video.datasets import REF_DAVIS, load_video_expressions
from litelvlm.video.decoded import decode_video
from litelvlm.video.ref_davis import annotator_expressions, by_video, ground_truth, label_maps
from litelvlm.video.runner import VideoRunner
from litelvlm.video.synthetic import write_synthetic_videos

log = logging.getLogger(__name__)

EXPRESSION_COLUMNS = ["video", "anno_set", "exp_id", "obj_id", "sentence", "method", "budget",
                      "context_tokens", "J", "F", "J&F", "llm_visual_tokens"]
SUMMARY_COLUMNS = ["method", "budget", "context_tokens", "J", "F", "J&F", "videos", "objects", "expressions",
                   "llm_visual_tokens"]


def part_id(video: str, method: str, budget: Budget) -> int:
    """The stable id of one (video, method, budget) part (the budget as its table column holds it)."""
    return zlib.crc32(f"{video}|{method}@{budget.column}".encode())


def expression_row(rec, anno: int, masks: torch.Tensor, method: str, budget: int, tokens: int | None,
                   llm_tokens: int | None = None) -> dict:
    """The per-expression row: J and F frame means against the expression's own object; ``tokens``: LLM
    context tokens a frame (None: an LLM-side method, which keeps ``llm_tokens`` of the whole visual
    sequence)."""
    gt = np.stack([rec.mask(i) for i in range(len(rec.frames))])
    j, f = metrics.mevis_scores(gt, masks.numpy() > 0.5)
    return {"video": rec.video, "anno_set": anno, "exp_id": rec.exp_id,
            "obj_id": ",".join(str(o) for o in rec.obj_ids),
            "sentence": rec.sentence, "method": method, "budget": budget, "context_tokens": tokens,
            "J": j, "F": f, "J&F": (j + f) / 2, "llm_visual_tokens": llm_tokens}


@torch.no_grad()
def video_part(run: VideoRunner, records: list, sets: list[int], method: str, budget: Budget,
               batch_size: int = 1, check: batches.VideoBatchCheck | None = None
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(expression rows, object rows, mask rows) of one video for (method, per-frame budget): the runner gets
    the Budget, the rows its column; the sets' expressions grounded in order, up to ``batch_size`` per LLM
    forward (:mod:`.batches`); the mask rows (:data:`.protocols.MASK_COLUMNS`, COCO RLEs) give the
    leaderboard's loyalty (:mod:`analysis.common.stats.leaderboard`)."""
    gt, void = metrics.gt_objects(ground_truth(records[0]))
    rows, objects, mask_rows = [], [], []
    todo = [rec for anno in sets for rec in annotator_expressions(records, anno)]
    results = iter(batches.expression_results(run, todo, method, budget, batch_size, check))
    for anno in sets:
        recs = annotator_expressions(records, anno)
        masks = []
        for rec in recs:
            m, tokens, extra = next(results)
            masks.append(m)
            rows.append({**expression_row(rec, anno, m, method, budget.column, tokens, None), **extra})
            mask_rows.append({"video": rec.video, "exp_id": rec.exp_id, "method": method,
                              "budget": budget.column, "frames": json.dumps(list(rec.frames)),
                              "rles": encode_masks(m.numpy() > 0.5)})
        j, f = metrics.sequence_scores(gt, metrics.pred_objects(label_maps(torch.stack(masks))), void)
        objects += [{"video": records[0].video, "anno_set": anno, "object": f"{records[0].video}_{k + 1}",
                     "method": method, "budget": budget.column, "J": float(np.mean(j[k])),
                     "F": float(np.mean(f[k]))}
                    for k in range(len(j))]
    frame = pd.DataFrame(rows, columns=EXPRESSION_COLUMNS + list(run.extra_columns)).astype(
        {"context_tokens": "Int64"})
    return frame, pd.DataFrame(objects, columns=protocols.OBJECT_COLUMNS), pd.DataFrame(mask_rows,
                                                                              columns=protocols.MASK_COLUMNS)


def summary_table(expr: pd.DataFrame, objects: pd.DataFrame, pairs: list[tuple[str, int]]) -> pd.DataFrame:
    """One row per (method, budget) in ``pairs``' order: the sets' DAVIS J-Mean / F-Mean (means over objects),
    averaged over the sets; J&F the mean of the sets' (J + F) / 2."""
    out = []
    for method, budget in pairs:
        o = objects[(objects.method == method) & (objects.budget == budget)]
        e = expr[(expr.method == method) & (expr.budget == budget)]
        per_set = [(float(np.mean(g.J.tolist())), float(np.mean(g.F.tolist()))) for _,
                   g in o.groupby("anno_set")]
        j = float(np.mean([s[0] for s in per_set]))
        f = float(np.mean([s[1] for s in per_set]))
        tokens = e.context_tokens.iloc[0]
        out.append(
            {"method": method, "budget": budget, "context_tokens": None if pd.isna(tokens) else int(tokens),
                    "J": j, "F": f, "J&F": float(np.mean([(a + b) / 2 for a, b in per_set])),
                    "videos": e.video.nunique(), "objects": len(o), "expressions": len(e),
                    "llm_visual_tokens": int(e.llm_visual_tokens.iloc[0])})
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS).astype({"context_tokens": "Int64"})


def compute(run: VideoRunner, groups: dict, runs: list[Run], sets: list[int], store: PartStore,
            dataset: str = REF_DAVIS, batch_size: int = 1,
            check: batches.VideoBatchCheck | None = None) -> None:
    """Every (video, method, budget) part of ``runs`` not in ``store`` yet, video by video (the clips' work
    done once); Ref-DAVIS-17 by annotator sets, the other datasets expression by expression
    (:mod:`.protocols`), up to ``batch_size`` expressions of a video per LLM forward (:mod:`.batches`)."""
    done = store.done()
    left = {video: [p for p in runs if part_id(video, *p) not in done] for video in groups}
    # the next video's frames decoded on a worker thread while the model works on this one (a finished
    # video is not decoded); an unreadable frame raises when its video is reached, as without the loader
    ahead = prefetched(list(groups), lambda v: decode_video(groups[v][0]) if left[v] else None, workers=1,
                       ahead=1)
    # a part: video x run; closed (its line ended) before an error is printed
    with closing(ahead), tqdm(total=sum(map(len, left.values())), desc="eval-video", unit="part") as bar:
        for video, decoded, err in ahead:
            if err is not None:
                raise err
            records = groups[video]
            run.new_video(decoded)
            for method, budget in left[video]:
                log.info("%s: %s @ %s", video, method, budget)
                bar.set_postfix_str(f"{video} {method}@{budget}")
                tables = video_work(run, records, sets, dataset, method, budget, batch_size, check)
                store.write([part_id(video, method, budget)], tables.pop("rows"), tables=tables)
                bar.update()


def collect(store: PartStore, groups: dict,
            pairs: list[tuple[str, int]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan's expression and object rows from the finished parts, in video and plan order."""
    expr = pd.concat(store.frames(), ignore_index=True)
    objects = pd.concat(store.frames("objects") or [pd.DataFrame(columns=protocols.OBJECT_COLUMNS)],
                        ignore_index=True)
    keep = {(v, m, int(b)) for v in groups for m, b in pairs}
    expr = expr[
        [(v, m, int(b)) in keep for v, m, b in zip(expr.video, expr.method, expr.budget, strict=True)]]
    objects = objects[[(v, m, int(b)) in keep for v, m, b in
                       zip(objects.video, objects.method, objects.budget, strict=True)]]
    order = {p: i for i, p in enumerate(pairs)}
    vorder = {v: i for i, v in enumerate(groups)}

    def sort(df, cols):
        if df.empty:   # a split scored by its server has no object rows
            return df.reset_index(drop=True)
        key = df.apply(lambda r: (vorder[r.video], order[(r.method, int(r.budget))]), axis=1)
        return df.assign(_k=key).sort_values(["_k", *cols], kind="stable").drop(columns="_k").reset_index(
            drop=True)
    return sort(expr, ["anno_set"]), sort(objects, ["anno_set"])


def collect_masks(store: PartStore, groups: dict, pairs: list[tuple[str, int]]) -> pd.DataFrame:
    """The plan's predicted masks (:mod:`.protocols`' RLE rows) from the finished parts."""
    masks = pd.concat(store.frames("masks"), ignore_index=True)
    keep = {(v, m, int(b)) for v in groups for m, b in pairs}
    return masks[
        [(v, m, int(b)) in keep for v, m, b in zip(masks.video, masks.method, masks.budget, strict=True)]]


def calibration(a: VideoArgs) -> tuple[VideoRunner, dict, list[Run], object]:
    """What ``litelvlm plan`` times (:func:`analysis.video.calibration`): the family's loaded runner, the
    records by video, the runs (the baseline first) and ``work(video, runs)``, this command's own per-video
    work."""
    given, budgets, sets = check_args(a)
    run = video_eval(a.model).runner(a)
    groups = by_video(load_video_expressions(a.dataset, a.video_dir, a.split))
    runs = plan([BASELINE, *run.plan_methods(given, budgets)], budgets, NUM_PATCHES)

    def work(video: str, todo: list[Run]) -> None:
        run.new_video()
        for method, budget in todo:
            video_work(run, groups[video], sets, a.dataset, method, budget, a.batch_size)
    return run, groups, runs, work


def config_skip(a: VideoArgs) -> tuple[str, ...]:
    """The options ``config.json`` does not record (those that change no part, and defaults added later, so
    that folders written before them stay resumable)."""
    skip = ("out", "device", "methods", "budgets", "limit_videos", "sam2_video_branch", "image_resize",
            "batch_size", "prefill", "capture", "encoders")
    skip += ("allocation",) if a.allocation == "uniform" else ()
    skip += ("positions",) if a.positions == "official" else ()
    return skip + (("dataset",) if a.dataset == REF_DAVIS else ("anno_sets",))


def predictions(a: VideoArgs, out: Path, store: PartStore, groups: dict, pairs: list, expr: pd.DataFrame,
                clip: str | None, note: str, screen: Screen) -> int | None:
    """The official servers' zips of a dataset that has them (:mod:`.protocols`); on a split scored by its
    server also its tables and ``screen`` (:func:`server_run`, whose status is returned); None: the run goes
    on to score."""
    if not protocols.writes_predictions(a.dataset):
        return None
    zips = protocols.write_predictions(out, collect_masks(store, groups, pairs), pairs, groups)
    return None if protocols.scored_locally(a.dataset, a.split) else server_run(a, out, expr, pairs, zips,
                                                                                clip, note, screen)


def video_work(run: VideoRunner, records: list, sets: list[int], dataset: str, method: str, budget: Budget,
               batch_size: int = 1, check: batches.VideoBatchCheck | None = None) -> dict:
    """One video's part for (method, budget) as ``eval-video`` computes it, by the dataset's protocol: its
    tables (``objects``, and ``masks`` where the dataset has prediction zips) and the expression rows
    (``rows``)."""
    if dataset == REF_DAVIS:
        rows, objects, masks = video_part(run, records, sets, method, budget, batch_size, check)
        return {"rows": rows, "objects": objects, "masks": masks}
    rows, objects, masks = protocols.expression_part(run, records, method, budget, expression_row, batch_size,
                                                     check)
    return {"rows": rows, "objects": objects, "masks": masks}


def server_run(a: VideoArgs, out: Path, expr: pd.DataFrame, pairs: list, zips: list[str], clip: str | None,
               note: str, screen: Screen) -> int:
    """The tables of a split scored by its evaluation server (no J, F or J&F here): ``expressions.parquet``,
    ``submission.csv`` (the zip of each method and budget), and the on-screen note that the server gives
    J&F."""
    table = protocols.server_table(expr, pairs, zips)
    write_parquet(out / "expressions.parquet", mark_weights(expr, a.model, clip))
    write_csv(out / "submission.csv", mark_weights(table, a.model, clip))
    said = protocols.server_note(a.dataset, a.split)
    write_text(out / "summary.txt", table.to_string(index=False) + "\n" + said + "\n")
    screen.show_table(table.to_string(index=False), out / "summary.txt",
                      "the predictions per method and budget")
    print(said)
    print(f"{len(table)} zips -> {out / 'predictions'}; {len(expr)} expressions -> "
          f"{out / 'expressions.parquet'}")
    if banner := weights_banner(a.model, clip):
        print(banner)
    print(f"Note: {note}.")
    return 0


def dataset(a: VideoArgs, tmp: str) -> tuple[Path, dict]:
    """The data folder (``--video-dir`` or the synthetic set written under ``tmp``) and the videos the run
    uses, in order, every frame and annotation of them checked
    (:func:`~litelvlm.video.checks.check_videos`)."""
    root = Path(a.video_dir) if a.video_dir else write_synthetic_videos(
        Path(tmp) / "synthetic", videos=a.synthetic_videos, frames=a.synthetic_frames, size=(64, 48),
        seed=a.synthetic_seed)
    groups = by_video(load_video_expressions(a.dataset, root, a.split))
    if not groups:
        raise LiteLVLMError(f"{root} has no video in split {a.split!r}")
    groups = dict(list(groups.items())[:a.limit_videos])
    for video, records in groups.items() if a.dataset == REF_DAVIS else ():   # four expressions per object
        if len(records) % 4:
            raise LiteLVLMError(f"video {video!r} of {str(root)!r} has {len(records)} expressions, not four "
                                "per object (Ref-DAVIS's four annotator sets)")
    check_videos(rec for records in groups.values() for rec in records)   # every file the run reads, up front
    return root, groups


def run_video(a: VideoArgs, checked: tuple | None = None, screen: Screen = Screen()) -> int:
    # > 60 lines: the run's steps in order: check, plan, compute the parts, merge, write and report
    """``litelvlm eval-video`` (``checked``: ``check_args``' result, handed down by ``run``): parts, tables,
    summary, printed as ``screen`` says."""
    given, budgets, sets = checked if checked is not None else check_args(a)
    out = Path(a.out)
    family = video_eval(a.model)
    if errors := family.method_errors(given, budgets):   # refused before anything is loaded or written
        raise LiteLVLMError("; ".join(errors))
    note = family.note
    config = {k: v for k, v in record(a).items() if k not in config_skip(a)}
    if a.sam2_video_branch:   # non-default options only: folders written before them stay resumable
        config["sam2_video_branch"] = True
    # a family with a resize of its own records it
    config.update(image_resize_record(a.image_resize, a.model))
    config.update(paths=portable_paths(record(a), out), run=run_record(screen.argv), note=note,
                  **run_identity("video", a.model))
    shards = Shards(a.device)
    with tempfile.TemporaryDirectory() as tmp:
        _, groups = dataset(a, tmp)
        with shards.loading():   # the main process writes any cached random model first
            run = family.runner(a if shards.device(a.device) == a.device
                                else replace(a, device=shards.device(a.device)))
        # the LLM's layers between pruning points captured; the image encoders (CUDA graphs on cuda)
        install_paths(run.pipe, a.prefill, a.capture, a.encoders)
        config.update(prefill_record(a.prefill, a.capture, a.encoders),
                      **llm_attn_record(run.pipe.language_model))
        methods = run.plan_methods(given, budgets)
        # the baseline once at 576, then methods x budgets
        runs = plan([BASELINE, *methods], budgets, NUM_PATCHES)
        pairs = run_keys(runs)
        config.update(clip=run.clip_name, model_dtype=str(run.model.dtype).replace("torch.", ""))
        config.update(run.config())
        unbatched = batches.batch_notes(run, [BASELINE, *methods], a.batch_size, say=shards.is_main)
        # nothing at batch 1: earlier folders resume
        config.update(batches.batch_record(a.batch_size, unbatched))
        with shards.folder(out, command="eval-video") as folder:
            if shards.is_main:
                # no part changes with them
                folder.resume(config, ignore=("n_boot", "boot_seed", "unbatched"))
                write_json(out / "config.json", config)   # staged: it reaches the folder with the tables
            # the folder checked (and its unreadable parts dropped) before any process computes
            shards.wait()
            store = PartStore(out)
            mine = {video: groups[video] for video in shards.share(list(groups))}
            log.info("%s: %d video(s) to evaluate", shards.label(), len(mine))
            check = batches.VideoBatchCheck(a.batch_size) if a.batch_size > 1 and shards.is_main else None
            compute(run, mine, runs, sets, store, a.dataset, a.batch_size, check)
            shards.wait()   # every process's parts finished: the main process merges them all
            if not shards.is_main:
                return 0
            expr, objects = collect(store, groups, pairs)
            done = predictions(a, out, store, groups, pairs, expr, run.clip_name, note, screen)
            if done is not None:
                return done   # a split scored by its server: its zips and submission.csv, no J&F here
            summary = summary_table(expr, objects, pairs)
            summary = run.summary(summary, expr)   # the family's own score beside the DAVIS table, if any
            expr = statistics.with_loyalty(expr, store.frames("masks"), pairs)   # the leaderboard's loyalty
            summary = add_statistics(out, summary, expr, objects, a.n_boot,
                                     a.seed if a.boot_seed is None else a.boot_seed, (a.model, run.clip_name),
                                     statistics.method_reads(run.pipe, [m for m, _ in pairs]))
            summary = mark_weights(summary, a.model, run.clip_name)
            write_parquet(out / "expressions.parquet", mark_weights(expr, a.model, run.clip_name))
            write_unit_tables(out, objects, (a.model, run.clip_name))
            write_csv(out / "summary.csv", summary)
            shown = summary_text(summary)
            # one line per null result
            nulls = null_results(summary, ("J", "F", "J&F"), [a.model, run.clip_name])
            batching, shown_check = batches.batch_summary(out, a, unbatched, check)   # "" at batch 1
            write_text(out / "summary.txt", shown + "\n" + table_notes(summary, "expressions", "expressions")
                       + "".join(f"{line}\n" for line in nulls) + batching)
    announce(a, out, (shown, nulls, shown_check), summary, expr, run.clip_name, note, screen)
    return 0
