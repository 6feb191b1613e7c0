"""The reversal measurement of CLIP's patch-text similarity over referent masks, shared by ``reversal``
(study 1) and ``sink`` (study 2 re-runs it on ablated text): the metrics, the layers, the sentences and
their prompts, one pass over the images (:func:`run_study`) and the bootstrap summary.

For every sentence and requested vision layer, the similarity ``s_i`` of each patch token
(projected into the joint space) with the sentence's ``text_embeds`` is compared with the
referent mask on the patch grid (a patch is inside when its coverage ``c_i >= 0.5``):

* ``auroc_reversed``: AUROC of ``-s`` for "inside" (ties one half); > 0.5 means reversal;
* ``gap``: (mean s inside - mean s outside) / std of s over all patches;
* for each k: share of inside patches among the k lowest-s and k highest-s tokens, and the
  random expectation n_in / N (NaN when k > N: a "top-k" of every patch carries no ranking).
"""

from __future__ import annotations

import functools
import logging
import random
from collections import Counter

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.common.measures.merged_grid import CLIP_GRID, merged_coverage, merged_weights
from analysis.common.options.defaults import DEFAULT_KS
from analysis.common.runs.features_cache import VisionFeatureCache
from analysis.common.stats.stats import area_bins, auroc, bootstrap_ci, length_bins, wilcoxon_vs
from litelvlm.cli_args import split_list
from litelvlm.data.geometry import PatchCoverage, patch_coverage
from litelvlm.data.refer import ReferRecord, load_coco_instances, load_refer
from litelvlm.data.templates import format_question
from litelvlm.errors import LiteLVLMError
from litelvlm.registry.families import card
from litelvlm.runs.exclusions import Exclusions, one_line, skip_cause

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------
def reversal_metrics(s: np.ndarray, inside: np.ndarray, ks=DEFAULT_KS) -> dict[str, np.ndarray]:
    """Study 1's metrics for score rows ``s`` (R, N) against one referent's ``inside`` (N,) bool."""
    s = np.atleast_2d(np.asarray(s, dtype=np.float64))
    inside = np.asarray(inside, dtype=bool)
    n = s.shape[1]
    n_in = int(inside.sum())
    out: dict[str, np.ndarray] = {
        "n_in": np.full(len(s), n_in), "n_out": np.full(len(s), n - n_in),
        "auroc_reversed": auroc(-s, inside),
    }
    std = s.std(1)
    mean_in = s[:, inside].mean(1) if n_in else np.full(len(s), np.nan)
    mean_out = s[:, ~inside].mean(1) if n_in < n else np.full(len(s), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["gap"] = np.where(std > 0, (mean_in - mean_out) / std, np.nan)
    order = np.argsort(s, axis=1, kind="stable")
    ins = inside[order].astype(np.float64)  # (R, N) inside flags in ascending-s order
    for k in ks:
        if k > n:
            nan = np.full(len(s), np.nan)
            out[f"low_in_share_k{k}"], out[f"high_in_share_k{k}"], out[f"rand_in_share_k{k}"] = nan, nan, nan
            continue
        out[f"low_in_share_k{k}"] = ins[:, :k].mean(1)
        out[f"high_in_share_k{k}"] = ins[:, n - k:].mean(1)
        out[f"rand_in_share_k{k}"] = np.full(len(s), n_in / n)
    return out


def similarity_rows(text: torch.Tensor, patches: torch.Tensor, kind: str = "dot") -> np.ndarray:
    """(T, N) similarity of text embeddings (T, D) with projected patches (N, D), in float64."""
    t = text.detach().cpu().numpy().astype(np.float64)
    p = patches.detach().cpu().numpy().astype(np.float64)
    if kind == "cosine":
        t = t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), 1e-12)
        p = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-12)
    # a plain (non-BLAS) contraction: the result does not depend on batch layout or memory
    # alignment (BLAS kernels vary with both), so cached and fresh features give equal bytes,
    # and it avoids BLAS call overhead on these small products.
    return np.einsum("td,nd->tn", t, p, optimize=False)


