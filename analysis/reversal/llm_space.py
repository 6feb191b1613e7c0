"""The reversal asked in the LLM's input space (``litelvlm reversal --space llm --grid unipixel --model
UNIPIXEL``; this project's study option).

Does the similarity LiteLVLM would read in UniPixel's LLM input space rank the referent LOW? For every
sentence, the relevance of each merged token to the prompt's instruction
(:func:`litelvlm.llm.relevance.prompt_relevance`: the cosine of the merged tokens, UniPixel's LLM input
embeddings, with the mean instruction-token embedding of the protocol's prompt, as OpenVINO's CDPruner port
scores Qwen tokens; min-max normalised, which keeps the order) is compared with the referent mask on the
merged grid (:func:`analysis.common.measures.merged_grid.merged_coverage`), by the study's metrics
(:func:`analysis.common.measures.clip_reversal.reversal_metrics`). No CLIP is loaded; the one "layer" is the
LLM input, recorded as layer 0.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.common.measures.clip_reversal import load_records, reversal_metrics, summarise_reversal
from analysis.common.measures.merged_grid import grid_protocol, merged_coverage
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import run_identity
from analysis.common.runs.run_record import run_record, torch_thread_count
from analysis.common.runs.study import portable_paths
from analysis.reversal.compute import reversal_headline
from analysis.reversal.options import ReversalArgs
from litelvlm.errors import LiteLVLMError
from litelvlm.llm.relevance import prompt_relevance
from litelvlm.machine.versions import run_versions
from litelvlm.registry.families import card, exif_transpose, family_of, load_pipeline
from litelvlm.registry.provenance import mark_weights, weights_banner
from litelvlm.registry.resolved_model import record
from litelvlm.runs.exclusions import Exclusions, one_line
from litelvlm.runs.io import write_csv, write_json, write_parquet
from litelvlm.runs.run_folder import RunFolder

log = logging.getLogger(__name__)

#: what the run's config.json says the scores are
SPACE_NOTE = ("the relevance of the family's merged tokens to the prompt's mean instruction-token embedding "
              "in the LLM's input space (litelvlm.llm.relevance; this project's study option)")


def _inside(records, threshold: float, family: str) -> tuple[dict, Counter]:
    """Coverage per referent on the merged grid, and the sentences excluded (by reason, also said on
    screen)."""
    counts: Counter = Counter()
    left_out = Exclusions("sentences")
    cov: dict = {}
    for r in records:
        key = (r.image_id, r.ann_id)
        if key not in cov:
            try:
                cov[key] = merged_coverage(r.mask(), family)
            except Exception as e:  # malformed segmentation: count it, never fatal
                cov[key] = f"mask_error: {e}"
        c = cov[key]
        reason = c if isinstance(c, str) else c.exclusion_reason(threshold)
        if reason is not None:
            counts[f"excluded_{reason.split(':')[0]}"] += 1
            left_out.add(reason.split(":")[0].replace("_", " "), f"image {r.image_id} annotation {r.ann_id}"
                         + (f" ({one_line(reason.split(':', 1)[1])})" if ":" in reason else ""))
    left_out.announce(len(records), log)
    return cov, counts


def _row(r, prompt: str, c, metrics: dict, n: int) -> dict:
    return {"image_id": r.image_id, "ref_id": r.ref_id, "ann_id": r.ann_id, "sent_id": r.sent_id,
            "sentence": r.sentence, "text": prompt, "category": r.category, "split": r.split,
            "n_words": len(r.sentence.split()), "layer": 0, "mask_area_fraction": c.mask_area_fraction,
            "crop_cut_share": c.crop_cut_share, "n_patches": n, **{k: v[0] for k, v in metrics.items()}}


@torch.no_grad()
def llm_space_study(pipe, records, ks, threshold: float = 0.5,
                    max_maps: int = 0) -> tuple[pd.DataFrame, dict, list]:
    """(rows, counts, similarity maps) of the reversal in ``pipe``'s LLM input space over ``records``."""
    question = grid_protocol(pipe.family).question
    cov, counts = _inside(records, threshold, pipe.family)
    by_image: dict[int, list] = {}
    for r in records:
        c = cov[(r.image_id, r.ann_id)]
        if not isinstance(c, str) and c.exclusion_reason(threshold) is None:
            by_image.setdefault(r.image_id, []).append(r)
    rows, maps = [], []
    for image_id, recs in tqdm(sorted(by_image.items()), desc="reversal (LLM space)", unit="img"):
        image = recs[0].image(exif_transpose(pipe))
        prepared = pipe.prepare_image(image, seed=0)
        for r in sorted(recs, key=lambda r: (r.ref_id, r.sent_id)):
            c = cov[(r.image_id, r.ann_id)]
            inside = c.inside(threshold)
            if pipe.num_visual(prepared) != inside.size:
                raise LiteLVLMError(f"image {image_id}: {pipe.num_visual(prepared)} merged tokens, but the "
                                    f"merged grid of the study has {inside.size}")
            s = prompt_relevance(pipe, pipe.with_sentences(prepared, [r.sentence])).double().cpu().numpy()
            rows.append(
                _row(r, question(r.sentence), c, reversal_metrics(s[None], inside.reshape(-1), ks), s.size))
            if len({m["sent_id"] for m in maps} | {r.sent_id}) <= max_maps:
                maps.append(
                    {"image_id": r.image_id, "ann_id": r.ann_id, "sent_id": r.sent_id, "sentence": r.sentence,
                             "layer": 0, "rows": int(c.coverage.shape[0]), "cols": int(c.coverage.shape[1]),
                             "similarity": s.tolist(), "coverage": c.coverage.reshape(-1).tolist()})
        counts["images_scored"] += 1
        counts["sentences_scored"] += len(recs)
    counts["sentences_total"] = len(records)
    df = pd.DataFrame(rows)
    if not df.empty:
        df = df.sort_values(["image_id", "ref_id", "sent_id"], kind="stable").reset_index(drop=True)
        for col in ("n_in", "n_out", "n_patches", "n_words", "layer"):
            df[col] = df[col].astype("int64")
    return df, dict(counts), maps


