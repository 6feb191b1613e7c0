"""How well a toy CLIP has learned the scenes: held-out retrieval of the true expression among
same-scene counterfactuals, the per-attribute pairwise check, and whether the text tower binds."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .model import pooled_features
from .scene_sets import normalise
from .scenes import (
    CELLS,
    COLOURS,
    SHAPES,
    SIZES,
    Expression,
    Scene,
    counterfactuals,
    one_attribute_counterfactuals,
    sample_expression,
)


def retrieval_items(scenes: list[Scene], seed: int, candidates: int = 8) -> list[tuple[int, list[str]]]:
    """For each scene with enough counterfactuals: (scene index, [true expression, 7 false ones])."""
    rng = np.random.default_rng([seed, 8])
    items = []
    for i, s in enumerate(scenes):
        target = int(rng.integers(len(s.objects)))
        pos = sample_expression(s, target, rng)
        neg = counterfactuals(s, pos, rng, candidates - 1)
        if len(neg) == candidates - 1:
            items.append((i, [pos.text] + [e.text for e in neg]))
    return items


@torch.no_grad()
def _embed(model, tokenizer, pixels: torch.Tensor, texts: list[str]):
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    img = pooled_features(model.get_image_features(pixel_values=pixels))
    txt = pooled_features(model.get_text_features(**enc))
    return F.normalize(img, dim=-1), F.normalize(txt, dim=-1)


def retrieval_accuracy_model(model, tokenizer, pixels_u8: torch.Tensor, items) -> float:
    """Top-1 accuracy of the true expression among its candidates (model in memory)."""
    model.eval()
    hits = []
    for start in range(0, len(items), 64):
        chunk = items[start:start + 64]
        px = normalise(pixels_u8[[i for i, _ in chunk]])
        texts = [t for _, cand in chunk for t in cand]
        img, txt = _embed(model, tokenizer, px, texts)
        txt = txt.view(len(chunk), -1, txt.shape[-1])
        sims = torch.einsum("bd,bcd->bc", img, txt)
        hits.extend((sims.argmax(-1) == 0).tolist())
    model.train()
    return float(np.mean(hits))


def _image_embeds(clip, scenes: list[Scene]) -> torch.Tensor:
    """Unit image embeddings through a :class:`~litelvlm.clip.ClipBackend`: the projection of the
    last layer's CLS token."""
    trace = clip.trace_image(clip.preprocess([s.pil() for s in scenes]))
    return F.normalize(clip.project_patches(trace.hidden_states[-1][:, :1])[:, 0].float(), dim=-1)


def retrieval_accuracy(clip, scenes_full: list[Scene], items) -> float:
    """The same check through a loaded :class:`~litelvlm.clip.ClipBackend` (the public path):
    image embedding = projection of the last layer's CLS token, text = ``encode_text``."""
    hits = []
    for start in range(0, len(items), 64):
        chunk = items[start:start + 64]
        img = _image_embeds(clip, [scenes_full[i] for i, _ in chunk])
        texts = [t for _, cand in chunk for t in cand]
        txt = F.normalize(clip.encode_text(texts, hidden_states=False).text_embeds.float(), dim=-1)
        sims = torch.einsum("bd,bcd->bc", img, txt.view(len(chunk), -1, txt.shape[-1]))
        hits.extend((sims.argmax(-1) == 0).tolist())
    return float(np.mean(hits))


def accuracy_by_attribute(clip, scenes_full: list[Scene], seed: int) -> dict[str, float]:
    """Which attribute the model can check: for one sampled expression per scene, the share of
    its one-attribute counterfactuals (``one_attribute_counterfactuals``) that score below it,
    per changed attribute (chance 0.5), through a loaded :class:`~litelvlm.clip.ClipBackend`.
    Position changes are also split by whether the named cell holds another object
    (``cell_occupied``: a binding test) or nothing (``cell_empty``)."""
    rng = np.random.default_rng([seed, 9])
    hits: dict[str, list[bool]] = {}
    for start in range(0, len(scenes_full), 64):
        chunk = scenes_full[start:start + 64]
        img = _image_embeds(clip, chunk)
        groups = []  # (image row, true expression, its counterfactuals)
        for k, s in enumerate(chunk):
            pos = sample_expression(s, int(rng.integers(len(s.objects))), rng)
            negs = one_attribute_counterfactuals(s, pos)
            if negs:
                groups.append((k, pos, negs))
        if not groups:
            continue
        texts = [e.text for _, pos, negs in groups for e in [pos, *negs]]
        txt = F.normalize(clip.encode_text(texts, hidden_states=False).text_embeds.float(), dim=-1)
        row = 0
        for k, pos, negs in groups:
            sims = (txt[row:row + 1 + len(negs)] @ img[k]).tolist()
            row += 1 + len(negs)
            for e, sim in zip(negs, sims[1:]):
                changed = next(f for f in ("shape", "colour", "size", "cell") if getattr(e, f)
                               != getattr(pos, f))
                hits.setdefault(changed, []).append(sims[0] > sim)
                if changed == "cell":  # binding: does the other cell hold another object?
                    held = any(o.cell == e.cell for o in chunk[k].objects)
                    hits.setdefault("cell_occupied" if held else "cell_empty", []).append(sims[0] > sim)
    return {f: round(float(np.mean(v)), 3) for f, v in sorted(hits.items())}


def interaction_share(emb: torch.Tensor) -> float:
    """Share of the variance of (C, P, D) embeddings (C contents at P positions) that a sum of a
    content part and a position part does not explain: 0 for a purely additive code, in which
    no content is bound to its position."""
    centred = emb - emb.mean((0, 1), keepdim=True)
    residual = centred - centred.mean(1, keepdim=True) - centred.mean(0, keepdim=True)
    return float(residual.pow(2).sum() / centred.pow(2).sum())


def text_binding(clip) -> dict[str, float]:
    """How much the text tower binds: :func:`interaction_share` of the unit text embeddings of every
    "the <colour> <shape> <position>" (colour and shape x cell) and "the <size> <colour> <shape>"
    (colour and shape x size), through a loaded :class:`~litelvlm.clip.ClipBackend`. A text code
    near 0 cannot tell "the red circle at the top" from "the red circle on the left" in a scene
    where both cells are occupied."""
    contents = [(c, s) for c in COLOURS for s in SHAPES]
    out = {}
    for name, values, make in (("cell", CELLS, lambda c, s, v: Expression(s, c, None, v)),
                               ("size", SIZES, lambda c, s, v: Expression(s, c, v, None))):
        texts = [make(c, s, v).text for c, s in contents for v in values]
        emb = F.normalize(clip.encode_text(texts, hidden_states=False).text_embeds.float(), dim=-1)
        out[name] = round(interaction_share(emb.view(len(contents), len(values), -1)), 4)
    return out
