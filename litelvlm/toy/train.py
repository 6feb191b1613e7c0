"""``litelvlm toy-train``: train the bundled toy CLIP contrastively on synthetic scenes, on a CPU.

The model is a transformers ``CLIPModel`` of the OpenAI architecture (quick_gelu), small
enough to train in minutes on two cores. Each training pair is a scene and a unique
referring expression of one of its objects; besides the other captions of the batch, each
image is contrasted with hard negatives made from its own scene (the expression with one or
two attributes changed so that it describes no object there). In-batch captions that happen
to be true of another image are masked out of the loss.

The saved folder is a ``save_pretrained`` directory (weights in float16, tokenizer, image
processor) plus ``MODEL_CARD.md``, ``training_curve.csv`` and ``training_curve.png``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..cli_args import add_dataclass_arguments, arg, from_namespace
from ..errors import LiteLVLMError
from .scenes import (
    CELLS,
    COLOURS,
    SHAPES,
    SIZES,
    Expression,
    Scene,
    codes_true,
    counterfactuals,
    make_scene,
    one_attribute_counterfactuals,
    referring_expressions,
    sample_expression,
)

log = logging.getLogger(__name__)

#: held-out top-1 of 8 that the bundled model is meant to reach
TARGET_TOP1 = 0.80
_NOT_MET = """
The model is trained (far above chance on the check above) but does not reach the target.
The attribute breakdown above shows where it fails: it checks colours, shapes and positions
against empty cells, but an expression whose position names a cell holding *another* object
scores about as high as the true one, and one with its size changed often does. The model knows
which cells are occupied, hardly what occupies each. The text-binding figure says why on the
text side: its embedding of "the red circle at the top left" is, to {additive:.0%} of its variance, the
embedding of "red circle" plus that of "top left", and such a sum scores "the red circle at the top right"
just as high on any image where both cells are occupied. Binding content to position (and size)
is what this small model, trained for minutes on two CPU cores, has not learned.
"""

#: scene seeds: training scenes, held-out evaluation scenes, demo scenes never overlap
TRAIN_SEED = 1
HELDOUT_SEED = 2
#: one-object scenes of the position warm-up
WARMUP_SEED = 3
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ToyTrainArgs:
    out: str = arg("toy-clip", help="output folder (save_pretrained layout)")
    seed: int = arg(0, help="seed for the model initialisation and the batch sampling")
    steps: int = arg(4800, help="optimisation steps")
    batch_size: int = arg(64, help="scenes per batch")
    positives: int = arg(3, help="referring expressions (of different objects) per image (a scene has 3-5 objects; "
                                     "3 instead of 2 costs ~8%% more per step and trains binding faster)")
    hard_negatives: int = arg(7, help="same-scene counterfactual captions per positive")
    binding_negatives: float = arg(1.0, help="share of the hard negatives drawn first from binding counterfactuals: "
                                             "the changed value (shape, colour, size or cell) belongs to another "
                                             "object of the scene, so only binding it to its object tells them apart")
    lr: float = arg(5e-4, help="peak learning rate (AdamW, linear warm-up, cosine decay)")
    warmup: int = arg(100, help="warm-up steps")
    weight_decay: float = arg(0.05, help="AdamW weight decay")
    train_scenes: int = arg(15000, help="number of pre-rendered training scenes")
    eval_scenes: int = arg(200, help="held-out scenes for the periodic retrieval check")
    final_eval_scenes: int = arg(1000, help="held-out scenes for the final retrieval check")
    eval_every: int = arg(500, help="evaluate every N steps")
    render_size: int = arg(224, help="side of the rendered scenes (the demo data uses the same)")
    image_size: int = arg(192, help="model input side (the scenes are rendered at --render-size and resized)")
    patch_size: int = arg(32, help="ViT patch size (192/32: a 6x6 grid, so each cell of the 3x3 layout is 2x2 patches)")
    vision_width: int = arg(96, help="vision transformer width")
    vision_layers: int = arg(4, help="vision transformer layers")
    vision_heads: int = arg(12, help="vision attention heads (0: one per 32 channels); more heads let the CLS "
                                    "token gather more regions separately")
    text_width: int = arg(64, help="text transformer width")
    text_layers: int = arg(3, help="text transformer layers")
    embed_dim: int = arg(256, help="joint embedding size")
    attn_init: float = arg(4.0, help="scale of the vision tower's initial query and key projections relative to transformers' "
                           "default (sharper attention at the start; at 1 the loss sits on a plateau for ~1,200 steps)")
    text_attn_init: float = arg(1.0, help="the same for the text tower's query and key projections")
    pos_init: str = arg("sincos", choices=["learned", "sincos"],
                        help="vision position embeddings at the start: transformers' random init, or a fixed-scale "
                             "2-D sin-cos grid (both are trained)")
    position_warmup: int = arg(400, help="first N steps on --warmup-objects scenes, each caption ('the red circle at the "
                                       "top') contrasted with the same caption at the other cells")
    warmup_scenes: int = arg(2000, help="scenes rendered for the position warm-up")
    warmup_objects: int = arg(2, help="objects per warm-up scene (2: the other object's cell is a negative, so the "
                                      "warm-up already asks which object sits where)")
    position_mix: float = arg(0.2, help="after the warm-up, share of steps whose captions name colour, shape and cell and "
                                        "whose negatives are the same caption at other cells, occupied cells first")
    attention: str = arg("eager", choices=["eager", "sdpa"],
                         help="attention kernel while training (the same function; with 37 vision and ~11 text "
                              "tokens and heads of 8-16 channels, eager is ~20%% faster on a CPU than sdpa). "
                              "The saved model loads with transformers' default either way")
    threads: int = arg(2, help="torch CPU threads")
    workers: int = arg(0, help="1: a worker process makes the next batches while the model trains (a gain only with "
                               "cores to spare beyond --threads); 0: in the training process. Same batches either way")


def add_arguments(parser) -> None:
    add_dataclass_arguments(parser, ToyTrainArgs)


def sharpen_attention_init(model, factor: float, tower: str = "vision") -> None:
    """Multiply the query and key projections of one tower (``"vision"`` or ``"text"``) by
    ``factor`` (an initialisation choice: near-uniform attention at the start leaves the image
    embeddings almost identical, and makes a text embedding a sum over its words)."""
    if factor == 1.0:
        return
    with torch.no_grad():
        for layer in getattr(model, f"{tower}_model").encoder.layers:
            layer.self_attn.q_proj.weight.mul_(factor)
            layer.self_attn.k_proj.weight.mul_(factor)


def sincos_position_init(model) -> None:
    """Overwrite the vision tower's position embeddings with a 2-D sin-cos grid (half the channels
    encode the row, half the column; the CLS row is zero), as in MAE. The embeddings stay trainable."""
    emb = model.vision_model.embeddings
    weight = emb.position_embedding.weight
    grid = int(round(math.sqrt(weight.shape[0] - 1)))
    quarter = weight.shape[1] // 4
    omega = 1.0 / (100.0 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")

    def enc(v: torch.Tensor) -> torch.Tensor:
        angle = v.flatten()[:, None].float() * omega[None]
        return torch.cat([angle.sin(), angle.cos()], 1)

    table = torch.zeros_like(weight)
    table[1:, :4 * quarter] = torch.cat([enc(rows), enc(cols)], 1)
    with torch.no_grad():
        weight.copy_(table)


def arch_of(a: ToyTrainArgs):
    """The :class:`~litelvlm.clip.random_init.ClipArch` the arguments describe."""
    from ..clip.random_init import ClipArch

    return ClipArch(image_size=a.image_size, patch_size=a.patch_size, vision_width=a.vision_width,
                    vision_layers=a.vision_layers, vision_heads=a.vision_heads or max(1, a.vision_width // 32),
                    text_width=a.text_width, text_layers=a.text_layers, text_heads=max(1, a.text_width // 16),
                    embed_dim=a.embed_dim)


def _strip(scene: Scene) -> Scene:
    """The scene without its image and masks (attributes only), to keep thousands in memory."""
    empty = np.zeros((0, 0), dtype=bool)
    return dataclasses.replace(scene, image=np.zeros((0, 0, 3), np.uint8),
                               objects=tuple(dataclasses.replace(o, mask=empty) for o in scene.objects))


def render_pixels(scenes_images: list[np.ndarray], image_size: int) -> torch.Tensor:
    """uint8 (N, 3, s, s) model-resolution images (bicubic, as the image processor resizes)."""
    from PIL import Image

    out = np.stack([np.asarray(Image.fromarray(im).resize((image_size, image_size), Image.BICUBIC))
                    for im in scenes_images])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def normalise(pixels_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float32 model input, OpenAI mean/std (in place on one float copy)."""
    std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    scale = 1.0 / (255.0 * std)
    shift = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1) / std
    return pixels_u8.float().mul_(scale).sub_(shift)