def run_llm_space(a: ReversalArgs, screen: Screen = Screen()) -> int:
    """Run ``litelvlm reversal --space llm`` with checked options (:func:`analysis.reversal.command.run`);
    ``screen`` says what it prints."""

    if family_of(a.model) != a.grid:
        raise LiteLVLMError("--space llm reads the LLM input space of a model of the --grid family "
                            f"({a.grid}); --model {str(a.model)!r} is not one (e.g. "
                            f"{card(a.grid).default_model} or a {card(a.grid).display_name} checkpoint "
                            "folder)")
    records = load_records(a)
    pipe = load_pipeline(a.model, device=a.device, dtype=getattr(torch, a.dtype))
    t0 = time.perf_counter()
    with RunFolder(a.out, owned=("similarity_maps.parquet",), command="reversal") as folder:
        df, counts, maps = llm_space_study(pipe, records, a.ks, a.threshold, a.save_maps)
        if df.empty:
            raise LiteLVLMError(f"no sentence could be scored ({counts}); nothing written")
        df.insert(0, "model", str(a.model))
        summary = summarise_reversal(df, a.ks, a.n_boot, a.seed)
        out = Path(a.out)
        write_parquet(out / "reversal.parquet", df)
        write_csv(out / "summary.csv", mark_weights(summary, a.model))
        if maps:
            mp = pd.DataFrame(maps).sort_values(["image_id", "sent_id"], kind="stable")
            mp.insert(0, "model", str(a.model))
            write_parquet(out / "similarity_maps.parquet", mp.reset_index(drop=True))
        folder.drop_stale(["similarity_maps.parquet"] if maps else [])
        write_json(out / "config.json", {"command": "reversal", "args": record(a),
                                         "clip": {"model": str(a.model), "space": "llm",
                                                  "scores": SPACE_NOTE},
                                         "model": pipe.describe(), "layers": [0], "versions": run_versions(),
                                         "counts": counts, "seconds": round(time.perf_counter() - t0, 3),
                                         "paths": portable_paths(record(a), out),
                                         "torch_threads": torch_thread_count(),
                                         "run": run_record(screen.argv),
                                         **run_identity("reversal", a.model)})
    print(f"reversal (LLM input space): {counts.get('sentences_scored', 0)} of {len(records)} sentences "
          f"scored on {counts.get('images_scored', 0)} images; wrote {out}")
    screen.headline("reversal", reversal_headline(summary[summary["breakdown"] == "all"], "LLM-input-space"),
                    weights_banner(a.model))
    return 0


__all__ = ["SPACE_NOTE", "llm_space_study", "run_llm_space"]
