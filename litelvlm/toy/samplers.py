"""Training batches of the toy CLIP: the scene-and-caption sampler (:class:`BatchSampler`, with its
cached expressions, counterfactuals and caption token table), the position sampler, and the
ordered stream of a run's batches (:func:`training_loader`)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from .options import ToyTrainArgs, check_workers
from .scene_sets import normalise
from .scenes import (
    CELLS,
    Expression,
    Scene,
    codes_true,
    counterfactuals,
    one_attribute_counterfactuals,
    referring_expressions,
)


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
        new = [e for e in dict.fromkeys(exprs) if e not in self._row]
        if new:
            ids = [torch.tensor(t, dtype=torch.long)
                   for t in self.tokenizer([e.text for e in new])["input_ids"]]
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
        return Batch(normalise(self.pixels[idx]), self._padded(rows), torch.tensor(owner),
                     torch.from_numpy(truth))


class PositionSampler(BatchSampler):
    """Batches that teach position: each caption names the object's shape and cell (and its colour
    with probability ``colour_p``, its size with ``size_p``), and its hard negatives are the same
    caption at other cells where it is false, cells holding another object first (so that a
    position must be bound to the object there, not only marked as occupied)."""

    def __init__(self, scenes, pixels_u8, tokenizer, a: ToyTrainArgs, colour_p: float = 1.0,
                 size_p: float = 0.0):
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

    def __init__(self, a: ToyTrainArgs, sampler: BatchSampler, warm: BatchSampler | None,
                 mix: BatchSampler | None):
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


def training_loader(a: ToyTrainArgs, sampler: BatchSampler, warm: BatchSampler | None,
                    mix: BatchSampler | None) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` over :class:`TrainingBatches`; with ``a.workers`` = 1 the batches are made in
    a worker process while the model trains (the same batches, in the same order, as with 0)."""
    check_workers(a.workers)
    return torch.utils.data.DataLoader(TrainingBatches(a, sampler, warm, mix), batch_size=None,
                                       num_workers=a.workers, prefetch_factor=4 if a.workers else None,
                                       multiprocessing_context="fork" if a.workers else None)
