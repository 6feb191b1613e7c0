"""``litelvlm demo``: the main job on the bundled toy CLIP and synthetic scenes, offline, in minutes.

1. writes a small synthetic referring-segmentation set (REFER layout) into a work folder;
2. shows which tokens every CLIP-side selection method keeps on a few scenes;
3. runs study 1 (``litelvlm reversal``) and study 2 (``litelvlm sink``) on the set through
   the real data loader and the real commands;
4. draws their figures into ``--out`` and prints a short summary.

``--model`` swaps in any CLIP that ``load_clip`` accepts (a local ``save_pretrained``
folder with real weights, ``local-dir:...`` for open_clip, ``tiny-random``...).
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.common.presentation.style import weights_footnote
from analysis.common.runs.command import Screen
from analysis.common.stats.stats import ci_text
from analysis.demo.options import DemoArgs
from analysis.demo.plots import plot_demo_reversal_hist, plot_demo_selection_grid, plot_demo_similarity_maps
from litelvlm.cli import main
from litelvlm.clip import load_clip
from litelvlm.data.geometry import patch_coverage
from litelvlm.data.refer import load_refer
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import available_methods, get_method
from litelvlm.methods.select import visual_features
from litelvlm.pruning import SelectorInputs
from litelvlm.registry.provenance import weights_banner, weights_kind
from litelvlm.registry.resolved_model import record
from litelvlm.runs.io import copy_file, save_plot, write_csv, write_json
from litelvlm.runs.run_folder import RunFolder
from litelvlm.toy import default_model_path
from litelvlm.toy.refer_layout import write_refer

log = logging.getLogger(__name__)
def resolve_model(model: str | None) -> str:
    """``--model`` or the bundled toy CLIP's folder."""
    if model:
        return model

    return str(default_model_path())


def _cli(argv: list[str], screen: Screen) -> None:
    """Run ``litelvlm ARGV``; its own printed summary only when ``screen`` is verbose (the demo prints the
    headlines)."""
    log.info("litelvlm %s", " ".join(argv))
    loud = screen.verbose
    with contextlib.nullcontext() if loud else contextlib.redirect_stdout(io.StringIO()):
        rc = main(["-v", *argv] if loud else argv)
    if rc != 0:
        raise LiteLVLMError(f"`litelvlm {' '.join(argv)}` failed with exit status {rc} (see the message "
                            "above)")


def selection_figure(clip, records, show: int, budget: float, seed: int):
    """Token selection of every CLIP-side method on the first ``show`` images; returns
    ``(fig, table)`` with the share of referent patches each method kept."""
    picked = _pick_records(records, show)
    n = clip.num_patches
    K = max(1, min(n, int(round(budget * n))))
    methods = available_methods("clip")
    images, captions, inside = [], [], []
    sel: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    rows = []
    for r in picked:
        px = clip.preprocess([r.image()])
        vision = clip.trace_image(px)
        text = clip.encode_text([r.sentence])
        ins = patch_coverage(r.mask(), clip.geometry, clip.grid).inside(0.5)
        images.append(clip.to_display(px)[0].numpy())
        captions.append(r.sentence)
        inside.append(ins)
        for m in methods:
            spec = get_method(m)
            inputs = SelectorInputs(vision=vision, text=text if spec.needs_text else None, seed=seed)
            _, s = visual_features(inputs, m, K)
            kept = s.indices.cpu().numpy().astype(int)
            sel[m].append(kept)
            rows.append({"image_id": r.image_id, "ann_id": r.ann_id, "sentence": r.sentence, "method": m,
                         "budget": K, "n_patches": n, "n_inside": int(ins.sum()),
                         "referent_kept_share": (float(ins[kept[kept >= 0]].sum()) / int(ins.sum())
                                                 if ins.any() else float("nan"))})
    fig, _ = plot_demo_selection_grid(images, captions, inside, sel, clip.grid, budget=K)
    return fig, pd.DataFrame(rows), (picked, images, captions, inside)


def _pick_records(records, show: int):
    """One sentence per image for the first ``show`` images: the longest (most attributes)."""
    by_image: dict[int, list] = {}
    for r in records:
        by_image.setdefault(r.image_id, []).append(r)
    out = []
    for image_id in sorted(by_image)[:show]:
        out.append(max(by_image[image_id], key=lambda r: (len(r.sentence.split()), -r.sent_id)))
    return out


def similarity_figure(clip, picked, images, captions, inside, layer: int):
    """Patch-text similarity maps (the quantity study 1 ranks) for the shown scenes."""
    sims = []
    for r in picked:
        vision = clip.trace_image(clip.preprocess([r.image()]))
        text = clip.encode_text([r.sentence], hidden_states=False).text_embeds.float()
        sims.append((vision.projected(layer)[0].float() @ text[0]).numpy())
    fig, _ = plot_demo_similarity_maps(images, captions, sims, inside, clip.grid, layer)
    return fig


