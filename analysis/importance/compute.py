"""``litelvlm importance``: do the tokens reversed CLIP similarity keeps match the LVLM's own token
importance?

Details: docs/importance.md (``analysis.importance.compute``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm

from analysis.common.grounding.grounding_runs import clip_record
from analysis.common.grounding.model_setup import quantize_kwargs, study_numerics
from analysis.common.options.defaults import DEFAULT_KS
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import run_identity
from analysis.common.runs.run_record import run_record, torch_thread_count
from analysis.common.runs.study import portable_paths, read_json
from analysis.importance.aggregate import area_bins, summarize
from analysis.importance.answer import importance_headline
from analysis.importance.correlation import compare
from analysis.importance.options import CLIP_SIGNALS, ImportanceArgs, check_args
from analysis.importance.signals import (
    SignalOptions,
    clip_signals,
    llm_signals,
    method_signals,
    pruned_masks,
    signal_error,
)
from litelvlm.cli_args import split_list
from litelvlm.data.refer import load_refer
from litelvlm.errors import LiteLVLMError
from litelvlm.image_resize import image_resize_kwargs
from litelvlm.registry.families import exif_transpose, image_resize_record, load_pipeline
from litelvlm.registry.provenance import mark_weights, weights_banner
from litelvlm.registry.resolved_model import record
from litelvlm.runs.exclusions import announce_skipped_images
from litelvlm.runs.io import atomic_path, remove_result, write_csv, write_json, write_parquet
from litelvlm.runs.parts import PartStore, read_parquet
from litelvlm.runs.run_folder import RunFolder
from litelvlm.runs.staging import current

log = logging.getLogger(__name__)

METRICS = ["pearson", "spearman", "kendall", *[f"jaccard_{k}" for k in DEFAULT_KS]]
ID_COLUMNS = ["image_id", "ref_id", "ann_id", "sent_id", "sentence", "area_fraction", "area_bin",
              "pred_area_fraction"]
PAIR_COLUMNS = ["clip_signal", "llm_signal", "query", "layer", "head"]


def compare_signals(clip: dict, llm: dict) -> list[dict]:
    """One row (pair columns + metrics) per CLIP-side x LLM-side signal pair."""
    rows = []
    for ck, cv in clip.items():
        for lk, lv in llm.items():
            row = {"clip_signal": ck.name, "llm_signal": lk.name, "query": lk.query, "layer": lk.layer,
                   "head": lk.head}
            row.update(compare(cv, lv, DEFAULT_KS))
            rows.append(row)
    return rows


def sentence_signals(pipe, base, record, signals: list[str], opts: SignalOptions,
                     methods: tuple[str, ...] = ()):
    """(prepared, clip signals, llm signals, IG deltas) of one REFER record alone."""
    prep = pipe.with_sentences(base, [record.sentence])  # the family's one-expression prompt
    clip = clip_signals(prep) if signal_error(pipe, CLIP_SIGNALS[0]) is None else {}
    clip.update(method_signals(pipe, prep, methods))
    llm, deltas = llm_signals(pipe, prep, signals, opts)
    return prep, clip, llm, deltas


def top_k_note(image_id, n: int) -> None:
    """Warn once per image whose N is at most a top-k of the Jaccard overlaps (those are NaN there)."""
    over = [k for k in DEFAULT_KS if k >= n]
    if over:
        log.warning("image %s has %d visual tokens: jaccard_%s are NaN (k >= N)", image_id, n,
                    ", jaccard_".join(map(str, over)))


def evaluate_image(pipe, a: ImportanceArgs, records: list, image, opts: SignalOptions, signals: list[str],
                   keep_scores: int) -> tuple[list[dict], list[dict], dict[str, float], dict]:
    """(comparison rows, token-score rows of the first ``keep_scores`` sentences, IG deltas, the image's N and
    token grid) for one image."""
    base = pipe.prepare_image(image, seed=a.seed)
    rows, scores, deltas, visual = [], [], {}, {}
    for i, r in enumerate(records):
        prep, clip, llm, d = sentence_signals(pipe, base, r, signals, opts,
                                              tuple(split_list(a.method_signals)))
        if not visual:
            n, grid = pipe.num_visual(prep), pipe.visual_grid(prep)
            visual = {"image_id": r.image_id, "num_visual": n, "grid_h": grid[0], "grid_w": grid[1]}
            top_k_note(r.image_id, n)
        for k, v in d.items():
            deltas[k] = max(deltas.get(k, 0.0), v)
        gt = r.mask()
        pred = pruned_masks(pipe, prep, torch.arange(visual["num_visual"]))[0]
        ids = {"image_id": r.image_id, "ref_id": r.ref_id, "ann_id": r.ann_id, "sent_id": r.sent_id,
               "sentence": r.sentence, "area_fraction": float(gt.mean()),
               "pred_area_fraction": float(pred.float().mean())}
        for row in compare_signals(clip, llm):
            rows.append({**ids, **row})
        if i < keep_scores:
            for k, v in {**clip, **llm}.items():
                if k.head == -1:
                    scores.append({"image_id": r.image_id, "sent_id": r.sent_id, "sentence": r.sentence,
                                   "signal": k.name, "query": k.query, "layer": k.layer,
                                   "grid_h": visual["grid_h"], "grid_w": visual["grid_w"],
                                   "scores": v.numpy().astype(np.float32)})
    return rows, scores, deltas, visual


# -- tables -------------------------------------------------------------------------------------
def finish_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Typed comparison rows with the mask-area bin."""
    rows = rows.copy()
    for c in ("image_id", "ref_id", "ann_id", "sent_id", "layer", "head"):
        rows[c] = rows[c].astype("int64")
    rows["area_bin"] = area_bins(rows["area_fraction"].to_numpy()).astype(str)
    return rows[ID_COLUMNS + PAIR_COLUMNS + METRICS]


