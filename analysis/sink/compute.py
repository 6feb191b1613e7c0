"""Study 2, ``litelvlm sink``: where does the text encoder's [EOS] query look?

For every sentence, text-encoder layer (block ``b``, whose attention reads
``hidden_states[b]``) and head, the share of the [EOS] query's attention on [SOS], on
[EOS] itself, and on the content tokens in between (their sum and their maximum), next to
the uniform baseline 1/n (n = number of visible keys = eos_index + 1). Texts are encoded
in batches; each block's [EOS] rows for the whole batch come from ``TextTrace.eos_attention``.

With ``--image-dir`` (and ``--refer-dir``) it also runs the ablation: Study 1's metrics
with the original ``text_embeds``, with [SOS] masked out of [EOS]'s attention from each
``--ablate-from`` block on (``sos_masked_from<b>``), and with the mean of the content
tokens (``content_mean``), side by side.

Outputs ``OUT/sink.parquet`` (sentence x layer x head), ``OUT/summary.csv`` (per layer and
head, plus head-averaged rows with ``head = -1``), ``OUT/config.json``; with the ablation also
``OUT/ablation.parquet`` and ``OUT/ablation_summary.csv``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.common.measures.clip_reversal import (
    load_records,
    prompts_for,
    resolve_layers,
    run_study,
    summarise_reversal,
    template_text,
    vision_num_layers,
)
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import CLIP_FAMILY, run_identity
from analysis.common.runs.run_record import run_record, torch_thread_count
from analysis.common.runs.study import portable_paths
from analysis.common.stats.stats import bootstrap_ci, wilcoxon_paired
from analysis.sink.headline import ablation_headline, ablation_lines, sink_headline
from analysis.sink.options import SinkArgs
from analysis.sink.text_ablation import content_mean_embeds, rerun_text_tower
from litelvlm.clip import load_clip
from litelvlm.data.expressions import load_expressions
from litelvlm.errors import LiteLVLMError
from litelvlm.machine.versions import run_versions
from litelvlm.registry.provenance import mark_weights, weights_banner
from litelvlm.registry.resolved_model import record
from litelvlm.runs.io import write_csv, write_json, write_parquet
from litelvlm.runs.run_folder import RunFolder

log = logging.getLogger(__name__)

SINK_COLUMNS = ("sos", "eos", "content_sum", "content_max", "uniform")


@torch.no_grad()
def eos_shares(trace) -> dict[str, np.ndarray]:
    """(L, T, H) arrays: [EOS]'s attention share on [SOS], itself, content sum / max, and 1/n.

    One ``eos_attention`` call per block covers the whole batch.
    """
    rows = torch.stack([trace.eos_attention(b).float() for b in range(trace.num_layers)])  # (L, T, H, S)
    L, T, H, S = rows.shape
    eos = trace.eos_index.to(torch.long).to(rows.device)
    pos = torch.arange(S, device=rows.device)
    content = ((pos[None] >= 1) & (pos[None] < eos[:, None]))[None, :, None, :]  # (1, T, 1, S)
    at_eos = rows.gather(-1, eos.view(1, T, 1, 1).expand(L, T, H, 1))[..., 0]
    csum = (rows * content).sum(-1)
    cmax = rows.masked_fill(~content, float("-inf")).amax(-1)
    cmax = torch.where(torch.isinf(cmax), torch.full_like(cmax, float("nan")), cmax)
    uniform = (1.0 / (eos.float() + 1))[None, :, None].expand(L, T, H)
    return {"sos": rows[..., 0].double().numpy(), "eos": at_eos.double().numpy(),
            "content_sum": csum.double().numpy(), "content_max": cmax.double().numpy(),
            "uniform": uniform.double().numpy()}


def sink_table(clip, texts: list[str], meta: pd.DataFrame, batch_size: int = 256,
               ablate_from: list[int] | None = None, progress: bool = True,
               checks: dict | None = None) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    # > 60 lines: the batched pass with its ablation re-runs and check, then the table, in order
    """The sink rows (text x layer x head, ordered by text index) and, optionally, ablation embeddings.

    Texts are processed in length-sorted batches (less padding); ``meta`` (one row per text)
    supplies the id columns. Returns ``(rows, {variant: (T, D) embeddings})``. With the
    ablation, the text tower is also re-run from each ``ablate_from`` block with NOTHING
    masked; the largest deviation from ``text_embeds`` goes to ``checks["consistency_max_abs_diff"]``
    (it must be ~0: the re-run reproduces the model), and a deviation over 1e-3 relative fails.
    """
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    parts: list[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]] = []
    variants: dict[str, list[tuple[np.ndarray, torch.Tensor]]] = {}
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    for idx in tqdm(batches, desc="sink", unit="batch", disable=not progress):
        trace = clip.encode_text([texts[i] for i in idx], batch_size=len(idx), hidden_states=True,
                                 warn_truncation=False, eos_rows=True)
        parts.append((np.asarray(idx), eos_shares(trace), trace.eos_index.numpy() + 1,
                      np.asarray(trace.truncated)))
        if ablate_from is not None:
            variants.setdefault("original", []).append((np.asarray(idx), trace.text_embeds.float().cpu()))
            ref = trace.text_embeds.float().cpu()
            for b in ablate_from:
                same = rerun_text_tower(clip, trace, b, mask_sos=False)
                diff = float((same - ref).abs().max())
                scale = float(ref.abs().max()) or 1.0
                if checks is not None:
                    checks["consistency_max_abs_diff"] = max(checks.get("consistency_max_abs_diff", 0.0),
                                                             diff)
                if diff > 1e-3 * scale:
                    raise RuntimeError(f"ablation consistency check failed: re-running text blocks >= {b} "
                                       f"with nothing masked changes text_embeds by {diff:.3g} (scale "
                                       f"{scale:.3g})")
                variants.setdefault(f"sos_masked_from{b}", []).append(
                    (np.asarray(idx), rerun_text_tower(clip, trace, b, mask_sos=True)))
            variants.setdefault("content_mean", []).append(
                (np.asarray(idx), content_mean_embeds(clip, trace)))
    L, _, H = parts[0][1]["sos"].shape
    n_text = len(texts)
    vals = {c: np.empty((n_text, L, H)) for c in SINK_COLUMNS}
    n_tok = np.empty(n_text, dtype=np.int64)
    trunc = np.empty(n_text, dtype=bool)
    for idx, sh, n, tr in parts:
        for c in SINK_COLUMNS:
            vals[c][idx] = sh[c].transpose(1, 0, 2)
        n_tok[idx], trunc[idx] = n, tr
    rep = L * H
    df = meta.loc[meta.index.repeat(rep)].reset_index(drop=True)
    df["n_tokens"] = np.repeat(n_tok, rep)
    df["truncated"] = np.repeat(trunc, rep)
    df["layer"] = np.tile(np.repeat(np.arange(L, dtype=np.int64), H), n_text)
    df["head"] = np.tile(np.arange(H, dtype=np.int64), n_text * L)
    for c in SINK_COLUMNS:
        df[c] = vals[c].reshape(-1)
    embeds = {}
    for name, chunks in variants.items():
        full = torch.empty(n_text, chunks[0][1].shape[1])
        for idx, e in chunks:
            full[torch.as_tensor(idx)] = e
        embeds[name] = full
    return df, embeds


def token_strings(clip, ids: list[int]) -> list[str]:
    """Readable token strings for ``ids`` with the backend's tokenizer (BPE word ends stripped)."""
    tok = clip.tokenizer
    if hasattr(tok, "convert_ids_to_tokens"):
        out = tok.convert_ids_to_tokens(ids)
    else:
        dec = getattr(tok, "decoder", {})
        out = [dec.get(int(i), str(int(i))) for i in ids]
    return [str(t).replace("</w>", "") for t in out]


