"""``litelvlm select --model <a grounding model>``: which visual tokens a method keeps in a model family's
pipeline.

With a GLaMM or UniPixel model string (a random preset or a checkpoint folder;
:mod:`litelvlm.registry.families`) instead of a CLIP, ``select`` runs the family's pipeline on the image and
its expression(s), ``ground(prepared, method, K)``, and reports the kept indices on the family's own token
grid: GLaMM's 24 x 24 CLIP patches, UniPixel's merged tokens (N depends on the image). Every method the family
runs is offered, the LLM-side ones too (their kept indices are the tokens the last LLM layer sees), each as
the family runs it (its backbone's variant where one is registered). The image and the expression(s) go
through the family's own prompt and preprocessing.
"""

from __future__ import annotations

import json
import sys
import warnings

from ..errors import LiteLVLMError
from ..image_resize import image_resize_kwargs
from ..registry.families import family_of, get_family, load_pipeline
from ..runs.io import save_plot


def _load_image(path: str):
    """The image as PIL's ``convert("RGB")`` decodes it, stored layout (no EXIF turn), or a
    ``LiteLVLMError`` naming it: missing, unreadable, truncated or past PIL's decompression-bomb limit."""
    from ..data.refer import open_rgb

    return open_rgb(path, exif_transpose=False)


def _refuse_clip_options(a) -> None:
    """``--pad`` and ``--backend`` choose a CLIP's preprocessing and loader: a family model has its own."""
    bad = [flag for flag, value in (("--pad", a.pad), ("--backend", a.backend)) if value]
    if bad:
        verb = "choose" if len(bad) > 1 else "chooses"
        raise LiteLVLMError(f"{' and '.join(bad)} {verb} a CLIP's preprocessing or loader; --model {a.model} "
                            "is a grounding model, which preprocesses the image its own way")


def run_family(a) -> int:
    """``select`` on a family's pipeline (``a``: :class:`litelvlm.commands.select.SelectArgs`)."""
    _refuse_clip_options(a)
    family = family_of(a.model)
    cls = get_family(family)
    if why := cls.method_error(cls.__new__(cls), a.method):  # asked before any model is loaded
        raise LiteLVLMError(why)
    texts = a.text or []
    if not texts:
        raise LiteLVLMError(f"--model {a.model} grounds a referring expression: give it with --text")

    image = _load_image(a.image)

    pipe = load_pipeline(a.model, **image_resize_kwargs(a.image_resize))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = pipe.prepare(image, texts, seed=a.seed)
    for w in caught:
        print(f"litelvlm select: warning: {w.message}", file=sys.stderr)
    n = pipe.num_visual(prepared)
    spec = pipe.spec(a.method)
    if bad := spec.layer_errors(a, len(pipe.language_model.layers)):
        raise LiteLVLMError("; ".join(bad))
    out = pipe.ground(prepared, a.method, a.budget, **spec.options_from(a))  # counts the budget once
    k = out.budget
    indices = [int(i) for i in out.kept_indices.tolist()]
    if a.raster:
        indices = sorted(indices)
    grid = [int(v) for v in pipe.visual_grid(prepared)]
    result = {"method": a.method, "budget": k, "grid": grid, "indices": indices, "family": family,
              "num_visual": n, "prune_layer": out.prune_layer,
              "method_variant": pipe.spec(a.method).backbone or None}
    from ..registry.provenance import weights_banner, weights_kind

    banner = weights_banner(a.model)
    result["weights"] = weights_kind(a.model)   # "random", "toy" or "real"
    if a.save_overlay:
        _save_overlay(a, k, pipe, image, indices, grid, texts, banner)
    if a.json:
        print(json.dumps(result))
    else:
        _print_summary(a, k, result, out, banner)
    return 0


def _save_overlay(a, k: int, pipe, image, indices: list[int], grid: list[int], texts: list[str],
                  banner: str | None) -> None:
    """The region the visual tokens cover, the kept ones bright, titled with the method, K and the
    expression(s)."""
    from ..pruning.plot import plot_kept_tokens

    window = pipe.visual_window(image).astype("float64") / 255.0
    query = "; ".join(texts)
    fig, _ = plot_kept_tokens(window, [i for i in indices if i >= 0], tuple(grid),
                              title=f"{a.method}, K={k} ({pipe.family})" + (f'\n"{query}"' if query else ""))
    if banner:
        fig.text(0.5, 0.0, banner, ha="center", va="top", fontsize=6, color="#b2182b", wrap=True)
    save_plot(fig, a.save_overlay, dpi=150, bbox_inches="tight")


def _print_summary(a, k: int, result: dict, out, banner: str | None) -> None:
    """What was kept, where, by which variant of the method, and the weights."""
    n, (rows, cols) = result["num_visual"], result["grid"]
    variant = f", its {result['method_variant']} variant" if result["method_variant"] else ""
    where = "at the LLM input" if out.prune_layer == 0 else f"from LLM layer {out.prune_layer}"
    print(f"{a.method}{variant}: kept {k} of {n} visual tokens ({k / n:.1%}) on a {rows}x{cols} grid "
          f"{where}, model {a.model} ({result['family']})")
    indices = result["indices"]
    print("  first indices (LLM order): " + " ".join(map(str, indices[:16]))
          + (" ..." if len(indices) > 16 else ""))
    if any(i < 0 for i in indices):
        print("  negative indices: tokens that stand for no single visual token ([CLS], merged or recycled "
              "ones)")
    if a.save_overlay:
        print(f"  overlay: {a.save_overlay}")
    if banner:
        print(banner)


__all__ = ["run_family"]