class _SceneRender(torch.utils.data.Dataset):
    """Scene ``i`` of a set: its uint8 (3, s, s) pixels at model resolution and its attributes."""

    def __init__(self, seed: int, render_size: int, image_size: int, n_objects: tuple[int, int] | None):
        self.seed, self.render_size, self.image_size = seed, render_size, image_size
        self.kwargs = {} if n_objects is None else {"n_objects": n_objects}  # None: make_scene's own default

    def __getitem__(self, i: int):
        s = make_scene(self.seed, i, self.render_size, **self.kwargs)
        return render_pixels([s.image], self.image_size)[0], _strip(s)


def build_scenes(seed: int, n: int, render_size: int, image_size: int, desc: str, workers: int = 0,
                 n_objects: tuple[int, int] | None = None):
    """Render scenes ``0..n-1`` of ``seed`` (in ``workers`` processes; the result does not depend on
    how many); returns (uint8 pixels at model resolution, attribute-only scenes)."""
    from tqdm.auto import tqdm

    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(_SceneRender(seed, render_size, image_size, n_objects), range(n)),
        batch_size=64, num_workers=workers, collate_fn=lambda b: (torch.stack([p for p, _ in b]), [s for _, s in b]),
        multiprocessing_context="fork" if workers else None)
    pixels, scenes = [], []
    with tqdm(total=n, desc=desc, leave=False, mininterval=5) as bar:
        for px, sc in loader:
            pixels.append(px)
            scenes.extend(sc)
            bar.update(len(sc))
    return torch.cat(pixels), scenes


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


