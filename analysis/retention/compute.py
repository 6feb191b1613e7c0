"""Token retention tables: which patches every CLIP-side method keeps at each budget (``--model`` a CLIP), or
which visual tokens every method a model family runs keeps (``--model`` an LVLM:
:mod:`analysis.retention.pipeline`).

For each image and its referring expressions (all of them select together, as in the
official multi-expression setting; ``text`` joins them with `` | ``), one row per kept token and (method,
budget), naming the part of the method that chose it, read from its ``Selection.parts`` (LiteLVLM:
``similarity`` or ``context``; VisPruner: ``important``/``diverse``; VisionZip: ``dominant``/``contextual``;
none: ``kept``), plus a per-patch table of the scores behind the choice. The figure set ``retention`` draws
them like the paper's animation. Run as ``litelvlm retention --help``.

Outputs in ``--out``: ``retention.parquet`` (image_id, text, model, method, budget,
position, patch, part), ``retention_scores.parquet`` (image_id, text, model, patch, row,
col, similarity, context), ``images/<image_id>.png`` (the image as the model sees it,
after resize and crop) and ``config.json``; on a model family, ``retention.parquet`` adds ``stage``,
``prune_layer`` and ``num_visual`` (the image's N), ``retention_scores.parquet`` holds each selection's own
per-token ``score``, and ``visual_tokens.csv`` each image's N and token grid.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from analysis.common.runs.command import Screen
from analysis.common.runs.identity import CLIP_FAMILY, run_identity
from analysis.common.runs.run_record import run_record, torch_thread_count
from analysis.common.runs.study import portable_paths, read_json
from analysis.retention.options import RetentionArgs, model_family
from analysis.retention.parts import selection_parts
from analysis.retention.pipeline import family_methods, family_tables
from litelvlm.budget import Budget
from litelvlm.cli_args import split_list
from litelvlm.clip import load_clip
from litelvlm.data.refer import load_refs, open_rgb
from litelvlm.errors import LiteLVLMError, UnsupportedModelError
from litelvlm.image_resize import image_resize_kwargs
from litelvlm.methods import available_methods, get_method
from litelvlm.methods.select import select
from litelvlm.models.quantize import quantize_clip
from litelvlm.pruning import SelectorInputs, context_scores, similarity
from litelvlm.registry.families import exif_transpose, image_resize_record, load_pipeline
from litelvlm.registry.provenance import weights_banner
from litelvlm.registry.resolved_model import record
from litelvlm.runs.exclusions import announce_skipped_images
from litelvlm.runs.io import atomic_path, remove_result, write_csv, write_json, write_parquet
from litelvlm.runs.parts import read_parquet
from litelvlm.runs.run_folder import RunFolder

log = logging.getLogger(__name__)

RESULT_FILES = ("retention.parquet", "retention_scores.parquet")
SYNTHETIC_TEXTS = ["the red ball on the left", "the blue square"]


def synthetic_example(size: int = 336):
    """A deterministic synthetic scene (PIL image) and its referring expressions."""
    y, x = np.mgrid[0:size, 0:size] / size
    bg = np.stack([0.55 + 0.2 * x, 0.6 + 0.15 * y, 0.5 + 0.1 * (1 - x)], -1)
    im = Image.fromarray((bg * 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    s = size / 336
    d.ellipse([40 * s, 120 * s, 130 * s, 210 * s], fill=(210, 40, 40))
    d.rectangle([200 * s, 60 * s, 300 * s, 160 * s], fill=(40, 80, 200))
    d.polygon([(210 * s, 300 * s), (260 * s, 200 * s), (310 * s, 300 * s)], fill=(40, 160, 60))
    return im, list(SYNTHETIC_TEXTS)


def refer_examples(root: str | Path, limit: int, texts_per_image: int = 3,
                   image_dir: str | Path | None = None) -> list[tuple[str, Path, list[str]]]:
    """The first ``limit`` images of a REFER-layout folder (val split first), each with up to
    ``texts_per_image`` of its expressions: [(image_id, image path, [expression, ...])]; images are
    read from ``image_dir`` (default: ``<root>/images``)."""
    root = Path(root)
    refs_path = root / "refs(unc).p"
    if not refs_path.exists():
        raise LiteLVLMError(f"--refer-dir {str(root)!r} has no 'refs(unc).p' (REFER layout expected)")
    refs = sorted(load_refs(refs_path), key=lambda r: (r.get("split") != "val", r["image_id"], r["ref_id"]))
    images_root = Path(image_dir) if image_dir is not None else root / "images"
    if not images_root.is_dir():
        raise LiteLVLMError(f"image folder {str(images_root)!r} does not exist")
    by_image: dict[int, list] = {}
    for r in refs:
        if r["sentences"]:  # a ref without a sentence has nothing to select with
            by_image.setdefault(r["image_id"], []).append(r)
    if not by_image:
        raise LiteLVLMError(f"refs file {str(refs_path)!r} has no ref with a sentence")
    out = []
    for image_id, rs in list(by_image.items())[:limit]:
        name = rs[0].get("file_name")
        if not isinstance(name, str):
            raise LiteLVLMError(f"refs file {str(refs_path)!r}: ref {rs[0]['ref_id']} has no 'file_name'")
        img = images_root / name
        if not img.exists():  # REFER names files <image>_<ann>.jpg; the image is <image>.jpg
            img = images_root / ("_".join(Path(name).stem.split("_")[:-1]) + Path(name).suffix)
        if not img.exists():
            raise LiteLVLMError(f"image {str(img)!r} named by ref {rs[0]['ref_id']} does not exist")
        out.append(
            (str(image_id), img,
             [r["sentences"][0].get("sent", r["sentences"][0].get("raw", "")) for r in rs[:texts_per_image]]))
    return out


def retention_tables(clip, examples, budgets: list[Budget], methods: list[str],
                     seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """(kept-token table, per-patch score table, {image_id: display image}, metadata) for ``examples``."""
    n = clip.num_patches
    gr, gc = clip.grid
    # to N
    budgets = sorted({b.at_most(n) for b in Budget.parse_list(budgets)}, key=lambda b: b.column, reverse=True)
    rows, score_rows, images = [], [], {}
    for image_id, image, image_texts in examples:
        text = " | ".join(image_texts)
        pixels = clip.preprocess([image])
        with torch.no_grad():
            vision = clip.trace_image(pixels)
            texts = clip.encode_text(list(image_texts))
        images[image_id] = clip.to_display(pixels)[0].numpy()
        inputs = SelectorInputs(vision=vision, text=texts, seed=seed)
        sim = similarity(inputs, layer=inputs.feature_layer).min(0).values.float().cpu().numpy()
        ctx = context_scores(inputs).float().cpu().numpy()
        score_rows.append(pd.DataFrame({
            "image_id": image_id, "text": text, "model": clip.name, "patch": np.arange(n),
            "row": np.arange(n) // gc, "col": np.arange(n) % gc,
            "similarity": sim.astype(np.float64), "context": ctx.astype(np.float64)}))
        for method in methods:
            for k in budgets:
                sel = select(method, inputs, k)  # counted once, against the CLIP's patches
                kept = sel.indices.cpu().numpy().astype(np.int64)
                rows.append(pd.DataFrame({
                    "image_id": image_id, "text": text, "model": clip.name, "method": method,
                    "budget": k.column, "position": np.arange(kept.size), "patch": kept,
                    "part": selection_parts(sel, kept, n).astype(str)}))
    meta = {"grid": [gr, gc], "num_patches": n, "budgets": [b.column for b in budgets],
            "methods": list(methods)}
    return pd.concat(rows, ignore_index=True), pd.concat(score_rows, ignore_index=True), images, meta


def supported_methods(clip, methods: list[str], texts: list[str]) -> list[str]:
    """``methods`` without those this backend cannot run (e.g. ToMe on open_clip), each skip logged."""
    probe = SelectorInputs(vision=clip.trace_image(clip.preprocess([Image.new("RGB", (32, 32))])),
                           text=clip.encode_text(texts[:1], hidden_states=False))
    keep = []
    for m in methods:
        try:
            select(m, probe, 1)
        except UnsupportedModelError as e:
            log.info("retention: skipping %s (%s)", m, e)
            continue
        keep.append(m)
    return keep


def run_retention(a: RetentionArgs, screen: Screen = Screen()) -> Path:
    """Compute and write the retention tables for ``a`` (checked:
    :func:`analysis.retention.options.check_args`; ``screen.argv``: the command line config.json records);
    returns the output folder."""

    if model_family(a.model) is not None:
        return run_family_retention(a, screen)
    methods = split_list(a.methods) or available_methods("clip")
    for m in methods:
        if not get_method(m).acts_on_clip:
            raise LiteLVLMError(f"--methods: {m!r} acts {get_method(m).where}; retention draws CLIP-side "
                                f"methods: {', '.join(available_methods('clip'))}")
    skipped: list[dict] = []
    examples = study_examples(a, skipped)

    clip = load_clip(a.model, a.backend, dtype=None if a.dtype == "float32" else getattr(torch, a.dtype))
    if a.quantize != "none":
        if clip.backend != "hf":
            raise LiteLVLMError("--quantize quantizes a transformers CLIP (--backend hf); open_clip's "
                                "attention keeps its projections outside nn.Linear")
        quantize_clip(clip.modules(), a.quantize, a.quantize_backend, clip.device)
    if not split_list(a.methods):  # the default: every CLIP-side method this backend supports
        methods = supported_methods(clip, methods, examples[0][2])
    out = Path(a.out)
    with RunFolder(out, command="retention"):
        table, scores, images, meta = retention_tables(clip, examples, a.budgets, methods, a.seed)
        write_tables(a, out, table, scores, images, {**meta, "clip": clip.describe(), "skipped": skipped},
                     screen.argv)
    return out


def study_examples(a: RetentionArgs, skipped: list[dict]) -> list:
    """The (image_id, RGB image, texts) of ``a`` (``--refer-dir``'s first images, else the synthetic scene);
    unreadable images are appended to ``skipped``; a ``--compare-to`` without tables is an error."""
    if a.compare_to and not (Path(a.compare_to) / "retention.parquet").exists():
        raise LiteLVLMError(f"--compare-to {a.compare_to!r} holds no retention.parquet")
    if a.refer_dir:

        return readable_examples(refer_examples(a.refer_dir, a.limit_images, image_dir=a.image_dir), skipped,
                                 exif_transpose(a.model))
    im, texts = synthetic_example()
    return [("synthetic-0", im, texts)]


def write_tables(a: RetentionArgs, out: Path, table: pd.DataFrame, scores: pd.DataFrame, images: dict,
                 meta: dict, argv: tuple[str, ...] | None = None) -> None:
    """Write the images, both tables, config.json (``meta`` added to the options, ``argv`` the command line
    it records) and ``--compare-to``'s overlap."""
    for png in (out / "images").glob("*.png"):  # images of an older run with other examples
        if png.stem not in images:
            remove_result(png)
    for image_id, arr in images.items():
        with atomic_path(out / "images" / f"{image_id}.png") as tmp:
            Image.fromarray((arr * 255).round().astype(np.uint8)).save(tmp, format="png")
    write_parquet(out / "retention_scores.parquet", scores)
    write_parquet(out / "retention.parquet", table)
    skipped = meta.pop("skipped")
    # --image-resize recorded only for a family with a resize of its own (others as before)
    options = record(a)
    options.update(image_resize_record(options.pop("image_resize"), a.model))
    write_json(out / "config.json", {**options, **meta, "synthetic": a.refer_dir is None, "skipped": skipped,
                                      "paths": portable_paths(record(a), out),
                                     "torch_threads": torch_thread_count(),
                                      "run": run_record(argv),
                                     **run_identity("retention", a.model,
                                                    family=model_family(a.model) or CLIP_FAMILY)})
    if a.compare_to:
        write_csv(out / "overlap.csv",
                  kept_overlap(read_parquet(Path(a.compare_to) / "retention.parquet"), table))


def run_family_retention(a: RetentionArgs, screen: Screen = Screen()) -> Path:
    """The retention tables of the methods ``--model``'s family runs (:mod:`analysis.retention.pipeline`):
    every method it cannot run refused, and the pipeline loaded, before anything is written."""
    if a.quantize != "none" or a.backend:
        raise LiteLVLMError(f"--model {str(a.model)!r} is an LVLM: --quantize and --backend are for a CLIP "
                            "model")
    pipe = load_pipeline(a.model, device="cpu", dtype=getattr(torch, a.dtype),
                         **image_resize_kwargs(a.image_resize))
    methods = family_methods(pipe, split_list(a.methods), a)
    skipped: list[dict] = []
    examples = study_examples(a, skipped)
    out = Path(a.out)
    with RunFolder(out, command="retention"):
        table, scores, images, meta = family_tables(pipe, a.model, examples, a.budgets, methods,
                                                    a.seed)
        write_csv(out / "visual_tokens.csv", meta.pop("visual_tokens"))
        write_tables(a, out, table, scores, images, {**meta, "lvlm": pipe.describe(), "skipped": skipped},
                     screen.argv)
    return out


def kept_overlap(ref: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Per (image, method, budget) present in both retention tables: tokens kept by each and the share of
    ``other``'s kept tokens that ``ref`` keeps too."""
    keys = ["image_id", "method", "budget"]
    a = ref.groupby(keys)["patch"].agg(frozenset).rename("ref")
    b = other.groupby(keys)["patch"].agg(frozenset).rename("other")
    both = pd.concat([a, b], axis=1, join="inner").reset_index()
    both["kept"] = both["other"].map(len)
    both["overlap"] = [len(x & y) / max(len(y), 1) for x, y in zip(both["ref"], both["other"])]
    return both[[*keys, "kept", "overlap"]].sort_values(keys, kind="stable").reset_index(drop=True)


def readable_examples(examples: list[tuple[str, Path, list[str]]], skipped: list[dict],
                      exif: bool = True) -> list:
    """(image_id, RGB image, texts) of the examples whose image opens, turned by its EXIF tag when ``exif``
    (as the model's family reads images: :func:`litelvlm.registry.families.exif_transpose`); the others are
    logged and appended to ``skipped``; none readable is an error."""
    out = []
    for image_id, path, texts in examples:
        try:  # PIL's convert("RGB"), after the family's EXIF turn; any decoding failure is a skip
            out.append((image_id, open_rgb(path, exif_transpose=exif), texts))
        except LiteLVLMError as e:
            log.warning("skipped image %s: %s", path, e)
            skipped.append({"image_id": image_id, "path": str(path), "reason": str(e)})
    announce_skipped_images(skipped, {}, len(examples), log, what="images")
    if not out:
        raise LiteLVLMError(f"no image could be read ({len(skipped)} unreadable, e.g. {skipped[0]['path']}); "
                            "nothing written")
    return out


def load_retention(results_dir: str | Path) -> dict:
    """The retention tables of a results folder: {"retention", "scores", "images", "config"}."""
    d = Path(results_dir)
    missing = [f for f in RESULT_FILES if not (d / f).exists()]
    if missing:
        raise LiteLVLMError(f"no retention results in {str(d)!r} (missing {', '.join(missing)}); make them "
                            f"with `litelvlm retention --out {d}`")
    table = read_parquet(d / "retention.parquet")
    images = {}
    for image_id in table["image_id"].unique():
        with Image.open(d / "images" / f"{image_id}.png") as im:
            images[image_id] = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    config = read_json(d / "config.json") if (d / "config.json").exists() else {}
    return {"retention": table, "scores": read_parquet(d / "retention_scores.parquet"), "images": images,
            "config": config}


def run_and_report(a: RetentionArgs, screen: Screen = Screen()) -> int:
    """``litelvlm retention`` with checked options: write the retention tables and print what was done (as
    ``screen`` says)."""
    out = run_retention(a, screen)
    skipped = read_json(Path(out) / "config.json").get("skipped", [])
    print(f"retention tables written to {out}; {len(skipped)} image(s) skipped as unreadable")
    if a.compare_to:
        ov = pd.read_csv(Path(out) / "overlap.csv").groupby(["method", "budget"])["overlap"].mean().unstack()
        screen.show_table(f"kept tokens shared with {a.compare_to} (mean over images; "
                          f"overlap.csv):\n{ov.round(3).to_string()}",
                          Path(out) / "overlap.csv", f"kept tokens shared with {a.compare_to}")
    screen.headline("retention", retention_headline(read_parquet(Path(out) / "retention.parquet"),
                                                    pd.read_csv(Path(out) / "overlap.csv") if a.compare_to
                                                    else None, a.compare_to),
                    weights_banner(a.model))
    return 0


def retention_headline(table: pd.DataFrame, overlap: pd.DataFrame | None = None,
                       compare_to: str | None = None) -> list[str]:
    """The answer in a few lines: at the smallest budget, which part of each method chose its kept tokens
    (share of the kept tokens, mean over images; methods with one part left out), and with ``--compare-to``
    the mean share of kept tokens the two runs share, with its interval over images and n."""
    if table.empty:
        return []
    n = table["image_id"].nunique()
    k = table["budget"].min()
    at = table[table["budget"] == k]
    shares = (at.groupby(["method", "image_id"])["part"].value_counts(normalize=True).unstack(fill_value=0)
              .groupby(level="method", sort=False).mean().stack())   # a part an image lacks counts 0 there
    shares = shares[shares > 0]
    parts = [f"{m} " + " + ".join(f"{part} {100 * v:.0f}%" for part, v in g.droplevel(0).sort_values(
        ascending=False).items()) for m, g in shares.groupby(level=0, sort=False) if len(g) > 1]
    lines = [f"at K={k} (the smallest budget), which part chose the kept tokens, mean over n = {n} images:"]
    lines += ["  " + "; ".join(parts[i:i + 4]) for i in range(0, len(parts), 4)] or [
        "  every method keeps by one rule"]
    if overlap is not None and not overlap.empty:
        means = overlap[overlap["budget"] == overlap["budget"].min()].groupby("method")["overlap"]
        shown = "; ".join(f"{m} {g.mean():.3f} (n = {len(g)} images)" for m, g in means)
        lines.append(f"kept tokens shared with {compare_to} at K={overlap['budget'].min()}: {shown}")
    return lines
