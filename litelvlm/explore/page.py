"""The explorer as one self-contained HTML file: the views of the notebook widget (slider, method selector,
text tokens with their attention rows on hover), their data and scripts embedded, nothing fetched.

Each method's kept tokens are stored for every budget computed (4 bits a token: dropped, or kept by which
part); the masks (a family's ``ground``) at a few budgets (default: N, N/3 and N/18, the paper's 576, 192 and
32 at N = 576, and N/9, the budget of the link the command prints and the docs name: 64), as small transparent
PNGs drawn over the window; at any other budget the mask panel names the budgets the page holds. ``page_html``
builds the text, ``write_page`` writes it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..registry.provenance import weights_kind
from ..runs.io import write_text
from . import draw
from .data import ExploreData
from .page_template import TEMPLATE
from .widget import TOOL_LABEL


def link_budget(n: int) -> int:
    """The budget of the link ``litelvlm explore`` prints and the docs name: N/9 (64 at N = 576)."""
    return n // 9 or 1


def default_mask_budgets(n: int) -> list[int]:
    """N, N/3 and N/18 rounded (the paper's 576, 192 and 32 retained tokens at N = 576) and the link's budget
    (:func:`link_budget`, 64), largest first."""
    return sorted({n, max(1, round(n / 3)), link_budget(n), max(1, round(n / 18))}, reverse=True)


def encode_codes(codes: np.ndarray) -> str:
    """Base64 of per-token codes 0..15 packed two to a byte (token 2i in the low half of byte i)."""
    c = np.asarray(codes, dtype=np.uint8)
    if c.size % 2:
        c = np.append(c, 0)
    return base64.b64encode((c[0::2] | (c[1::2] << 4)).astype(np.uint8).tobytes()).decode("ascii")


def decode_codes(text: str, n: int) -> np.ndarray:
    """The inverse of :func:`encode_codes` (what the page's script computes), for the tests."""
    raw = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    out = np.empty(raw.size * 2, dtype=np.uint8)
    out[0::2], out[1::2] = raw & 15, raw >> 4
    return out[:n]


def _rgba(mask: np.ndarray, colour: tuple[int, int, int], fill: int) -> np.ndarray:
    """(H, W, 4): ``mask`` filled with ``colour`` at alpha ``fill`` and its outline opaque; transparent
    elsewhere."""
    m = np.asarray(mask, dtype=bool)
    out = np.zeros((*m.shape, 4), dtype=np.uint8)
    out[m] = (*colour, fill)
    out[draw.outline(m)] = (*colour, 255)
    return out


def method_entry(data: ExploreData, method: str, budgets: list[int] | None) -> dict:
    """One method's kept tokens at every budget of ``budgets`` (None: N..1) that it can keep, as the page
    reads them: {budgets, parts, colours, codes: {K: base64}, extra: {K: tokens that are no patch},
    baseline}."""
    top = data.top_budget(method)

    ks = sorted({k for k in (range(top, 0, -1) if budgets is None else budgets) if 1 <= k <= top},
                # none of the budgets fits this method: its full budget alone (kept as given:
                reverse=True) or [top]
    # the command's Counts, counted once against the largest N, are not checked again where they fit)
    parts: list[str] = []
    codes, extra = {}, {}
    with data.threads():
        kept_at = {k: data.kept(method, k)
                   for k in tqdm(ks, desc=f"{method}: selections", leave=False, disable=None)}
    for k in ks:
        kept = kept_at[k]
        c = np.zeros(data.n, dtype=np.uint8)
        for i, p in zip(kept.indices, kept.parts):
            if 0 <= i < data.n:
                if p not in parts:
                    parts.append(p)
                c[i] = 1 + min(parts.index(p), 14)
        codes[str(k)] = encode_codes(c)
        if n_extra := sum(i < 0 for i in kept.indices):
            extra[str(k)] = n_extra
    return {"budgets": ks, "parts": parts, "colours": [list(draw.colour_of(p)) for p in parts],
            "codes": codes, "extra": extra, "baseline": bool(data.spec(method).baseline)}


def page_html(data: ExploreData, budgets: list[int] | None = None,
              mask_budgets: list[int] | None = None) -> str:
    """The page's text: ``data``'s views with every method's selections at ``budgets`` (None: N..1) and the
    predicted masks at ``mask_budgets`` (None: :func:`default_mask_budgets`; [] or a CLIP model: none)."""
    kept = {m: method_entry(data, m, budgets) for m in tqdm(data.methods, desc="explore: selections",
                                                               unit="method")}
    images = [f'<img id="window" alt="" src="{draw.data_uri(data.window)}">']
    for t, ref in enumerate(data.referent):
        if ref is not None:
            images.append(f'<img id="referent-{t}" alt="" '
                          f'src="{draw.data_uri(_rgba(ref, (255, 255, 255), 0))}">')
    shown_masks: list[int] = []
    if data.predicts_masks:
        wanted = default_mask_budgets(data.n) if mask_budgets is None else mask_budgets
        for mi, m in enumerate(tqdm(data.methods, desc="explore: masks", unit="method")):
            for k in wanted:
                if k not in kept[m]["budgets"]:
                    continue
                shown_masks.append(k)
                for t, mask in enumerate(data.masks(m, k)):
                    uri = draw.data_uri(_rgba(mask, draw.MASK_COLOUR, 120))
                    images.append(f'<img id="mask-{mi}-{k}-{t}" alt="" src="{uri}">')
    sim = [np.round(draw.normalise(v), 3).tolist() for v in data.similarity]
    payload = {
        "model": None if data.model is None else str(data.model), "family": data.family,
        "methods": data.methods, "texts": data.texts,
        "clip_texts": data.clip_texts, "grid": list(data.grid), "n": data.n, "kept": kept, "similarity": sim,
        "tokens": data.tokens, "attention": [np.round(a, 4).tolist() for a in data.attention],
        "referent_note": data.referent_note, "banner": data.banner, "made_by": made_by(data),
        "mask_budgets": sorted(set(shown_masks), reverse=True),
        "mask_note": "" if data.predicts_masks else "a CLIP alone predicts no mask (give a grounding model)",
        "ramp": draw.RAMP.astype(int).tolist(), "part_labels": draw.PART_LABELS,
        "legend": [[list(draw.colour_of(p)), draw.PART_LABELS[p]] for p in ("similarity", "context", "")],
    }
    text = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")  # no "</script>" inside the data
    title = f"litelvlm explore: {Path(data.image_path).name}, {'; '.join(data.texts)}"
    return (TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__TOOL__", html.escape(TOOL_LABEL))
            .replace("__IMAGES__", "\n".join(images)).replace("__DATA__", text))


def made_by(data: ExploreData) -> str:
    """The line naming what made the page: image, texts, model (and its kind of weights), methods."""
    return (f"image {Path(data.image_path).name}; texts {data.texts}; model {data.model} "
            f"({data.family or 'CLIP'}, {weights_kind(data.model)} weights); methods "
            f"{', '.join(data.methods)}; litelvlm {__version__}")


def write_page(data: ExploreData, out: str | Path, budgets: list[int] | None = None,
               mask_budgets: list[int] | None = None) -> Path:
    """Write :func:`page_html` to ``out`` at once (written beside it, then renamed: no partial page)."""
    write_text(out, page_html(data, budgets, mask_budgets))
    return Path(out)