def _features(out) -> torch.Tensor:
    """transformers >= 5 returns a model output whose ``pooler_output`` is projected; older a tensor."""
    return out.pooler_output if hasattr(out, "pooler_output") else out


@torch.no_grad()
def _embed(model, tokenizer, pixels: torch.Tensor, texts: list[str]):
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    img = _features(model.get_image_features(pixel_values=pixels))
    txt = _features(model.get_text_features(**enc))
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
                changed = next(f for f in ("shape", "colour", "size", "cell") if getattr(e, f) != getattr(pos, f))
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


class Batch(NamedTuple):
    """One training batch: images, texts (positives first, then hard negatives) and their truth."""

    pixels: torch.Tensor  # (B, 3, s, s) float, normalised
    text: tuple[torch.Tensor, torch.Tensor]  # input_ids, attention_mask (T, L)
    owner: torch.Tensor  # (P,) image of each positive text 0..P-1
    truth: torch.Tensor  # (B, T) bool: text t describes some object of image b


class BatchSampler:
    """Training batches, with the per-scene work cached: each scene's referring expressions per
    object and each expression's one-attribute counterfactuals (false in that scene) are
    computed once, and every distinct caption is tokenised once. A scene is drawn many times
    during training, so this keeps the step time in the model rather than in Python."""

    def __init__(self, scenes: list[Scene], pixels_u8: torch.Tensor, tokenizer, a: ToyTrainArgs):
        self.scenes, self.pixels, self.tokenizer, self.a = scenes, pixels_u8, tokenizer, a
        self._exprs: dict[tuple[int, int], list] = {}
        self._cf: dict[tuple[int, object], tuple[list, list[int]]] = {}
        self._codes = [s.object_codes() for s in scenes]
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        # every distinct expression (there are at most ~1,400) gets a row of token ids and attribute codes
        self._row: dict[Expression, int] = {}
        self._tokens = torch.zeros((0, 0), dtype=torch.long)  # (rows, longest) padded with pad_id
        self._lengths = torch.zeros(0, dtype=torch.long)
        self._expr_codes = np.zeros((0, 4), dtype=int)

    def expression(self, i: int, target: int, rng) -> object:
        """A unique referring expression of object ``target`` in scene ``i`` (as ``sample_expression``)."""
        key = (i, target)
        if key not in self._exprs:
            self._exprs[key] = referring_expressions(self.scenes[i], target)
        exprs = self._exprs[key]
        k = sum(x is not None for x in (exprs[0].colour, exprs[0].size, exprs[0].cell))
        minimal = [e for e in exprs if sum(x is not None for x in (e.colour, e.size, e.cell)) == k]
        pool = exprs if rng.random() < 0.3 else minimal
        return pool[int(rng.integers(len(pool)))]

    def negatives(self, i: int, expr, rng, n: int) -> list:
        """``n`` same-scene hard negatives: one attribute changed, describing no object (topped up
        with ``counterfactuals``' one-or-two-attribute changes when there are too few)."""
        key = (i, expr)
        if key not in self._cf:
            pool = one_attribute_counterfactuals(self.scenes[i], expr)
            self._cf[key] = (pool, [j for j, e in enumerate(pool) if is_binding(self.scenes[i], expr, e)])
        pool, binding = self._cf[key]
        if len(pool) >= n:
            k = min(len(binding), int(round(self.a.binding_negatives * n)))
            first = [binding[j] for j in rng.choice(len(binding), size=k, replace=False)] if k else []
            keep = np.ones(len(pool), dtype=bool)
            keep[first] = False
            rest = np.flatnonzero(keep)  # the indices not drawn first, ascending (as np.setdiff1d gives them)
            return [pool[j] for j in first + list(rng.choice(rest, size=n - k, replace=False))]
        extra = [e for e in counterfactuals(self.scenes[i], expr, rng, n) if e not in pool]
        return (list(pool) + extra)[:n]

    def rows(self, exprs: list[Expression]) -> np.ndarray:
        """The table row of each expression, tokenising (once) the ones not seen before."""
        from torch.nn.utils.rnn import pad_sequence

        new = [e for e in dict.fromkeys(exprs) if e not in self._row]
        if new:
            ids = [torch.tensor(t, dtype=torch.long) for t in self.tokenizer([e.text for e in new])["input_ids"]]
            width = max(self._tokens.shape[1], max(len(t) for t in ids))
            old = F.pad(self._tokens, (0, width - self._tokens.shape[1]), value=self.pad_id)
            fresh = pad_sequence(ids, batch_first=True, padding_value=self.pad_id)
            fresh = F.pad(fresh, (0, width - fresh.shape[1]), value=self.pad_id)
            self._tokens = torch.cat([old, fresh])
            self._lengths = torch.cat([self._lengths, torch.tensor([len(t) for t in ids])])
            self._expr_codes = np.concatenate([self._expr_codes, np.array([e.code() for e in new])])
            self._row.update({e: len(self._row) + k for k, e in enumerate(new)})
        return np.fromiter((self._row[e] for e in exprs), dtype=np.int64, count=len(exprs))

    def encode(self, exprs: list[Expression]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask) of the expressions' texts, padded to the longest of them
        (every distinct expression is tokenised once)."""
        return self._padded(self.rows(exprs))

    def _padded(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.from_numpy(rows)
        lengths = self._lengths[rows]
        width = int(lengths.max())
        mask = (torch.arange(width)[None] < lengths[:, None]).long()
        return self._tokens[rows, :width], mask

    def __call__(self, rng):
        """Images, (input_ids, attention_mask) of the texts (positives first, then hard negatives),
        the owner image of each positive, and the (B, T) truth table of every text on every image."""
        a = self.a
        idx = rng.choice(len(self.scenes), size=a.batch_size, replace=False)
        pos, owner, negs = [], [], []
        for b, i in enumerate(idx):
            targets = rng.permutation(len(self.scenes[i].objects))[:a.positives]
            for t in targets:
                e = self.expression(int(i), int(t), rng)
                pos.append(e)
                owner.append(b)
                negs.extend(self.negatives(int(i), e, rng, a.hard_negatives))
        texts = pos + negs
        max_obj = max(len(self._codes[i]) for i in idx)
        obj = np.full((len(idx), max_obj, 4), -2)
        count = np.zeros(len(idx), dtype=int)
        for b, i in enumerate(idx):
            obj[b, :len(self._codes[i])] = self._codes[i]
            count[b] = len(self._codes[i])
        rows = self.rows(texts)
        distinct, inverse = np.unique(rows, return_inverse=True)
        truth = codes_true(obj, count, self._expr_codes[distinct])[:, inverse]  # (B, T)
        return Batch(normalise(self.pixels[idx]), self._padded(rows), torch.tensor(owner), torch.from_numpy(truth))


class PositionSampler(BatchSampler):
    """Batches that teach position: each caption names the object's shape and cell (and its colour
    with probability ``colour_p``, its size with ``size_p``), and its hard negatives are the same
    caption at other cells where it is false, cells holding another object first (so that a
    position must be bound to the object there, not only marked as occupied)."""

    def __init__(self, scenes, pixels_u8, tokenizer, a: ToyTrainArgs, colour_p: float = 1.0, size_p: float = 0.0):
        super().__init__(scenes, pixels_u8, tokenizer, a)
        self.colour_p, self.size_p = colour_p, size_p

    def expression(self, i: int, target: int, rng) -> Expression:
        o = self.scenes[i].objects[target]
        colour = o.colour if rng.random() < self.colour_p else None
        size = o.size if rng.random() < self.size_p else None
        return Expression(o.shape, colour, size, o.cell)

    def negatives(self, i: int, expr, rng, n: int) -> list:
        scene = self.scenes[i]
        occupied = {o.cell for o in scene.objects}
        moved = [dataclasses.replace(expr, cell=c) for c in CELLS if c != expr.cell]
        moved = [e for e in moved if not scene.is_true(e)]
        taken = [moved[j] for j in rng.permutation(len(moved))]
        taken = [e for e in taken if e.cell in occupied] + [e for e in taken if e.cell not in occupied]
        if len(taken) < n:
            taken += [e for e in counterfactuals(scene, expr, rng, n) if e not in taken]
        return taken[:n]


def is_binding(scene: Scene, expr: Expression, negative: Expression) -> bool:
    """Whether ``negative`` (one attribute of ``expr`` changed) takes its new value from another
    object of ``scene``: a shape, colour or size some object has, or a cell some object occupies."""
    changed = next(f for f in ("shape", "colour", "size", "cell") if getattr(negative, f) != getattr(expr, f))
    value = getattr(negative, changed)
    return any(getattr(o, changed) == value for o in scene.objects)


class TrainingBatches(torch.utils.data.IterableDataset):
    """The ``a.steps`` training batches in order, all drawn from one generator seeded by ``a.seed``
    (which sampler serves a step is drawn from it too): the position warm-up first, then the
    position batches (share ``a.position_mix``) among the ordinary ones."""

    def __init__(self, a: ToyTrainArgs, sampler: BatchSampler, warm: BatchSampler | None, mix: BatchSampler | None):
        self.a, self.sampler, self.warm, self.mix = a, sampler, warm, mix

    def __iter__(self):
        a = self.a
        rng = np.random.default_rng([a.seed, 0])
        for step in range(a.steps):
            if step < a.position_warmup:
                batch = self.warm
            elif self.mix is not None and rng.random() < a.position_mix:
                batch = self.mix
            else:
                batch = self.sampler
            yield batch(rng)


def _check_workers(workers: int) -> None:
    if workers not in (0, 1):
        raise LiteLVLMError(f"--workers must be 0 or 1 (one worker keeps the batch order), got {workers}")


def training_loader(a: ToyTrainArgs, sampler: BatchSampler, warm: BatchSampler | None,
                    mix: BatchSampler | None) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` over :class:`TrainingBatches`; with ``a.workers`` = 1 the batches are made in
    a worker process while the model trains (the same batches, in the same order, as with 0)."""
    _check_workers(a.workers)
    return torch.utils.data.DataLoader(TrainingBatches(a, sampler, warm, mix), batch_size=None,
                                       num_workers=a.workers, prefetch_factor=4 if a.workers else None,
                                       multiprocessing_context="fork" if a.workers else None)


