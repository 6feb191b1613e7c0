"""``litelvlm eval-grounding``: RefCOCO/RefCOCO+/RefCOCOg referring segmentation per method and budget.

Metrics as the official ``eval/referring_seg/infer_and_evaluate.py`` computes them; the ``per-expression``
protocol is this project's addition.

Details: docs/grounding.md (``analysis.grounding.compute``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.common.grounding.grounding_batches import BatchCheck, batch_notes, batch_summary
from analysis.common.grounding.grounding_runs import NOTHING_FITS, Run, clip_record, plan, run_keys
from analysis.common.grounding.grounding_scoring import evaluate_images, summarize, with_pixels
from analysis.common.grounding.model_setup import quantize_kwargs, study_numerics
from analysis.common.options.prefill_args import prefill_record
from analysis.common.presentation.caveats import null_results
from analysis.common.presentation.degenerate import warn_if_degenerate
from analysis.common.presentation.screen import (
    METRIC_LABELS,
    board_text,
    methods_headline,
    table_notes,
    with_intervals,
)
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import run_identity
from analysis.common.runs.run_record import run_record, torch_thread_count
from analysis.common.runs.shards import Shards
from analysis.common.runs.study import llm_attn_record, portable_paths, read_json
from analysis.common.stats.leaderboard import reads_attention, split_view
from analysis.grounding.options import PROTOCOLS, GroundingArgs, check_args
from analysis.grounding.statistics import add_statistics, with_loyalty
from litelvlm.budget import Budget
from litelvlm.cli_args import split_list
from litelvlm.data.prefetch import prefetched
from litelvlm.data.refer import load_refer
from litelvlm.errors import LiteLVLMError
from litelvlm.image_resize import image_resize_kwargs
from litelvlm.lvlm.captured_paths import install_paths
from litelvlm.method import position_error
from litelvlm.registry.families import exif_transpose, get_family, image_resize_record, load_pipeline, resolve
from litelvlm.registry.provenance import mark_weights, weights_banner
from litelvlm.registry.resolved_model import ResolvedModel, record
from litelvlm.runs.exclusions import announce_skipped_images
from litelvlm.runs.io import atomic_path, write_csv, write_json, write_parquet
from litelvlm.runs.parts import PartStore, read_parquet
from litelvlm.runs.staging import current

log = logging.getLogger(__name__)

ROW_COLUMNS = ["protocol", "method", "budget", "image_id", "ref_id", "ann_id", "sent_id", "sentence", "turn",
               "intersection", "union", "iou", "pred_area", "gt_area", "seq_len", "prune_layer"]


def own_metric_summary(summary: pd.DataFrame, rows: pd.DataFrame, model: ResolvedModel | None
                       ) -> pd.DataFrame:
    """``summary`` with the columns of the model family's own metric beside GLaMM's (``GroundingPipeline.
    summarize_metrics``: UniPixel's ``unipixel_ciou``, ``unipixel_giou``, ``unipixel_box_acc``), where its
    rows carry that family's per-sample columns; unchanged otherwise."""

    if model is None or rows.empty:
        return summary
    cls = get_family(model.family)
    metric = cls.abilities.own_metric
    if not metric or f"{metric}_iou" not in rows:
        return summary
    if rows[f"{metric}_iou"].isna().any():  # parts written before the family scored its own metric
        log.warning("eval-grounding: some rows lack the %s metric (parts of an earlier version): its columns "
                    "are left out of summary.csv; re-run in a fresh --out to have them", metric)
        return summary
    own = pd.DataFrame([{"method": m, "budget": b, **cls.summarize_metrics(g),
                         **({"seg_generated_rate": g["seg_generated"].mean()} if "seg_generated" in g
                            else {})}
                        for (m, b), g in rows.groupby(["method", "budget"], sort=True)])
    return summary.merge(own, on=["method", "budget"], how="left")


def protocol_difference(per_expression: pd.DataFrame, official: pd.DataFrame) -> pd.DataFrame:
    """Join two summaries on (method, budget): cIoU/gIoU of each protocol and official minus
    per-expression."""
    m = per_expression.merge(official, on=["method", "budget"], suffixes=("_per_expression", "_official"))
    m["delta_ciou"] = m["ciou_official"] - m["ciou_per_expression"]
    m["delta_giou"] = m["giou_official"] - m["giou_per_expression"]
    return m


def load_grounding(results_dir: str | Path) -> dict:
    """Tables of one ``eval-grounding --out`` folder, or of a folder holding one per protocol
    (``per-expression/``, ``official/``): ``summary`` (with a ``protocol`` column), ``rows``,
    ``difference`` (``protocol_difference``; empty unless both protocols are present), ``config``."""
    root = Path(results_dir)
    outs = [root / p for p in PROTOCOLS if (root / p / "summary.csv").exists()]
    if not outs and (root / "summary.csv").exists():
        outs = [root]
    if not outs:
        raise LiteLVLMError(f"no eval-grounding results (summary.csv) in {root} or its protocol subfolders")
    summaries, rows, configs = [], [], {}
    for d in outs:
        cfg = read_json(d / "config.json") if (d / "config.json").exists() else {}
        protocol = cfg.get("protocol", d.name if d.name in PROTOCOLS else "per-expression")
        summaries.append(pd.read_csv(d / "summary.csv").assign(protocol=protocol))
        if (d / "grounding.parquet").exists():
            rows.append(read_parquet(d / "grounding.parquet"))
        configs[protocol] = cfg
    summary = pd.concat(summaries, ignore_index=True)
    by = {p: g.drop(columns="protocol") for p, g in summary.groupby("protocol")}
    diff = (protocol_difference(by["per-expression"], by["official"]) if len(by) == 2
            else pd.DataFrame(columns=["method", "budget", "delta_ciou", "delta_giou"]))
    return {"summary": summary, "rows": pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(),
            "difference": diff, "config": configs}


# -- resumable parts (litelvlm.runs.parts)
# ---------------------------------------------------------------
def merge_parts(out: Path, image_ids: list[int] | None = None, pairs: list[tuple[str, int]] | None = None,
                num_layers: int | None = None, model: ResolvedModel | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(rows, summary, skipped) from every finished part, restricted to ``image_ids`` and ``pairs``
    when given (a run may reuse parts of a larger one); writes grounding.parquet, summary.csv, skipped.csv.
    ``num_layers``: the model's LLM decoder layers (the leaderboard's ``reads_attention``); ``model``: the
    run's model as its options resolved it (None: the folder's config.json names it)."""
    store = PartStore(out)
    wanted = None if image_ids is None else set(image_ids)
    skipped = [s for s in store.skipped() if wanted is None or int(s["image_id"]) in wanted]
    frames = [f for f in store.frames() if not f.empty]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_COLUMNS)
    if wanted is not None:
        rows = rows[rows["image_id"].isin(wanted)]
    if pairs is not None:
        keys = pd.MultiIndex.from_frame(rows[["method", "budget"]].astype({"budget": "int64"}))
        rows = rows[keys.isin(pd.MultiIndex.from_tuples(pairs, names=["method", "budget"]))]
    rows = rows.drop_duplicates(["protocol", "method", "budget", "image_id", "ref_id", "sent_id", "turn"])
    rows = rows.sort_values(["method", "budget", "image_id", "ref_id", "sent_id"],
                            kind="stable").reset_index(drop=True)
    for c in ("budget", "image_id", "ref_id", "ann_id", "sent_id", "turn", "intersection", "union",
              "pred_area", "gt_area", "seq_len", "prune_layer"):
        rows[c] = rows[c].astype("int64")
    rows["iou"] = rows["iou"].astype("float64")
    rows = with_loyalty(rows)   # each mask's IoU with none's (the leaderboard), the masks left in the parts
    if rows.empty and skipped:
        raise LiteLVLMError(f"no image could be read ({len(skipped)} skipped, e.g. {skipped[0]['path']}: "
                            f"{skipped[0]['reason']}); nothing written")
    if rows.empty:   # every image skipped every planned budget (each said so)
        raise LiteLVLMError(NOTHING_FITS)
    cfg = read_json_if(out / "config.json") or {}
    if model is None and cfg.get("model") is not None:   # read back from the folder, resolved once
        model = resolve(cfg["model"])
    summary = own_metric_summary(summarize(rows), rows, model)
    reads = None if num_layers is None or model is None else reads_attention(
        sorted(set(rows["method"])), num_layers, get_family(model.family).abilities.backbone)
    summary = mark_weights(add_statistics(out, summary, rows, {**cfg, "model": model}, reads), model,
                           cfg.get("clip"))
    skipped_df = pd.DataFrame(skipped, columns=["image_id", "path", "reason"])
    write_parquet(out / "grounding.parquet", rows)
    write_csv(out / "summary.csv", summary)
    write_csv(out / "skipped.csv", skipped_df)
    return rows, summary, skipped_df


def _check_layers(a: GroundingArgs, methods: list[str], pipe) -> None:
    """The methods' layer options (FastV's K, llm-attention's layer) must exist in the model, and
    ``--positions keep`` / ``pad`` applies to every method (checked before anything is written)."""
    n = int(pipe.language_model.config.num_hidden_layers)
    errors = [why for m in methods if (why := pipe.method_error(m))]
    errors += [e for m in methods for e in pipe.spec(m).layer_errors(a, n)]
    if a.answer not in (answers := pipe.abilities.answers):
        errors.append(f"--answer {a.answer}: the {pipe.family} family's prompts offer {', '.join(answers)}")
    elif a.answer == "generate":
        errors += [f"--answer generate: {m} prunes inside the LLM (a pruned KV cache while decoding has no "
                   "official definition)" for m in methods if pipe.spec(m).forward is not None]
    if a.positions in ("keep", "pad"):
        errors += [f"--positions {a.positions}: {why}" for m in methods
                   if (why := position_error(m, pipe.spec(m), a.positions))]
    if errors:
        raise LiteLVLMError("; ".join(dict.fromkeys(errors)))


def _image_ids(a: GroundingArgs, by_image: dict[int, list]) -> list[int]:
    """The image ids to evaluate: sorted, filtered by ``--image-ids``, cut by ``--limit-images``."""
    image_ids = sorted(by_image)
    if a.image_ids:
        try:
            wanted = set(split_list(a.image_ids, int))
        except ValueError as e:
            raise LiteLVLMError(f"--image-ids must be integers: {e}") from e
        unknown = sorted(wanted - set(by_image))
        if unknown:
            raise LiteLVLMError(f"--image-ids: no sentences of split {a.split!r} for image(s) {unknown}")
        image_ids = [i for i in image_ids if i in wanted]
    return image_ids[: a.limit_images] if a.limit_images is not None else image_ids


def run_grounding(a: GroundingArgs, pipe=None, checked: tuple[list[str], list[Budget]] | None = None,
                  # > 60 lines: one run's steps in order: load, plan, resume, shard, merge
                  screen: Screen = Screen()) -> int:
    """``litelvlm eval-grounding`` with typed arguments (:func:`analysis.grounding.run` is the entry point,
    which checks them once and hands ``checked``, :func:`check_args`' (methods, budgets), down); ``pipe`` (a
    family's pipeline) skips loading ``--model`` again when several evaluations share one model (it must be
    the model ``a.model`` names); ``screen`` says what it prints."""
    methods, budgets = checked if checked is not None else check_args(a)
    records = load_refer(a.refer_dir, a.image_dir, a.dataset, a.split_by, a.split)
    if not records:
        raise LiteLVLMError(f"no sentences in split {a.split!r} of {a.refer_dir}")
    by_image: dict[int, list] = {}
    for r in records:
        by_image.setdefault(r.image_id, []).append(r)
    image_ids = _image_ids(a, by_image)

    shards = Shards(a.device)
    device = shards.device(a.device)
    if pipe is None:
        with shards.loading():  # the main process writes any cached random model first
            pipe = load_pipeline(a.model, clip=a.clip, sam=a.sam, device=device,
                                 **({} if a.clip_context == "clip" else {"clip_context": a.clip_context}),
                                 **({} if a.clip_similarity == "clip"
                                    else {"clip_similarity": a.clip_similarity}),
                                 **image_resize_kwargs(a.image_resize),
                                 dtype=None if a.dtype == "auto" else getattr(torch, a.dtype),
                                 numerics=study_numerics(a, a.protocol), **quantize_kwargs(a))
    pairs = plan(methods, budgets, pipe.num_visual_tokens)
    if a.protocol == "per-expression" and any(m.startswith("litelvlm") for m in methods):
        print("eval-grounding: note: with one text per prompt (per-expression), LiteLVLM's K "
              "lowest-similarity tokens fill the whole budget and no context token is kept; the official "
              f"protocol embeds up to {a.max_sentences} questions per image")

    _check_layers(a, methods, pipe)
    # the LLM's layers between pruning points captured; the image encoders (CUDA graphs on cuda)
    install_paths(pipe, a.prefill, a.capture, a.encoders)
    # a paired CLIP the methods read, loaded before the loader starts: every image's pixels carry its input
    if pipe.abilities.clip_side == "mapped" and any(pipe.spec(m).uses_clip for m in methods):
        log.info("the paired CLIP %s is loaded for the methods that read it", pipe.clip.name)
    out = Path(a.out)
    config = {k: v for k, v in record(a).items() if k not in ("out", "device", "chunk", "prefill", "capture",
                                                              "encoders")}
    config.update(prefill_record(a.prefill, a.capture, a.encoders))
    for key, default in (("clip_context", "clip"), ("clip_similarity", "clip"), ("answer", "teacher-forced"),
                         ("batch_size", 1), ("time_pruning", False), ("stage_costs", False)):
        # a default is recorded only when changed: earlier folders resume as they were
        if config[key] == default:
            config.pop(key)
    config.update(image_resize_record(config.pop("image_resize"), a.model))
    config.update(methods=methods, budgets=[b.column for b in budgets], images=len(image_ids),
                  **clip_record(pipe),
                  seg_token_id=pipe.seg_token_id, **llm_attn_record(pipe.language_model),
                  model_dtype=str(pipe.dtype).replace("torch.", ""), paths=portable_paths(record(a), out),
                  torch_threads=torch_thread_count(), numerics=pipe.numerics.to_dict(),
                  run=run_record(screen.argv), **run_identity("grounding", a.model))
    unbatched = batch_notes(pipe, a, methods, say=shards.is_main)
    if unbatched:
        config["unbatched"] = unbatched
    with shards.folder(out, command="eval-grounding") as folder:
        old = None
        if shards.is_main:
            old = folder.resume(config, growable=GROWABLE)
            write_json(out / "config.json", config)   # staged: it reaches the folder with the tables
        shards.wait()
        store = PartStore(out)
        old = old or read_json_if(out / "config.json")
        # the keys of parts whose markers predate their own keys: the runs of the folder's earlier config
        same = not old or (old["methods"], old["budgets"]) == (config["methods"], config["budgets"])
        legacy = pairs if same else plan(old["methods"], [Budget.from_column(b) for b in old["budgets"]],
                                         pipe.num_visual_tokens)
        mine = shards.share(image_ids)
        work = store.missing(mine, run_keys(pairs), run_keys(legacy))
        log.info("%s: %d image(s) to evaluate", shards.label(), sum(len(ids) for _, ids in work))
        by_key = dict(zip(run_keys(pairs), pairs, strict=True))
        check = BatchCheck(a.batch_size) if a.batch_size > 1 and shards.is_main else None
        for todo_keys, ids in work:
            _evaluate(pipe, a, store, by_image, ids, [by_key[tuple(k)] for k in todo_keys], shards, check,
                      image_ids[0])
        shards.wait()
        if shards.is_main:
            rows_df, summary, skipped_df = merge_parts(out, image_ids, run_keys(pairs),
                                                       int(pipe.language_model.config.num_hidden_layers),
                                                       a.model)
            main_view, board = split_view(summary)   # the leaderboard's columns: a second table
            shown = with_intervals(main_view).to_string(index=False) + board_text(board)  # all of summary.csv
            nulls = "".join(f"{line}\n"
                            for line in null_results(summary, ("ciou", "giou"), [a.model, a.clip]))
            batching, shown_check = batch_summary(out, a, unbatched, check)
            with atomic_path(out / "summary.txt") as tmp:
                tmp.write_text(shown + f"\nskipped images: {len(skipped_df)}\n" + table_notes(summary) + nulls
                               + batching)
            screen.show_table(shown, out / "summary.txt", "cIoU/gIoU per method and budget")
            print(nulls + shown_check, end="")
            print(f"{len(rows_df)} rows, {len(skipped_df)} image(s) skipped -> {out}")
            warn_if_degenerate(log, "eval-grounding", len(rows_df) > 0 and not rows_df["pred_area"].any(),
                               a.model, out)
            announce_skipped_images(skipped_df.to_dict("records"), {i: len(by_image[i]) for i in image_ids},
                                    sum(len(by_image[i]) for i in image_ids), log)
            tested = current(out / "comparisons.csv")
            comparisons = pd.read_csv(tested) if tested.exists() else None
            labels = {m: METRIC_LABELS[m] for m in ("ciou", "giou")}
            screen.headline("eval-grounding", methods_headline(summary, labels, comparisons=comparisons),
                            weights_banner(a.model, a.clip))
    return 0


#: options a run may change and still reuse the finished parts of its folder (results are restricted
#: to the current selection, so a grown run equals a fresh one)
GROWABLE = {k: (lambda old, new: True)
            for k in ("limit_images", "images", "image_ids", "methods", "budgets", "n_boot",
                                                    "boot_seed")}


def read_json_if(path: Path) -> dict | None:
    """The JSON at ``path`` or None when it does not exist."""
    return read_json(path) if current(path).exists() else None


def _evaluate(pipe, a: GroundingArgs, store: PartStore, by_image: dict, ids: list[int],
              pairs: list[Run], shards: Shards, check: BatchCheck | None = None,
              first: int | None = None) -> None:
    """Evaluate ``pairs`` on ``ids``, one part per ``--chunk`` images (:func:`evaluate_images` of the chunk's
    readable images: ``--batch-size`` prompts per ``ground_many`` call; ``first``: the run's first image,
    whose first prompt ``--stage-costs`` counts); unreadable images are listed in the part as skipped (not
    done: the next run tries them again)."""
    rows, chunk_images, skipped, pending = [], [], [], []

    def run_pending():
        done = evaluate_images(pipe, a, pending, pairs, a.batch_size, check, first) if pending else []
        for image_rows in done:
            rows.extend(image_rows)
        pending.clear()

    def flush():
        done = sorted(set(chunk_images) - {s["image_id"] for s in skipped})
        # the family's own metric
        own = list(dict.fromkeys(k for r in rows for k in r if k not in ROW_COLUMNS))
        store.write(done, pd.DataFrame(rows, columns=ROW_COLUMNS + own),
                    {"skipped": list(skipped), "keys": [list(k) for k in run_keys(pairs)]},
                    tried=chunk_images)
        rows.clear(), chunk_images.clear(), skipped.clear()

    exif = exif_transpose(pipe)
    # the images decoded and their pixels made (the family's CPU part of preparing them) ahead on worker
    # threads, overlapping the model's work (litelvlm.data.prefetch)
    decoded = prefetched(ids, lambda i: with_pixels(pipe, by_image[i][0].image(exif)))
    for image_id, loaded, e in tqdm(decoded, total=len(ids), desc=f"eval-grounding[{shards.rank}]",
                                   disable=not shards.is_main):
        recs = by_image[image_id]
        if isinstance(e, (LiteLVLMError, OSError)):
            skipped.append({"image_id": image_id, "path": str(recs[0].image_path), "reason": str(e)})
            log.warning("skipped image %s: %s", recs[0].image_path, e)
        elif e is not None:
            raise e
        else:
            pending.append((recs, *loaded))
        chunk_images.append(image_id)
        if len(chunk_images) >= a.chunk:
            run_pending(), flush()
    if chunk_images:
        run_pending(), flush()


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = GroundingArgs
