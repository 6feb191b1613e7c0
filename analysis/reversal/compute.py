"""Study 1, ``litelvlm reversal``: the run and its outputs (the measurement itself, shared with ``sink``, is
:mod:`analysis.common.measures.clip_reversal`).

For every sentence and requested vision layer, the similarity ``s_i`` of each patch token
(projected into the joint space) with the sentence's ``text_embeds`` is compared with the
referent mask on the patch grid (a patch is inside when its coverage ``c_i >= 0.5``):

* ``auroc_reversed``: AUROC of ``-s`` for "inside" (ties one half); > 0.5 means reversal;
* ``gap``: (mean s inside - mean s outside) / std of s over all patches;
* for each k: share of inside patches among the k lowest-s and k highest-s tokens, and the
  random expectation n_in / N (NaN when k > N: a "top-k" of every patch carries no ranking).

Outputs ``OUT/reversal.parquet`` (one row per sentence x layer), ``OUT/summary.csv`` and
``OUT/config.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import torch

from analysis.common.measures.clip_reversal import (
    load_records,
    prompts_for,
    resolve_layers,
    run_study,
    summarise_reversal,
    vision_num_layers,
)
from analysis.common.presentation.screen import counts_text, estimate
from analysis.common.runs.command import Screen
from analysis.common.runs.features_cache import cached_text_embeds
from analysis.common.runs.identity import CLIP_FAMILY, run_identity
from analysis.common.runs.run_record import run_record, torch_thread_count
from analysis.common.runs.study import portable_paths
from analysis.common.stats.stats import ci_text
from analysis.reversal.options import ReversalArgs
from litelvlm.clip import load_clip
from litelvlm.data.refer import ReferRecord
from litelvlm.errors import LiteLVLMError
from litelvlm.machine.versions import run_versions
from litelvlm.registry.provenance import mark_weights, weights_banner
from litelvlm.registry.resolved_model import record
from litelvlm.runs.io import write_csv, write_json, write_parquet
from litelvlm.runs.run_folder import RunFolder

log = logging.getLogger(__name__)


def run_reversal(a: ReversalArgs, screen: Screen = Screen()) -> int:
    """Run ``litelvlm reversal`` with checked options (:func:`analysis.reversal.command.run` checks them);
    ``screen`` says what it prints."""
    records = load_records(a)
    # deferred: a rerun whose vision features and text embeddings are all cached never loads the model
    clip = load_clip(a.model, a.backend, device=a.device, dtype=getattr(torch, a.dtype), defer=True)
    layers = resolve_layers(a.layers, vision_num_layers(clip))
    prompts = prompts_for(records, a.text_template, a.seed)
    with RunFolder(a.out, owned=OPTIONAL_OUTPUTS, command="reversal") as folder:
        return _run_locked(a, clip, records, layers, prompts, folder, screen=screen)


#: outputs only some runs write: a run that does not write them removes those of an older run
OPTIONAL_OUTPUTS = ("similarity_maps.parquet",)


def _run_locked(a: ReversalArgs, clip, records: list[ReferRecord], layers: list[int], prompts: list[str],
                folder: RunFolder, extra_columns=None, *, screen: Screen) -> int:
    """Compute and write the results of a validated run while its ``--out`` folder is locked;
    ``extra_columns(df)`` adds columns to the rows (the video frames' names,
    :mod:`analysis.reversal.video`)."""
    maps: list = []
    t0 = time.perf_counter()
    emb, text_hit = cached_text_embeds(clip, prompts, a.text_batch_size, a.cache_dir, enabled=a.cache)
    df, counts = run_study(clip, records, {"original": emb}, layers, prompts=prompts, kind=a.similarity,
                           ks=a.ks, threshold=a.threshold, pad_to_square=a.pad_to_square,
                           cache_dir=a.cache_dir, use_cache=a.cache, batch_size=a.batch_size,
                           maps=maps, max_maps=a.save_maps, grid=a.grid)
    elapsed = time.perf_counter() - t0
    counts["text_cache_hit"] = text_hit
    if df.empty and counts.get("images_skipped_unreadable") and not counts.get("images_scored"):
        raise LiteLVLMError(f"no image could be read ({counts['images_skipped_unreadable']} unreadable); "
                            "nothing written")
    if df.empty:
        raise LiteLVLMError(f"no sentence could be scored ({counts}); nothing written")
    df = df.drop(columns=["variant"])
    if extra_columns is not None:
        df = extra_columns(df)
    df.insert(0, "model", clip.name)
    summary = summarise_reversal(df, a.ks, a.n_boot, a.seed)
    out = Path(a.out)
    write_parquet(out / "reversal.parquet", df)
    write_csv(out / "summary.csv", mark_weights(summary, clip.name))
    if maps:
        mp = pd.DataFrame(maps).sort_values(["image_id", "sent_id", "layer"], kind="stable")
        mp.insert(0, "model", clip.name)
        write_parquet(out / "similarity_maps.parquet", mp.reset_index(drop=True))
    folder.drop_stale(["similarity_maps.parquet"] if maps else [])
    write_json(out / "config.json", {"command": "reversal", "args": record(a), "clip": clip.describe(),
                                     "layers": layers, "versions": run_versions(), "counts": counts,
                                     "seconds": round(elapsed, 3), "paths": portable_paths(record(a), out),
                                     "torch_threads": torch_thread_count(), "run": run_record(screen.argv),
                                     **run_identity("reversal", a.model, family=CLIP_FAMILY)})
    overall = summary[summary["breakdown"] == "all"]
    for _, r in overall.iterrows():
        log.debug("layer %d: AUROC_reversed %.3f %s, reversed in %.0f%% of %d sentences",
                  r["layer"], r["auroc_reversed_mean"],
                  ci_text(r["auroc_reversed_ci_low"], r["auroc_reversed_ci_high"], n=r.get("n_images")),
                  100 * r["share_reversed"], r["n_sentences"])
    print(f"reversal: {counts.get('sentences_scored', 0)} of {len(records)} sentences scored on "
          f"{counts.get('images_scored', 0)} images; excluded: {counts_text(counts, 'excluded_')}; "
          f"cache {counts['cache_hits']} hits / {counts['cache_misses']} misses; wrote {out}")
    screen.headline("reversal", reversal_headline(overall), weights_banner(clip.name))
    return 0


#: the most layers the headline names one by one; past it, the strongest and the last
HEADLINE_LAYERS = 4


def reversal_headline(overall: pd.DataFrame, space: str = "CLIP") -> list[str]:
    """The run's answer in a few lines: the AUROC of reversed similarity (> 0.5: the referent's patches score
    lower than the rest) at the layers studied, with its interval over images and n."""
    if overall.empty:
        return []
    rows = overall.sort_values("layer")
    if len(rows) > HEADLINE_LAYERS:
        rows = rows.loc[sorted({rows["auroc_reversed_mean"].idxmax(), rows.index[-1]})]
    first = overall.iloc[0]
    n = f"n = {int(first['n_sentences'])} sentences on {int(first['n_images'])} images"
    per_layer = "; ".join(
        f"layer {int(r['layer'])} " + estimate(r["auroc_reversed_mean"], r["auroc_reversed_ci_low"],
                                               r["auroc_reversed_ci_high"], int(r["n_images"]), unit="images")
        for _, r in rows.iterrows())
    shown = "" if len(rows) == len(overall) else f" (strongest and last of {len(overall)} layers)"
    return [f"AUROC of reversed {space} similarity (0.5: none; > 0.5: the referent scores lower), {n}:",
            f"  {per_layer}{shown}"]