def summary_table(rows: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Head-mean rows aggregated over sentences (95% bootstrap CI over images): by pair and LLM layer,
    for all areas (``area_bin == "all"``) and per mask-area bin."""
    by = ["clip_signal", "llm_signal", "query", "layer"]
    hm = rows[rows["head"] == -1]
    if hm.empty:
        return pd.DataFrame(columns=by + ["area_bin", "n_sentences", "n_images"])
    overall = summarize(hm, by, METRICS, n_boot=n_boot, seed=seed).assign(area_bin="all")
    per_bin = summarize(hm, by + ["area_bin"], METRICS, n_boot=n_boot, seed=seed)
    out = pd.concat([overall, per_bin], ignore_index=True)
    cols = by + ["area_bin"] + [c for c in out.columns if c not in by + ["area_bin"]]
    return out[cols]


def load_importance(out: str | Path) -> dict:
    """The tables of an importance results folder: ``rows``, ``summary``, ``scores``, ``config``,
    ``images``."""
    out = Path(out)
    path = out / "importance.parquet"
    if not path.exists():
        raise LiteLVLMError(f"{path} not found: run `litelvlm importance --out {out}` first")
    scores_path = out / "token_scores.parquet"
    scores = read_parquet(scores_path) if scores_path.exists() else pd.DataFrame()
    images = {int(p.stem): np.asarray(Image.open(p).convert("RGB"))
              for p in sorted((out / "images").glob("*.png"))}
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False, na_values=[""])
    summary["query"] = summary["query"].fillna("")       # signals without a query set
    tables = {"rows": read_parquet(path), "summary": summary, "scores": scores,
              "config": read_json(out / "config.json"), "images": images}
    if (out / "visual_tokens.csv").exists():
        tables["visual"] = pd.read_csv(out / "visual_tokens.csv")
    ablation = out / "ablation" / "summary.csv"
    if ablation.exists():
        tables["ablation"] = pd.read_csv(ablation)
    return tables


# -- resumable parts ----------------------------------------------------------------------------
def merge_parts(out: Path, n_boot: int, seed: int, image_ids: list[int] | None = None,
                config: dict | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write importance.parquet, token_scores.parquet and summary.csv from every finished image part
    (restricted to ``image_ids`` when given: a run may reuse the parts of a larger one); ``config``: the run's
    configuration (default: the folder's config.json)."""
    store = PartStore(out)
    wanted = None if image_ids is None else set(image_ids)

    def select(frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
        frames = [f for f in frames if not f.empty]
        return frames if wanted is None else [f[f["image_id"].isin(wanted)] for f in frames]

    frames = [f for f in select(store.frames()) if not f.empty]
    if not frames:
        skipped = store.skipped()
        if skipped:
            raise LiteLVLMError(f"no image could be read ({len(skipped)} unreadable, e.g. "
                                f"{skipped[0]['path']}); nothing written")
        raise LiteLVLMError("no sentence could be scored; nothing written")
    rows = finish_rows(pd.concat(frames, ignore_index=True))
    rows = rows.sort_values(["image_id", "ref_id", "sent_id"] + PAIR_COLUMNS,
                            kind="stable").reset_index(drop=True)
    visual = [f for f in select(store.frames("visual")) if not f.empty]
    if visual:  # each image's N (parts written before it was recorded have none)
        write_csv(out / "visual_tokens.csv", pd.concat(visual, ignore_index=True).sort_values("image_id"))
    score_frames = [f for f in select(store.frames("scores")) if not f.empty]
    if score_frames:
        scores = pd.concat(score_frames, ignore_index=True)
        write_parquet(out / "token_scores.parquet", scores)
        for png in (out / "images").glob("*.png"):  # heat-map images of parts outside this selection
            if int(png.stem) not in set(scores["image_id"]):
                remove_result(png)
    cfg = config if config is not None else read_json(out / "config.json") if current(
        out / "config.json").exists() else {}
    summary = mark_weights(summary_table(rows, n_boot=n_boot, seed=seed), cfg.get("model"), cfg.get("clip"))
    write_parquet(out / "importance.parquet", rows)
    write_csv(out / "summary.csv", summary)
    return rows, summary


#: options a run may change and still reuse its folder's finished parts (a larger --limit-images)
GROWABLE = {"limit_images": lambda old, new: True, "images": lambda old, new: True}


def _score_image(pipe, a: ImportanceArgs, store: PartStore, out: Path, recs: list, opts: SignalOptions,
                 signals: list[str], kept: int) -> int:
    """Score one image's sentences and write its part (an unreadable image: a part that lists it as
    skipped, not done). Returns the number of sentences whose scores were kept."""
    image_id = recs[0].image_id
    t0 = time.perf_counter()
    info: dict = {"image_id": image_id, "sentences": len(recs)}
    try:
        image = recs[0].image(exif_transpose(pipe))
    except (LiteLVLMError, OSError) as e:
        log.warning("skipped image %s: %s", recs[0].image_path, e)
        info.update(skipped=[{"image_id": image_id, "path": str(recs[0].image_path), "reason": str(e)}],
                    sentences=0, seconds=time.perf_counter() - t0, ig_delta_max={})
        store.write([], pd.DataFrame(), info, tried=[image_id])
        return 0
    rows, scores, deltas, visual = evaluate_image(pipe, a, recs, image, opts, signals,
                                                  max(0, a.save_scores - kept))
    n_kept = len({s["sent_id"] for s in scores})
    tables = {"visual": pd.DataFrame([visual])} if visual else {}
    if scores:
        with atomic_path(out / "images" / f"{image_id}.png") as tmp:
            Image.fromarray(pipe.visual_window(image)).save(tmp, format="PNG")
        info["scored_kept"] = n_kept
        tables["scores"] = pd.DataFrame(scores)
    info.update(seconds=time.perf_counter() - t0, ig_delta_max=deltas)
    store.write([image_id], pd.DataFrame(rows), info, tables or None)
    return n_kept


def check_family(pipe, signals: list[str], methods: list[str]) -> list[str]:
    """The CLIP signals ``pipe``'s family gives; a signal or ``--method-signals`` method it cannot give, or
    nothing left to compare, is a :class:`~litelvlm.errors.LiteLVLMError` (before anything is written)."""
    errors = [why for s in signals if (why := signal_error(pipe, s))]
    errors += [why for m in methods if (why := pipe.method_error(m))]
    if errors:
        raise LiteLVLMError("; ".join(dict.fromkeys(errors)))
    clip_names = [s for s in CLIP_SIGNALS if signal_error(pipe, s) is None]
    if not clip_names and not methods:
        raise LiteLVLMError(f"{signal_error(pipe, CLIP_SIGNALS[0])}: nothing to compare the LLM signals "
                            "with; give --method-signals (methods that rank the visual tokens by one score "
                            "each and act with the LLM, e.g. fastv, dart)")
    if not clip_names:
        log.warning("the %s family gives no CLIP signals; comparing the --method-signals only", pipe.family)
    return clip_names


def run_importance(a: ImportanceArgs, pipe=None,
                   screen: Screen = Screen()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute, resume and merge; returns (rows, summary). ``pipe``: an already loaded pipeline
    for ``a.model`` (default: loaded here); ``screen.argv``: the command line config.json records."""
    signals = check_args(a)
    records = load_refer(a.refer_dir, a.image_dir, a.dataset, a.split_by, a.split)
    if not records:
        raise LiteLVLMError(f"no sentences in split {a.split!r} of {a.refer_dir}")
    by_image: dict[int, list] = {}
    for r in records:
        by_image.setdefault(r.image_id, []).append(r)
    image_ids = sorted(by_image)[: a.limit_images] if a.limit_images is not None else sorted(by_image)
    torch.manual_seed(a.seed)
    if pipe is None:
        pipe = load_pipeline(a.model, clip=a.clip, sam=a.sam, device=a.device,
                             dtype=getattr(torch, a.dtype), numerics=study_numerics(a, "per-expression"),
                             **image_resize_kwargs(a.image_resize), **quantize_kwargs(a))
    opts = SignalOptions(target=a.target, ig_steps=a.ig_steps, internal_batch_size=a.internal_batch_size,
                         group=a.group, per_head=a.per_head)
    clip_names = check_family(pipe, signals, split_list(a.method_signals))

    out = Path(a.out)
    config = {k: v for k, v in record(a).items() if k not in ("out", "device", "save_scores", "n_boot")}
    # recorded for a family that has one
    config.update(image_resize_record(config.pop("image_resize"), a.model))
    lm = pipe.language_model.config
    config.update(signals=signals, clip_signals=clip_names, images=len(image_ids), ks=list(DEFAULT_KS),
                  **clip_record(pipe),
                  seg_token_id=pipe.seg_token_id, llm_layers=int(lm.num_hidden_layers),
                  llm_heads=int(lm.num_attention_heads),
                  num_visual_tokens=pipe.num_visual_tokens, paths=portable_paths(record(a), out),
                  torch_threads=torch_thread_count(), run=run_record(screen.argv),
                  **run_identity("importance", a.model))
    with RunFolder(out, direct=("parts", "images"), command="importance") as folder:
        folder.resume(config, growable=GROWABLE)
        store = PartStore(out)
        write_json(out / "config.json", config)   # staged: it reaches the folder with the tables
        (out / "images").mkdir(exist_ok=True)
        done = store.done()
        kept = sum(info.get("scored_kept", 0) for _, info in store.markers())
        todo = [i for i in image_ids if i not in done]
        log.info("%d image(s) to score, %d already done", len(todo), len(done & set(image_ids)))
        for image_id in tqdm(todo, desc="importance"):
            recs = sorted(by_image[image_id], key=lambda r: (r.ref_id, r.sent_id))[: a.max_sentences]
            kept += _score_image(pipe, a, store, out, recs, opts, signals, kept)
        wanted = {i: len(by_image[i][: a.max_sentences]) for i in image_ids}
        announce_skipped_images([s for s in store.skipped() if int(s["image_id"]) in wanted], wanted,
                                sum(wanted.values()), log)
        return merge_parts(out, a.n_boot, a.seed, image_ids, config)


def run_and_report(a: ImportanceArgs, screen: Screen = Screen(), pipe=None) -> int:
    """The ``litelvlm importance`` command with checked options: run (``pipe``: a pipeline already loaded for
    ``a.model``, else loaded here), then print the head of the summary (as ``screen`` says)."""
    rows, summary = run_importance(a, pipe=pipe, screen=screen)
    hm = summary[(summary["area_bin"] == "all")]
    cols = ["clip_signal", "llm_signal", "query", "layer", "n_sentences", "spearman_mean", "spearman_lo",
            "spearman_hi", "jaccard_64_mean"]
    with pd.option_context("display.width", 160, "display.max_rows", 60):
        screen.show_table(hm[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"),
                          Path(a.out) / "summary.csv", "rank correlations per signal pair")
    print(f"{rows['sent_id'].nunique()} sentence(s), {len(rows)} rows -> {a.out}")
    layers = (read_json(Path(a.out) / "config.json") or {}).get("llm_layers")
    screen.headline("importance", importance_headline(summary, layers), weights_banner(a.model, a.clip))
    return 0