# --------------------------------------------------------------------------------------------
# the study, reusable (the sink ablation runs it with other text representations)
# --------------------------------------------------------------------------------------------
def vision_num_layers(clip) -> int:
    """L, the number of vision encoder blocks (hidden_states has L+1 entries)."""
    return clip.vision_layers


def resolve_layers(spec: list[str] | None, num_layers: int) -> list[int]:
    """``--layers`` values to sorted hidden_states indices; default (L-1, L); ``all`` is 0..L."""
    if not spec:
        return [num_layers - 1, num_layers]
    values = split_list(spec)
    if any(v.lower() == "all" for v in values):
        return list(range(num_layers + 1))
    out = set()
    for v in values:
        try:
            i = int(v)
        except ValueError:
            raise LiteLVLMError(f"--layers: {v!r} is not an integer or 'all'") from None
        if not 0 <= i <= num_layers:
            raise LiteLVLMError(f"--layers: {i} is out of range; layers are non-negative indices into "
                                f"hidden_states, 0..{num_layers} for this model")
        out.add(i)
    return sorted(out)


def load_records(args) -> list[ReferRecord]:
    """Records from ``--refer-dir`` or ``--coco-instances``, cut to ``--limit-sentences``."""
    if bool(args.refer_dir) == bool(args.coco_instances):
        raise LiteLVLMError("give exactly one of --refer-dir or --coco-instances")
    if args.refer_dir:
        recs = load_refer(args.refer_dir, args.image_dir, args.dataset, args.split_by, args.split)
    else:
        recs = load_coco_instances(args.coco_instances, args.image_dir, args.split)
    if args.limit_sentences is not None:   # >= 1: its declaration (analysis.common.options.clip_args)
        recs = recs[:args.limit_sentences]
    if not recs:
        raise LiteLVLMError("no sentences to process (check --split / --limit-sentences)")
    return recs


#: ``--text-template``'s value that feeds CLIP the sentence as given (any other names a family: its questions)
PLAIN_TEMPLATE = "plain"


@functools.cache
def family_questions(family: str) -> tuple[str, ...]:
    """The referring-segmentation question templates of ``family`` (its card's ``questions``)."""
    return tuple(card(family).questions.get())


def template_text(template: str, sentence: str, key: int | str, seed: int) -> str:
    """The text fed to CLIP for ``sentence``: as given (:data:`PLAIN_TEMPLATE`), or wrapped in one of the
    questions of the family ``template`` names, chosen by (``seed``, ``key``) alone as
    :func:`litelvlm.data.templates.wrap_question` chooses (this project's option, not a family's protocol)."""
    if template == PLAIN_TEMPLATE:
        return sentence
    return format_question(random.Random(f"{seed}:{key}").choice(family_questions(template)), sentence)


def prompts_for(records: list[ReferRecord], template: str, seed: int) -> list[str]:
    """The text fed to CLIP for each record (:func:`template_text`)."""
    return [template_text(template, r.sentence, r.sent_id, seed) for r in records]


def referent_coverage(records: list[ReferRecord], clip, pad_to_square: bool, grid: str = CLIP_GRID
                      ) -> dict[tuple[int, int, int, int], PatchCoverage | str]:
    """Coverage per (image_id, ann_id, height, width) for the records (a message if the mask fails), on CLIP's
    patches (``grid`` :data:`CLIP_GRID`) or on the merged grid of the family ``grid`` names."""
    out: dict = {}
    for r in records:
        key = (r.image_id, r.ann_id, r.height, r.width)
        if key in out:
            continue
        try:
            out[key] = (patch_coverage(r.mask(), clip.geometry, clip.grid, pad_to_square) if grid == CLIP_GRID
                        else merged_coverage(r.mask(), grid))
        except Exception as e:  # malformed segmentation: count it, never fatal
            out[key] = f"mask_error: {e}"
    return out


