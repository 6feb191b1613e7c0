"""``litelvlm select``: which visual tokens a method keeps for one image and its text(s).

Indices are patch indices (0..N-1, raster order over the patch grid, CLS excluded), in
the order the tokens would be fed to the LLM. With a grounding model as ``--model`` (GLaMM, UniPixel), the
family's pipeline runs the method (:mod:`litelvlm.commands.select_family`).
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass

from ..budget import Budget
from ..cli_args import MethodFlags, add_dataclass_arguments, arg, from_namespace
from ..errors import LiteLVLMError
from ..image_resize import image_resize_arg
from ..methods import TABLE, VARIANTS, available_methods, describe, get_method, method_names
from ..models.model_spec import CLIP_MODEL_HELP, COMMAND_CLIP_MODEL, ModelSpec
from ..registry.families import (
    DEFAULT_MODEL,
    card_of,
    cards,
    check_budgets_fit,
    check_image_model,
    check_image_resize,
    family_or_clip,
    names_family,
)
from ..runs.io import save_plot
from ..shared_options import clip_backend_option, model_option, seed_option
from .select_family import _load_image, run_family


@dataclass
class SelectArgs(MethodFlags):
    """Options of ``litelvlm select``, with every method's own flags (``--fastv-layer``, ...: the
    registry's)."""

    image: str = arg(None, help="image file (required unless --list-methods)")
    text: list[str] = arg(None, help="a text query (repeat --text for several); methods that use "
                                     "no text accept none", flag="--text", nargs="append")
    budget: Budget = arg(None, help="visual tokens to keep: K, 1 <= K <= N, or all (required unless "
                         "--list-methods)")
    model: ModelSpec = model_option(COMMAND_CLIP_MODEL, help=f"CLIP model ({CLIP_MODEL_HELP}): hub id or "
                                    "local save_pretrained dir (hf); ARCH:TAG, ARCH:/ckpt.pt or "
                                    "local-dir:PATH (open_clip); or tiny-random[:SEED], tiny336-random, "
                                    "vit-l-14-336-random; or a grounding model of any family (a random "
                                    f"preset such as {DEFAULT_MODEL}, or a checkpoint folder), whose "
                                    "pipeline then runs the method on its own visual tokens")
    method: str = arg("litelvlm", help="selection method (see --list-methods)")
    backend: str | None = clip_backend_option()
    seed: int = seed_option("seed for random methods")
    image_resize: str = image_resize_arg()
    raster: bool = arg(False, help="re-sort the kept indices into raster order")
    pad: bool = arg(False, help="LLaVA-style pad-to-square preprocessing instead of the centre crop")
    json: bool = arg(False, help="print {method, budget, grid, indices, weights} as JSON (weights: random, "
                                 "toy or real)")
    save_overlay: str = arg(None, help="save a PNG of the image with the kept tokens highlighted")


def add_arguments(parser) -> None:
    add_dataclass_arguments(parser, SelectArgs)
    parser.add_argument("--list-methods", action="store_true",
                        help="list the methods and exit; with --json, each method's attention_weights (the "
                             "LLM decoder layers whose attention weights it reads, for the depth of "
                             f"{DEFAULT_MODEL}), tower_attention_weights and flash_compatible "
                             "(docs/library.md)")


#: ``Selection.parts`` entries that are not sets of token indices (a pick order, a merge map, counts)
NOT_INDEX_SETS = ("order", "assignment", "size", "schedule")
#: kept entries that are no patch (see :class:`litelvlm.pruning.selection.Selection`)
NON_PATCH = {-1: "cls", -2: "merged"}
#: what a negative index in a selection stands for, as the summary explains it
NON_PATCH_MEANING = {-1: "the [CLS] token (VisionZip passes it on)",
                     -2: "one token merging all pruned ones (PruMerge)"}


def kept_per_part(indices: list[int], parts: dict) -> dict[str, int]:
    """How many of the kept ``indices`` each part of a selection supplied: an index counts for the
    first part that holds it (LiteLVLM: similarity before the context ranking); empty without parts."""
    sets = {k: {int(i) for i in v.flatten().tolist()} for k, v in parts.items() if k not in NOT_INDEX_SETS}
    if not sets:
        return {}
    counts = dict.fromkeys(sets, 0)
    for i in indices:
        name = next((k for k, s in sets.items() if i in s), NON_PATCH.get(i, "other"))
        counts[name] = counts.get(name, 0) + 1
    return counts


def _list_methods(as_json: bool = False) -> int:
    """``--list-methods``: every name and its line, from the registry's table alone (no method module, no
    torch); ``as_json``: :func:`methods_record` as JSON (imports every method)."""
    if as_json:
        print(json.dumps(methods_record()))
        return 0
    width = max(map(len, method_names()))
    for name in method_names():
        print(f"{name:{width}s}  {describe(name)}")
    return 0


def methods_record(model: str = DEFAULT_MODEL) -> dict:
    """``{model, llm_layers, methods: [{name, description, stage, options, variants, attention_weights,
    tower_attention_weights, flash_compatible}]}``: each method as its module declares it (stage, option
    flags, the backbones with a variant of their own), its variant for ``model``'s family, and the LLM decoder
    layers whose attention weights it reads on ``model``'s LLM depth (read from the family's cost description:
    no weights load)."""
    card = card_of(model)
    cost = card.cost.get() if card.cost is not None else None
    preset = card.preset(model)
    arch_name = cost.arch_of_preset(preset) if cost is not None and preset is not None else None
    if arch_name is None:
        raise LiteLVLMError(f"--list-methods --json: no LLM depth is known for {model} without loading it")
    arch = cost.arch(arch_name)
    layers = int(arch.llm.llm_layers)
    rows = []
    for name in method_names():
        spec = arch.spec(name)
        rows.append({"name": name, "description": describe(name), "stage": TABLE[name].stage,
                     "options": [o.flag for o in TABLE[name].options],
                     "variants": sorted(bb for n, bb in VARIANTS if n == name),
                     "attention_weights": spec.attention_layers(layers),
                     "tower_attention_weights": spec.tower_attention_weights,
                     "flash_compatible": spec.flash_compatible})
    return {"model": model, "llm_layers": layers, "methods": rows}