def build_warmup_scenes(n: int, render_size: int, image_size: int, workers: int = 0, objects: int = 1):
    """``n`` scenes of ``objects`` objects each (seed ``WARMUP_SEED``) for the position warm-up."""
    return build_scenes(WARMUP_SEED, n, render_size, image_size, "warm-up scenes", workers,
                        n_objects=(objects, objects))


def clip_logits(model, pixel_values: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor, buckets: int = 2) -> torch.Tensor:
    """``CLIPModel(...).logits_per_image`` (B, T), computed with less text work: each distinct
    caption is encoded once (a batch repeats the same hard negative for several images), and the
    distinct captions are encoded in ``buckets`` groups of similar length, each padded only to its
    own longest (the text tower is causal and pools at [EOS], so padding changes nothing)."""
    n = input_ids.shape[1]
    rows, inverse = torch.unique(torch.cat([input_ids, attention_mask], 1), dim=0, return_inverse=True)
    img = F.normalize(_features(model.get_image_features(pixel_values=pixel_values)), dim=-1)
    lengths = rows[:, n:].sum(1)
    groups = [g for g in lengths.argsort(stable=True).tensor_split(max(1, buckets)) if len(g)]
    parts = []
    for g in groups:
        width = int(lengths[g].max())
        parts.append(_features(model.get_text_features(input_ids=rows[g, :width],
                                                       attention_mask=rows[g, n:n + width])))
    txt = torch.cat(parts)[torch.cat(groups).argsort()]  # back to the order of ``rows``
    return model.logit_scale.exp() * img @ F.normalize(txt, dim=-1)[inverse].T