def run_study(clip, records: list[ReferRecord], text_variants: dict[str, torch.Tensor], layers: list[int], *,
              prompts: list[str] | None = None, kind: str = "dot", ks=DEFAULT_KS, threshold: float = 0.5,
              pad_to_square: bool = False, cache_dir: str | None = None, use_cache: bool = True,
              batch_size: int = 8, desc: str = "reversal", maps: list | None = None,
              # > 60 lines: one batched pass over images; its loop state is shared
              max_maps: int = 0, grid: str = CLIP_GRID) -> tuple[pd.DataFrame, dict]:
    """Study 1 over ``records`` for each text representation in ``text_variants`` (name -> (T, D)).

    Returns the rows (sorted by image, ref, sentence, layer, variant) and a counts dict
    (sentences scored / excluded by reason, images skipped, cache hits and misses). With a
    ``maps`` list, the per-patch similarities of the first ``max_maps`` scored sentences
    (first variant) are appended to it as dict rows. ``grid`` a family's name: the similarities and the
    referent are put on that family's merged tokens (:mod:`analysis.common.measures.merged_grid`).
    """
    counts: Counter = Counter()
    left_out = Exclusions("sentences")
    cov = referent_coverage(records, clip, pad_to_square, grid)
    by_image: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        reason = cov[(r.image_id, r.ann_id, r.height, r.width)]
        reason = reason if isinstance(reason, str) else reason.exclusion_reason(threshold)
        if reason is not None:
            counts[f"excluded_{reason.split(':')[0]}"] += 1
            left_out.add(reason.split(":")[0].replace("_", " "), f"image {r.image_id} annotation {r.ann_id}"
                         + (f" ({one_line(reason.split(':', 1)[1])})" if ":" in reason else ""))
            continue
        by_image.setdefault(r.image_id, []).append(i)
    cache = VisionFeatureCache(clip, layers, pad_to_square, cache_dir, enabled=use_cache)
    items = [(img, records[idx[0]].image_path) for img, idx in sorted(by_image.items())]
    rows: list[pd.DataFrame] = []
    for image_id, entry, err in tqdm(cache.iter_features(items, batch_size), total=len(items), desc=desc,
                                     unit="img"):
        idx = by_image[image_id]
        if entry is None:
            log.warning("skipped image %s: %s", image_id, err)
            counts["images_skipped_unreadable"] += 1
            counts["excluded_image_unreadable"] += len(idx)
            left_out.add(skip_cause(str(err)), f"image {image_id}: {one_line(err)}", len(idx))
            continue
        first = records[idx[0]]
        size = tuple(int(x) for x in entry["size"].tolist())
        if size != (first.height, first.width):
            log.warning("skipped image %s: file is %sx%s but the annotation says %sx%s", image_id,
                        size[0], size[1], first.height, first.width)
            counts["images_skipped_size_mismatch"] += 1
            counts["excluded_image_size_mismatch"] += len(idx)
            left_out.add("image size mismatch", f"image {image_id}: file is {size[0]}x{size[1]} but the "
                         f"annotation says {first.height}x{first.width} (height x width)", len(idx))
            continue
        counts["images_scored"] += 1
        onto = None if grid == CLIP_GRID else merged_weights(clip.geometry, clip.grid, *size, grid).T
        for ann_id in sorted({records[i].ann_id for i in idx}):
            sel = [i for i in idx if records[i].ann_id == ann_id]
            c = cov[(image_id, ann_id, first.height, first.width)]
            inside = c.inside(threshold)
            for variant, emb in text_variants.items():
                txt = emb[sel]
                for layer in layers:
                    s = similarity_rows(txt, entry[f"layer_{layer}"], kind)
                    s = s if onto is None else s @ onto
                    m = reversal_metrics(s, inside, ks)
                    if maps is not None and variant == next(iter(text_variants)):
                        for j, i in enumerate(sel):
                            if len({mp["sent_id"] for mp in maps} | {records[i].sent_id}) <= max_maps:
                                maps.append({"image_id": records[i].image_id, "ann_id": records[i].ann_id,
                                             "sent_id": records[i].sent_id, "sentence": records[i].sentence,
                                             "layer": layer, "rows": int(c.coverage.shape[0]),
                                             "cols": int(c.coverage.shape[1]), "similarity": s[j].tolist(),
                                             "coverage": c.coverage.reshape(-1).tolist()})
                    part = pd.DataFrame({
                        "image_id": [records[i].image_id for i in sel],
                        "ref_id": [records[i].ref_id for i in sel],
                        "ann_id": [records[i].ann_id for i in sel],
                        "sent_id": [records[i].sent_id for i in sel],
                        "sentence": [records[i].sentence for i in sel],
                        "text": [prompts[i] if prompts else records[i].sentence for i in sel],
                        "category": [records[i].category for i in sel],
                        "split": [records[i].split for i in sel],
                        "n_words": [len(records[i].sentence.split()) for i in sel],
                        "variant": variant, "layer": layer,
                        "mask_area_fraction": c.mask_area_fraction, "crop_cut_share": c.crop_cut_share,
                        "n_patches": len(inside), **m})
                    rows.append(part)
        counts["sentences_scored"] += len(idx)
    counts["cache_hits"], counts["cache_misses"] = cache.hits, cache.misses
    counts["sentences_total"] = len(records)
    left_out.announce(len(records), log)
    if not rows:
        return pd.DataFrame(), dict(counts)
    df = pd.concat(rows, ignore_index=True)
    df = df.sort_values(["image_id", "ref_id", "sent_id", "layer", "variant"],
                        kind="stable").reset_index(drop=True)
    for col in ("n_in", "n_out", "n_patches", "n_words", "layer"):
        df[col] = df[col].astype("int64")
    return df, dict(counts)