def run(ns) -> int:
    if ns.list_methods:
        return _list_methods(ns.json)
    a = from_namespace(SelectArgs, ns)
    a.model = family_or_clip(a.model)   # resolved once, a family's model or a CLIP
    missing = [f"--{n}" for n in ("image", "budget") if getattr(a, n) is None]
    if missing:
        raise LiteLVLMError(f"{' and '.join(missing)} required (or --list-methods)")
    check_image_model(a.model, "select")   # a video family's model: before anything loads
    check_image_resize(a.image_resize, a.model)   # a family with a resize of its own, before anything loads
    check_budgets_fit(a.model, [a.budget], "--budget")   # above the family card's N: before anything loads
    from ..methods.select import visual_features
    from ..pruning import SelectorInputs

    if names_family(a.model):  # a grounding model (GLaMM, UniPixel): its pipeline, every method it runs

        return run_family(a)
    spec = get_method(a.method)  # unknown method -> error listing the known ones
    if spec.acts_with_llm:
        raise LiteLVLMError(f"method {a.method!r} acts {spec.where} and needs a grounding model (--model "
                            f"{' or '.join(c.default_model for c in cards() if c.input == 'image')}, or a "
                            f"checkpoint folder); CLIP-side methods: {', '.join(available_methods('clip'))}")
    texts = a.text or []
    if spec.needs_text and not texts:
        raise LiteLVLMError(f"method {a.method!r} needs at least one --text")
    if a.save_overlay and not a.save_overlay.lower().endswith(".png"):
        raise LiteLVLMError(f"--save-overlay must name a .png file, got {a.save_overlay!r}")
    image = _load_image(a.image)
    from ..clip import load_clip

    clip = load_clip(a.model, a.backend)
    pixels = clip.preprocess([image], pad_to_square=a.pad)
    vision = clip.trace_image(pixels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = clip.encode_text(texts) if texts else None
    for w in caught:
        print(f"litelvlm select: warning: {w.message}", file=sys.stderr)
    inputs = SelectorInputs(vision=vision, text=text, seed=a.seed)
    _, sel = visual_features(inputs, a.method, a.budget, **spec.options_from(a))  # counts the budget once
    k = len(sel)
    indices = [int(i) for i in sel.indices.tolist()]
    if a.raster:  # the same kept set, re-sorted (for every method: no method's own raster option is needed)
        indices = sorted(indices)
    result = {"method": a.method, "budget": k, "grid": list(clip.grid), "indices": indices}
    from ..registry.provenance import weights_banner, weights_kind

    banner = weights_banner(a.model)
    result["weights"] = weights_kind(a.model)   # "random", "toy" or "real"
    if a.save_overlay:
        _save_overlay(a, k, clip, pixels, indices, texts, banner)
    if a.json:
        print(json.dumps(result))
    else:
        _print_summary(a, k, clip, sel, indices, texts, banner)
    return 0


def _save_overlay(a: SelectArgs, k: int, clip, pixels, indices: list[int], texts: list[str],
                  banner: str | None) -> None:
    """The image with the kept tokens, titled with the method, K and the query, the weights named under it."""
    from ..pruning.plot import plot_kept_tokens

    query = "; ".join(texts)
    fig, _ = plot_kept_tokens(clip.to_display(pixels)[0].numpy(), indices, clip.grid,
                              title=f"{a.method}, K={k}" + (f'\n"{query}"' if query else ""))
    if banner:  # the weights that made the picture, under it
        fig.text(0.5, 0.0, banner, ha="center", va="top", fontsize=6, color="#b2182b", wrap=True)
    save_plot(fig, a.save_overlay, dpi=150, bbox_inches="tight")


def _print_summary(a: SelectArgs, k: int, clip, sel, indices: list[int], texts: list[str],
                   banner: str | None) -> None:
    """What was kept, what each part of the method supplied, what a negative index stands for, and the
    weights."""
    n = clip.num_patches
    print(f"{a.method}: kept {k} of {n} tokens ({k / n:.1%}) on a "
          f"{clip.grid[0]}x{clip.grid[1]} grid, model {a.model} ({clip.backend})")
    if kept := kept_per_part(indices, sel.parts):
        print("  kept: " + ", ".join(f"{part}={v}" for part, v in kept.items()))
    if len(texts) == 1 and kept.get("context") == 0 and kept.get("similarity") == k:
        print(f"  note: with one text, {a.method}'s K similarity tokens fill the whole budget and no "
              "context token is kept; its context recovery acts through the union of several texts "
              "(an official protocol that puts several questions in one prompt embeds them all)")
    print("  first indices (LLM order): " + " ".join(map(str, indices[:16]))
          + (" ..." if len(indices) > 16 else ""))
    for i in sorted({i for i in indices if i < 0}, reverse=True):
        print(f"  {i}: {NON_PATCH_MEANING.get(i, 'no patch')} (patch indices are 0..{n - 1}, raster order)")
    if a.save_overlay:
        print(f"  overlay: {a.save_overlay}")
    if banner:
        print(banner)