def contrastive_loss(logits: torch.Tensor, owner: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with several positives per image and false negatives masked.

    ``logits`` (B, T) scaled image-text similarities; texts ``0..P-1`` are positives of
    images ``owner``, the rest hard negatives; ``truth`` (B, T) marks texts true of an image.
    """
    P = owner.shape[0]
    cols = torch.arange(P)
    rows_i = logits[owner]  # (P, T): each positive's image row
    mask_i = truth[owner].clone()
    mask_i[cols, cols] = False  # keep the positive itself
    loss_i = F.cross_entropy(rows_i.masked_fill(mask_i, float("-inf")), cols)
    rows_t = logits[:, :P].T  # (P, B): each positive against every image
    mask_t = truth[:, :P].T.clone()
    mask_t[cols, owner] = False
    loss_t = F.cross_entropy(rows_t.masked_fill(mask_t, float("-inf")), owner)
    return 0.5 * (loss_i + loss_t)


def plot_curve(df):
    """Training loss and held-out retrieval accuracy against the step; returns ``(fig, ax)``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(df["step"], df["loss"].rolling(10, min_periods=1).mean(), color="C0", label="train loss (10-step mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss", color="C0")
    ax2 = ax.twinx()
    ev = df.dropna(subset=["heldout_top1_of_8"])
    ax2.plot(ev["step"], ev["heldout_top1_of_8"], "o-", color="C1", label="held-out top-1 of 8")
    ax2.axhline(0.125, color="C1", ls=":", lw=0.8)
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("held-out top-1 of 8 (chance 0.125)", color="C1")
    fig.tight_layout()
    return fig, ax


def train(a: ToyTrainArgs) -> dict:
    """Train, save to ``a.out`` and return the final metrics. Everything is written to a hidden
    folder beside ``a.out`` and moved into it only when complete, so a failed or interrupted run
    leaves nothing partial (files of ``a.out`` that training does not write are kept)."""
    import shutil

    from ..io import publish

    if a.batch_size < 2 or a.steps < 1:
        raise LiteLVLMError("--batch-size must be >= 2 and --steps >= 1")
    if a.positives < 1:
        raise LiteLVLMError(f"--positives must be >= 1, got {a.positives}")
    _check_workers(a.workers)
    if not 0.0 <= a.binding_negatives <= 1.0:
        raise LiteLVLMError(f"--binding-negatives must be in [0, 1], got {a.binding_negatives}")
    if not 1 <= a.warmup_objects <= len(CELLS):
        raise LiteLVLMError(f"--warmup-objects must be between 1 and {len(CELLS)}, got {a.warmup_objects}")
    if not 0.0 <= a.position_mix <= 1.0:
        raise LiteLVLMError(f"--position-mix must be in [0, 1], got {a.position_mix}")
    if a.position_warmup < 0 or (a.position_warmup and a.warmup_scenes < a.batch_size):
        raise LiteLVLMError("--position-warmup must be >= 0, and --warmup-scenes at least --batch-size when it is used")
    if a.vision_heads < 0 or (a.vision_heads and a.vision_width % a.vision_heads):
        raise LiteLVLMError(f"--vision-heads {a.vision_heads} must divide --vision-width {a.vision_width}")
    if a.image_size % a.patch_size:
        raise LiteLVLMError(f"--image-size {a.image_size} is not a multiple of --patch-size {a.patch_size}")
    final = Path(a.out)
    work = final.parent / f".{final.name}.partial"
    if work.exists():
        shutil.rmtree(work)
    threads = torch.get_num_threads()
    try:
        metrics = _train(a, work)
        final.mkdir(parents=True, exist_ok=True)
        for f in sorted(work.iterdir()):
            publish(f)
            os.replace(f, final / f.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        torch.set_num_threads(threads)  # --threads is for this run only
    return metrics


def _train(a: ToyTrainArgs, out: Path) -> dict:
    """The training run itself, writing the model folder to ``out``."""
    import pandas as pd
    from tqdm.auto import tqdm
    from transformers import AutoModel, CLIPImageProcessor

    from ..clip.random_init import hf_config, write_clip_tokenizer
    from ..io import atomic_path, write_csv

    torch.set_num_threads(a.threads)
    t0 = time.time()
    arch = arch_of(a)
    tokenizer = write_clip_tokenizer(out / ".tokenizer-tmp")
    render = a.threads if a.threads > 1 else 0  # scenes are rendered in as many processes as training threads
    pixels, scenes = build_scenes(TRAIN_SEED, a.train_scenes, a.render_size, a.image_size, "train scenes", render)
    ev_pixels, ev_scenes = build_scenes(HELDOUT_SEED, a.eval_scenes, a.render_size, a.image_size, "eval scenes",
                                        render)
    ev_items = retrieval_items(ev_scenes, HELDOUT_SEED)
    if a.position_warmup:
        warm_pixels, warm_scenes = build_warmup_scenes(a.warmup_scenes, a.render_size, a.image_size, render,
                                                       a.warmup_objects)
    t_data = time.time() - t0
    torch.manual_seed(a.seed)
    model = AutoModel.from_config(hf_config(arch), attn_implementation=a.attention)  # a CLIPModel
    sharpen_attention_init(model, a.attn_init)
    sharpen_attention_init(model, a.text_attn_init, "text")
    if a.pos_init == "sincos":
        sincos_position_init(model)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.98), eps=1e-6,
                            fused=True)  # one kernel per group: the 3.2M-parameter token embedding is dense

    def lr_at(step: int) -> float:
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        p = (step - a.warmup) / max(1, a.steps - a.warmup)
        return a.lr * 0.5 * (1 + math.cos(math.pi * p))

    sampler = BatchSampler(scenes, pixels, tokenizer, a)
    warm = (PositionSampler(warm_scenes, warm_pixels, tokenizer, a, colour_p=0.5)
            if a.position_warmup else None)
    mix = PositionSampler(scenes, pixels, tokenizer, a, colour_p=1.0, size_p=0.3) if a.position_mix else None
    loader = training_loader(a, sampler, warm, mix)
    rows = []
    bar = tqdm(zip(range(a.steps), loader), total=a.steps, desc="toy-train", mininterval=10)
    for step, batch in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = contrastive_loss(clip_logits(model, batch.pixels, *batch.text), batch.owner, batch.truth)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        row = {"step": step + 1, "loss": float(loss.detach()), "lr": lr_at(step),
               "logit_scale": float(model.logit_scale.detach().exp()), "elapsed_s": time.time() - t0,
               "heldout_top1_of_8": float("nan")}
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            row["heldout_top1_of_8"] = retrieval_accuracy_model(model, tokenizer, ev_pixels, ev_items)
            bar.set_postfix(loss=f"{row['loss']:.3f}", top1=f"{row['heldout_top1_of_8']:.3f}")
            log.info("step %d loss %.3f held-out top-1 of 8 %.3f (%.0fs)", step + 1, row["loss"],
                     row["heldout_top1_of_8"], row["elapsed_s"])
        rows.append(row)
    t_train = time.time() - t0 - t_data

    # save: float16 weights, the real CLIP tokenizer, an image processor for the model's input size
    out.mkdir(parents=True, exist_ok=True)
    model.eval().half().save_pretrained(out)
    tokenizer.save_pretrained(out)
    for f in (out / ".tokenizer-tmp").iterdir():
        f.unlink()
    (out / ".tokenizer-tmp").rmdir()
    CLIPImageProcessor(size={"shortest_edge": a.image_size},
                       crop_size={"height": a.image_size, "width": a.image_size}).save_pretrained(out)
    df = pd.DataFrame(rows)
    write_csv(out / "training_curve.csv", df.round(5))
    fig, _ = plot_curve(df)
    with atomic_path(out / "training_curve.png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)

    # final check through the public loading path, on scenes never seen in training
    from ..clip import load_clip

    clip = load_clip(str(out), "hf")
    final_scenes = [make_scene(HELDOUT_SEED, i, a.render_size) for i in range(a.final_eval_scenes)]
    items = retrieval_items(final_scenes, HELDOUT_SEED)
    acc = retrieval_accuracy(clip, final_scenes, items)
    by_attr = accuracy_by_attribute(clip, final_scenes[:500], HELDOUT_SEED)
    metrics = {"heldout_top1_of_8": acc, "heldout_items": len(items), "pairwise_by_attribute": by_attr,
               "text_interaction_share": text_binding(clip),
               "final_train_loss": float(df["loss"].tail(20).mean()), "data_seconds": round(t_data, 1),
               "train_seconds": round(t_train, 1), "threads": a.threads,
               "weights_bytes": (out / "model.safetensors").stat().st_size}
    write_model_card(out, a, metrics)
    return metrics


def write_model_card(out: Path, a: ToyTrainArgs, metrics: dict) -> None:
    """MODEL_CARD.md: what the model is, the data, the seed, the steps and the final metrics."""
    from ..io import atomic_path

    arch = arch_of(a)
    args = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in dataclasses.asdict(a).items()
                    if k not in ("out",) and v != getattr(ToyTrainArgs, k, None))
    text = f"""# litelvlm toy CLIP

A small CLIP (transformers `CLIPModel`, OpenAI architecture, quick_gelu) trained from scratch
by `litelvlm toy-train` on synthetic scenes of coloured shapes (`litelvlm/toy/scenes.py`).
It exists so that `litelvlm demo` shows a trained model on a machine without network or
downloads. It knows nothing but shapes ({', '.join(__import__('litelvlm.toy.scenes', fromlist=['x']).SHAPES)}),
colours, two sizes and nine positions. It is not a substitute for a real CLIP.

## Architecture
- vision: ViT, image {arch.image_size}, patch {arch.patch_size} (grid {arch.image_size // arch.patch_size}x{arch.image_size // arch.patch_size}), width {arch.vision_width}, {arch.vision_layers} layers, {arch.vision_heads} heads
- text: width {arch.text_width}, {arch.text_layers} layers, {arch.text_heads} heads, context 77, OpenAI CLIP BPE tokenizer (vocabulary 49408)
- joint embedding: {arch.embed_dim}; weights stored in float16 ({metrics['weights_bytes'] / 1e6:.1f} MB)
- image processor: resize shortest side to {arch.image_size} (bicubic), centre crop, OpenAI mean/std

## Data
Scenes are rendered at {a.render_size}x{a.render_size}: 3-5 shapes, one per cell of a 3x3 layout, on a
textured background (stripes, checkerboard, blobs or noise); big shapes overlap and occlude
their neighbours. Training scenes: seed {TRAIN_SEED}, indices 0..{a.train_scenes - 1}. Held-out scenes:
seed {HELDOUT_SEED}. A caption is a unique referring expression of one object built from its
attributes ("the small red triangle at the top left", "the blue circle"). Each image is also
contrasted with {a.hard_negatives} same-scene counterfactual captions (one attribute
changed so that no object matches; a share of {a.binding_negatives:g} drawn first from binding ones, whose
changed value belongs to another object of the scene); in-batch captions true of another image
are masked.

## Training
- seed {a.seed}; {a.steps} steps of batch {a.batch_size}; AdamW (lr {a.lr}, warm-up {a.warmup}, cosine,
  weight decay {a.weight_decay}); symmetric InfoNCE with a learned temperature
- command: `{('litelvlm toy-train --out litelvlm/toy/weights ' + args).strip()}`
- wall time: {metrics['data_seconds']:.0f} s rendering + {metrics['train_seconds']:.0f} s training on
  {metrics["threads"]} CPU threads (wall-clock, measured by the run itself)
- curve: `training_curve.csv`, `training_curve.png`

## Final metrics
- held-out top-1 retrieval of the true expression among 8 candidates made from the same
  image (the true one + 7 counterfactuals; chance 0.125), through `litelvlm.clip.load_clip(path, "hf")`:
  **{metrics['heldout_top1_of_8']:.3f}** on {metrics['heldout_items']} held-out scenes (binomial standard error
  {math.sqrt(metrics['heldout_top1_of_8'] * (1 - metrics['heldout_top1_of_8']) / metrics['heldout_items']):.3f})
- which attributes it checks: the true expression against each of its one-attribute
  counterfactuals, by changed attribute (chance 0.5, 500 held-out scenes; `cell_occupied` and
  `cell_empty` split the position changes by whether the named cell holds another object):
  {', '.join(f'{k} {v:.3f}' for k, v in metrics.get('pairwise_by_attribute', {}).items())}
- does the text tower bind? Share of the variance of its embeddings of "the <colour> <shape>
  <position>" (and "the <size> <colour> <shape>") that a sum of a content part and a position (size)
  part does not explain (0: purely additive, no binding possible):
  {', '.join(f'{k} {v:.3f}' for k, v in metrics['text_interaction_share'].items())}
- final training loss (mean of the last 20 steps): {metrics['final_train_loss']:.3f}
- the project's target for this check is {TARGET_TOP1:.2f}: **{'met' if metrics['heldout_top1_of_8'] >= TARGET_TOP1 else 'NOT met'}**.
{'' if metrics['heldout_top1_of_8'] >= TARGET_TOP1 else _NOT_MET.format(additive=1 - metrics['text_interaction_share']['cell'])}"""
    with atomic_path(out / "MODEL_CARD.md") as tmp:
        tmp.write_text(text)
    with atomic_path(out / "training_metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def run(ns) -> int:
    a = from_namespace(ToyTrainArgs, ns)
    if os.path.exists(a.out) and any(Path(a.out).glob("*.safetensors")):
        log.info("overwriting the model in %s", a.out)
    metrics = train(a)
    print(f"toy CLIP saved to {a.out}: held-out top-1 of 8 = {metrics['heldout_top1_of_8']:.3f} "
          f"({metrics['heldout_items']} scenes), {metrics['train_seconds']:.0f} s training")
    return 0