def summarise_reversal(df: pd.DataFrame, ks=DEFAULT_KS, n_boot: int = 1000, seed: int = 0,
                       extra_keys: tuple[str, ...] = ()) -> pd.DataFrame:
    """Aggregates per layer (and ``extra_keys``), overall and by area bin, category, length and split.

    Columns: breakdown, group, layer, n_sentences, n_images, auroc_reversed_mean/ci_low/ci_high
    (bootstrap over images), share_reversed (AUROC_reversed > 0.5), wilcoxon_stat/p (per-image
    mean AUROC_reversed vs 0.5, two-sided), gap_mean/ci_low/ci_high and the mean k-shares.
    """
    if df.empty:
        return pd.DataFrame()
    d = df.copy()
    d["area_bin"] = area_bins(d["mask_area_fraction"]).astype(str)
    d["length_bin"] = length_bins(d["n_words"]).astype(str)
    d["all"] = "all"
    out = []
    for breakdown in ("all", "area_bin", "category", "length_bin", "split"):
        keys = [*extra_keys, "layer", breakdown]
        for key, sub in d.groupby(keys, sort=True, observed=True):
            key = key if isinstance(key, tuple) else (key,)
            row = dict(zip(keys[:-1], key[:-1]))
            row.update({"breakdown": breakdown, "group": str(key[-1]), "n_sentences": len(sub),
                        "n_images": int(sub["image_id"].nunique())})
            a, g = sub["auroc_reversed"].to_numpy(), sub["image_id"].to_numpy()
            row["auroc_reversed_mean"], row["auroc_reversed_ci_low"], row["auroc_reversed_ci_high"] = \
                bootstrap_ci(a, g, n_boot, seed)
            row["share_reversed"] = float(np.nanmean(a > 0.5)) if len(a) else np.nan
            row["wilcoxon_stat"], row["wilcoxon_p"], _ = wilcoxon_vs(a, g, 0.5)
            row["gap_mean"], row["gap_ci_low"], row["gap_ci_high"] = \
                bootstrap_ci(sub["gap"].to_numpy(), g, n_boot, seed)
            for k in ks:
                for part in ("low", "high", "rand"):
                    col = f"{part}_in_share_k{k}"
                    row[f"{col}_mean"] = float(sub[col].mean()) if sub[col].notna().any() else np.nan
            out.append(row)
    cols = ["breakdown", "group", *extra_keys, "layer"]
    res = pd.DataFrame(out)
    return res[cols + [c for c in res.columns if c not in cols]]