@torch.no_grad()
def eos_attention_examples(clip, texts: list[str], n: int) -> pd.DataFrame:
    """Per layer and token position, the head-averaged [EOS] attention of the first ``n`` texts."""
    texts = texts[:n]
    if not texts:
        return pd.DataFrame()
    trace = clip.encode_text(texts, batch_size=len(texts), hidden_states=True, warn_truncation=False,
                             eos_rows=True)
    rows = torch.stack([trace.eos_attention(b).float().mean(1) for b in range(trace.num_layers)])  # (L, T, S)
    parts = []
    for t, eos in enumerate(trace.eos_index.tolist()):
        toks = token_strings(clip, trace.input_ids[t, :eos + 1].tolist())
        for layer in range(trace.num_layers):
            parts.append(pd.DataFrame({"text_index": t, "sentence": texts[t], "layer": layer,
                                       "position": np.arange(eos + 1), "token": toks,
                                       "attention": rows[layer, t, :eos + 1].double().numpy()}))
    return pd.concat(parts, ignore_index=True)


def summarise_sink(df: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per (layer, head): mean and std of each share and the uniform baseline; per layer (head = -1):
    the head-averaged shares with a bootstrap CI over sentences for the [SOS] share."""
    g = df.groupby(["layer", "head"], sort=True)
    per = g[list(SINK_COLUMNS)].mean().add_suffix("_mean")
    per = per.join(g[["sos", "eos", "content_sum"]].std().add_suffix("_std")).reset_index()
    per.insert(2, "n_sentences", g.size().to_numpy())
    per["sos_over_uniform"] = per["sos_mean"] / per["uniform_mean"]
    rows = []
    for layer, sub in df.groupby("layer", sort=True):
        head_avg = sub.groupby("text_index", sort=True)[list(SINK_COLUMNS)].mean()
        row = {"layer": layer, "head": -1, "n_sentences": len(head_avg)}
        for c in SINK_COLUMNS:
            row[f"{c}_mean"] = float(head_avg[c].mean())
        _, row["sos_ci_low"], row["sos_ci_high"] = bootstrap_ci(head_avg["sos"].to_numpy(), None, n_boot,
                                                                seed)
        row["sos_over_uniform"] = row["sos_mean"] / row["uniform_mean"]
        rows.append(row)
    return pd.concat([per, pd.DataFrame(rows)], ignore_index=True)


def summarise_ablation(df: pd.DataFrame, ks, n_boot: int, seed: int) -> pd.DataFrame:
    """Study 1's summary per variant, plus a paired Wilcoxon (per image) of each variant vs original."""
    summ = summarise_reversal(df, ks, n_boot, seed, extra_keys=("variant",))
    base = df[df["variant"] == "original"].set_index(["sent_id", "layer"])["auroc_reversed"]
    tests = []
    for (variant, layer), sub in df.groupby(["variant", "layer"], sort=True):
        if variant == "original":
            continue
        s = sub.set_index(["sent_id", "layer"])
        x, y = s["auroc_reversed"], base.reindex(s.index)
        stat, p, n = wilcoxon_paired(x.to_numpy(), y.to_numpy(), s["image_id"].to_numpy())
        tests.append({"variant": variant, "layer": layer, "breakdown": "all", "delta_vs_original":
                      float(np.nanmean(x.to_numpy() - y.to_numpy())), "paired_wilcoxon_stat": stat,
                      "paired_wilcoxon_p": p})
    if tests:
        summ = summ.merge(pd.DataFrame(tests), on=["variant", "layer", "breakdown"], how="left")
    return summ


def _texts_and_meta(a) -> tuple[list[str], pd.DataFrame, list | None]:
    """(texts, meta rows, records or None) from --expressions or a REFER / COCO source."""
    if a.expressions:
        exprs = load_expressions(a.expressions)
        if a.limit_sentences is not None:   # >= 1: its declaration (analysis.common.options.clip_args)
            exprs = exprs[:a.limit_sentences]
        if not exprs:
            raise LiteLVLMError(f"{a.expressions!r} holds no expressions")
        texts = [template_text(a.text_template, e.text, e.index, a.seed) for e in exprs]
        meta = pd.DataFrame({"text_index": np.arange(len(exprs), dtype=np.int64),
                             "sent_id": np.full(len(exprs), -1, dtype=np.int64),
                             "image": [e.image for e in exprs], "sentence": [e.text for e in exprs],
                             "text": texts})
        return texts, meta, None
    recs = load_records(a)
    texts = prompts_for(recs, a.text_template, a.seed)
    meta = pd.DataFrame({"text_index": np.arange(len(recs), dtype=np.int64),
                         "sent_id": np.array([r.sent_id for r in recs], dtype=np.int64),
                         "image": [r.image_path.name for r in recs], "sentence": [r.sentence for r in recs],
                         "text": texts})
    return texts, meta, recs


def run_sink(a: SinkArgs, screen: Screen = Screen()) -> int:
    """Run ``litelvlm sink`` with checked options (:func:`analysis.sink.command.run` checks them); ``screen``
    says what it prints."""
    texts, meta, records = _texts_and_meta(a)
    ablation = records is not None  # the images of --refer-dir (or --image-dir); --expressions has none
    clip = load_clip(a.model, a.backend, device=a.device, dtype=getattr(torch, a.dtype))
    n_text_layers = clip.text_layers
    for b in a.ablate_from:
        if not 0 <= b < n_text_layers:
            raise LiteLVLMError(f"--ablate-from {b}: text blocks are 0..{n_text_layers - 1} for this model")
    layers = resolve_layers(a.layers, vision_num_layers(clip)) if ablation else []
    with RunFolder(a.out, owned=OPTIONAL_OUTPUTS, command="sink") as folder:
        return _run_locked(a, clip, texts, meta, records, layers, folder, screen)


#: why a run has no ablation (printed in the summary line and kept in config.json)
ABLATION_SKIPPED = "skipped: --expressions holds texts only (give --refer-dir or --coco-instances for images)"
#: outputs only some runs write: a run that does not write them removes those of an older run
OPTIONAL_OUTPUTS = ("eos_attention_examples.parquet", "ablation.parquet", "ablation_summary.csv")


def _run_locked(a: SinkArgs, clip, texts: list[str], meta: pd.DataFrame, records: list | None,
                # > 60 lines: the writes of one locked run, in order
                layers: list[int], folder: RunFolder, screen: Screen) -> int:
    """Compute and write the results of a validated run while its ``--out`` folder is locked."""
    ablation = bool(layers)
    t0 = time.perf_counter()
    checks: dict = {}
    df, embeds = sink_table(clip, texts, meta, a.text_batch_size,
                            ablate_from=sorted(set(a.ablate_from)) if ablation else None, checks=checks)
    t_sink = time.perf_counter() - t0
    df.insert(0, "model", clip.name)
    out = Path(a.out)
    summary = summarise_sink(df, a.n_boot, a.seed)
    counts: dict = {"sentences": len(texts),
                    "truncated": int(df.groupby("text_index")["truncated"].first().sum())}
    abl_df = abl_sum = None
    if ablation:
        abl_df, abl_counts = run_study(clip, records, embeds, layers, prompts=texts, kind=a.similarity,
                                       ks=a.ks, threshold=a.threshold, pad_to_square=a.pad_to_square,
                                       cache_dir=a.cache_dir, use_cache=a.cache, batch_size=a.batch_size,
                                       desc="ablation")
        counts["ablation"] = abl_counts
        counts["ablation_consistency_max_abs_diff"] = checks.get("consistency_max_abs_diff")
        if abl_df.empty:
            if abl_counts.get("images_skipped_unreadable"):
                raise LiteLVLMError("ablation: no image could be read "
                                    f"({abl_counts['images_skipped_unreadable']} unreadable); nothing "
                                    "written")
            log.warning("ablation: no sentence could be scored (%s)", abl_counts)
            counts["ablation_skipped"] = "skipped: no sentence could be scored (no referent patch inside)"
            abl_df = None
        else:
            abl_df.insert(0, "model", clip.name)
            abl_sum = summarise_ablation(abl_df, a.ks, a.n_boot, a.seed)
    else:
        counts["ablation_skipped"] = ABLATION_SKIPPED
    examples = eos_attention_examples(clip, texts, a.examples)
    write_parquet(out / "sink.parquet", df)
    written = []
    if not examples.empty:
        write_parquet(out / "eos_attention_examples.parquet", examples)
        written.append("eos_attention_examples.parquet")
    write_csv(out / "summary.csv", mark_weights(summary, clip.name))
    if abl_df is not None:
        write_parquet(out / "ablation.parquet", abl_df)
        write_csv(out / "ablation_summary.csv", mark_weights(abl_sum, clip.name))
        written += ["ablation.parquet", "ablation_summary.csv"]
    folder.drop_stale(written)
    write_json(out / "config.json", {"command": "sink", "args": record(a), "clip": clip.describe(),
                                     "vision_layers": layers, "versions": run_versions(), "counts": counts,
                                     "seconds_sink": round(t_sink, 3),
                                     "paths": portable_paths(record(a), out),
                                     "torch_threads": torch_thread_count(), "run": run_record(screen.argv),
                                     **run_identity("sink", a.model, family=CLIP_FAMILY)})
    per_layer = summary[summary["head"] == -1]
    for _, r in per_layer.iterrows():
        log.debug("text layer %d: [EOS]->[SOS] %.3f (uniform %.3f), ->itself %.3f, ->content %.3f",
                 r["layer"], r["sos_mean"], r["uniform_mean"], r["eos_mean"], r["content_sum_mean"])
    print(f"sink: {len(texts)} sentences x {df['layer'].nunique()} layers x {df['head'].nunique()} heads "
          f"in {t_sink:.1f}s; ablation "
          f"{'done' if abl_df is not None else counts.get('ablation_skipped', 'not run')}; wrote {out}")
    if abl_df is not None:
        screen.show_table(ablation_lines(abl_sum), out / "ablation_summary.csv",
                          "ablation AUROC per layer and text variant")
    screen.headline("sink", sink_headline(per_layer) + ablation_headline(abl_sum), weights_banner(clip.name))
    return 0