def selection_headline(table) -> dict:
    """The share of referent patches each method kept, averaged over the scorable shown scenes (those
    with at least one referent patch on the grid), with their count ``n`` and the scenes shown."""
    scorable = table[table["n_inside"] > 0]
    shares = scorable.groupby("method")["referent_kept_share"].mean().round(4).to_dict()
    return {"referent_kept_share": shares, "scenes_scorable": int(scorable["image_id"].nunique()),
            "scenes_shown": int(table["image_id"].nunique())}


def _save(fig, out: Path, name: str, model: str | None = None) -> Path:
    weights_footnote(fig, model)
    path = save_plot(fig, out / f"{name}.png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def run_demo(a: DemoArgs, screen: Screen = Screen()) -> int:
    # > 60 lines: the demo's steps in order: data, both studies, figures, summary
    """Run the demo with checked options (:func:`analysis.demo.command.run` checks them); with a verbose
    ``screen`` the studies it runs print their own summaries too."""
    model = resolve_model(a.model)
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise LiteLVLMError(f"--out {str(out)!r} exists and is not a folder")
    t0 = time.perf_counter()
    clip = load_clip(model, a.backend, device=a.device)  # fail early on a bad --model
    tmp_work = a.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="litelvlm-demo-")) if tmp_work else Path(a.work_dir)
    try:
        with RunFolder(out, command="demo"):   # the demo's tables and figures reach --out together
            data = work / "data"
            write_refer(data, a.scenes, a.seed, size=224, split="val", sentences_per_object=2, overwrite=True)
            records = load_refer(data, data / "images", split="val")
            print(f"demo: {len(records)} referring expressions on {a.scenes} synthetic scenes; model {model}")

            figures: list[Path] = []
            fig, sel_table, shown = selection_figure(clip, records, a.show, a.budget_share, a.seed)
            figures.append(_save(fig, out, "selection_overlay", model))
            write_csv(out / "selection.csv", sel_table)
            feature_layer = clip.trace_image(clip.preprocess([records[0].image()])).num_layers - 1
            figures.append(
                _save(similarity_figure(clip, *shown, layer=feature_layer), out, "similarity_maps", model))

            n = clip.num_patches
            ks = sorted({max(1, n // 8), max(1, n // 4), max(1, n // 2)})
            common = ["--model", model, "--refer-dir", str(data), "--split", "val",
                      "--n-boot", str(a.n_boot), "--device", a.device]
            if a.backend:
                common += ["--backend", a.backend]
            rev_dir = work / "results" / "reversal"
            _cli(["reversal", "--out", str(rev_dir), *common, "--ks", *map(str, ks)], screen)
            rev = pd.read_parquet(rev_dir / "reversal.parquet")
            rev_summary = pd.read_csv(rev_dir / "summary.csv")
            figures.append(_save(plot_demo_reversal_hist(rev, model=model)[0], out, "reversal_auroc", model))
            overall = rev_summary[rev_summary["breakdown"] == "all"].sort_values("layer")
            reversal = [{k: (float(r[k]) if k != "layer" else int(r[k])) for k in
                         ("layer", "auroc_reversed_mean", "auroc_reversed_ci_low", "auroc_reversed_ci_high",
                          "share_reversed", "n_sentences", "n_images")} for _, r in overall.iterrows()]
            copy_file(rev_dir / "summary.csv", out / "reversal_summary.csv")

            sink, sink_ablation = run_sink(work / "results" / "sink", common, data / "images", out, screen)

            headline = selection_headline(sel_table)
            summary = {"model": a.model or "litelvlm/toy/weights", "weights": weights_kind(model),
                       "weights_hash": clip.weights_hash(), "grid": list(clip.grid),
                       "scenes": a.scenes, "sentences": len(records), "scene_seed": a.seed,
                       "selection_budget": int(sel_table["budget"].iloc[0]),
                       "selection_referent_kept_share": headline["referent_kept_share"],
                       "selection_scenes_scorable": headline["scenes_scorable"],
                       "selection_scenes_shown": headline["scenes_shown"],
                       "reversal": reversal, "sink": sink, "sink_ablation": sink_ablation,
                       "figures": [p.name for p in figures],
                       # what was run, not where or how long: the same command writes the same bytes into any
                       # --out
                       "args": {k: v for k, v in record(a).items() if k not in ("out", "work_dir")}}
            write_json(out / "demo_summary.json", summary)
    finally:
        if tmp_work:
            shutil.rmtree(work, ignore_errors=True)
    _print_summary(summary, out, weights_banner(model), seconds=time.perf_counter() - t0)
    return 0


def run_sink(sink_dir: Path, common: list[str], image_dir: Path, out: Path, screen: Screen
             ) -> tuple[dict, list[dict]]:
    """Study 2 through ``litelvlm sink``, with the sink ablation on the images; returns its headline
    numbers and, per vision layer, the AUROC of reversed similarity for each text representation."""
    _cli(["sink", "--out", str(sink_dir), *common, "--image-dir", str(image_dir)], screen)
    summary = pd.read_csv(sink_dir / "summary.csv")
    copy_file(sink_dir / "summary.csv", out / "sink_summary.csv")
    ablation: list[dict] = []
    abl_path = sink_dir / "ablation_summary.csv"
    if abl_path.exists():
        abl = pd.read_csv(abl_path)
        copy_file(abl_path, out / "sink_ablation_summary.csv")
        abl = abl[abl["breakdown"] == "all"]
        for layer, sub in abl.groupby("layer", sort=True):
            row = {"layer": int(layer), "n_sentences": int(sub["n_sentences"].max())}
            row.update({str(v): float(x) for v, x in zip(sub["variant"], sub["auroc_reversed_mean"])})
            if "original" in row:
                ablation.append(row)
    return sink_headline(summary), ablation


def sink_headline(summary) -> dict:
    """[EOS]'s attention share on [SOS] and on the content tokens, head-averaged, per text block and
    averaged over blocks, with the uniform baseline 1/n beside them."""
    per_layer = summary[summary["head"] == -1].sort_values("layer")
    return {"n_sentences": int(per_layer["n_sentences"].max()),
            "sos_mean": float(per_layer["sos_mean"].mean()), "sos_max": float(per_layer["sos_mean"].max()),
            "content_mean": float(per_layer["content_sum_mean"].mean()),
            "uniform_mean": float(per_layer["uniform_mean"].mean()),
            "per_layer_sos": [round(float(v), 4) for v in per_layer["sos_mean"]]}


#: fewer scorable scenes than this: the selection shares illustrate the figure, they compare no methods
FEW_SCENES = 10


def summary_lines(s: dict, out: Path, banner: str | None = None, seconds: float = float("nan")) -> list[str]:
    """The demo's closing summary: every headline number with its n (sentences, images or scenes) and its K
    (kept tokens) or N (all tokens ranked) beside it."""
    N = s["grid"][0] * s["grid"][1]
    lines = [f"litelvlm demo: {s['sentences']} expressions on {s['scenes']} scenes, model {s['model']} "
             f"(grid {s['grid'][0]}x{s['grid'][1]}, N = {N} tokens), {seconds:.0f} s"]
    if banner:
        lines.append(f"  {banner}")
    n, shown, K = s["selection_scenes_scorable"], s["selection_scenes_shown"], s["selection_budget"]
    if n:
        few = (f"; n < {FEW_SCENES}: an illustration of the figure, not a comparison of methods" if n
               < FEW_SCENES else "")
        lines.append(f"  token selection (K = {K} of N = {N}, n = {n} of {shown} shown scenes with a "
                     f"referent patch{few}): share of referent patches kept: " +
                     ", ".join(f"{m} {v:.0%}" for m, v in s["selection_referent_kept_share"].items()))
    else:
        lines.append(f"  token selection (K = {K} of N = {N}): none of the {shown} shown scenes has a "
                     "referent patch (>= 50% inside the mask); nothing to score")
    for r in s["reversal"]:
        verdict = "reversed (referent ranked LOW)" if r["auroc_reversed_ci_low"] > 0.5 else (
            "not reversed (referent ranked HIGH)" if r["auroc_reversed_ci_high"] < 0.5
            else "no clear direction")
        ci = ci_text(r["auroc_reversed_ci_low"], r["auroc_reversed_ci_high"], "95% CI ", r["n_images"])
        lines.append(f"  reversal, layer {r['layer']} (n = {r['n_sentences']:.0f} sentences on "
                     f"{r['n_images']:.0f} images, all N = {N} tokens ranked): AUROC of reversed similarity "
                     f"{r['auroc_reversed_mean']:.3f} {ci} -> {verdict}")
    sink = s["sink"]
    lines.append(f"  sink (n = {sink['n_sentences']} sentences): [EOS]->[SOS] attention share "
                 f"{sink['sos_mean']:.3f} (mean over text blocks; max {sink['sos_max']:.3f}; uniform 1/n "
                 f"{sink['uniform_mean']:.3f}; content tokens together {sink['content_mean']:.3f})")
    for r in s.get("sink_ablation", []):
        lines.append(f"  sink ablation, layer {r['layer']} (n = {r['n_sentences']} sentences, all N = {N} "
                     f"tokens ranked): AUROC_reversed {r['original']:.3f} original -> " +
                     ", "
                     .join(f"{k} {v:.3f}" for k,
                           v in r.items() if k not in ("layer", "original", "n_sentences")))
    lines.append(f"  figures: {out}/ ({', '.join(Path(p).name for p in s['figures'])}); numbers: "
                 f"{out}/demo_summary.json")
    return lines


def _print_summary(s: dict, out: Path, banner: str | None = None, seconds: float = float("nan")) -> None:
    print("\n" + "\n".join(summary_lines(s, out, banner, seconds)))
