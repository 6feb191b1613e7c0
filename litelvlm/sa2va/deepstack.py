"""Qwen3-VL's DeepStack on the LLM's first decoder layers, as forward hooks, for every layer loop of the
suite (its rows in a pruned sequence are this project's adaptation).

Details: docs/sa2va.md (`litelvlm.sa2va.deepstack`).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

#: the int dtype a float dtype's bits are read in (row fingerprints, :func:`fingerprints`)
_BITS = {2: torch.int16, 4: torch.int32, 8: torch.int64}
#: the sequences kept per layer to match a cut sequence's rows against
KEPT_PER_LAYER = 4


def fingerprints(rows: torch.Tensor) -> torch.Tensor:
    """(..., ) int64: an exact function of each row's bits (integer weights, no rounding), equal for equal
    rows."""
    x = rows.detach().contiguous()
    bits = x.view(_BITS[x.element_size()]).to(torch.int64) & 0xFFFFFFFF
    gen = torch.Generator().manual_seed(x.shape[-1])
    weights = torch.randint(1, 1 << 16, (x.shape[-1],), generator=gen, dtype=torch.int64).to(x.device)
    return (bits * weights).sum(-1)


def match_rows(query: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """(Q,) long: for each row of ``query`` (Q, h) the index of a bit-identical row of ``ref`` (R, h), -1
    where none is."""
    out = torch.full((query.shape[0],), -1, dtype=torch.long, device=query.device)
    if ref.shape[0] == 0 or query.shape[0] == 0 or ref.dtype != query.dtype:
        return out
    fr, fq = fingerprints(ref), fingerprints(query)
    order = torch.argsort(fr, stable=True)
    at = torch.searchsorted(fr[order], fq).clamp(max=ref.shape[0] - 1)
    cand = order[at]
    same = (fr[cand] == fq) & (ref.detach()[cand] == query.detach()).all(-1)
    out[same] = cand[same]
    return out


@dataclass
class _Reference:
    """A prepared input's visual tokens as the LLM receives them and their DeepStack features (D, N, h)."""

    rows: weakref.ref
    features: weakref.ref


@dataclass
class _Seen:
    """A sequence that entered a hooked layer: the tensor (its values, and itself while it lives), and per
    batch element its features and the visual-token index of each row (-1: none)."""

    hidden: torch.Tensor
    tensor: weakref.ref
    refs: list
    index: torch.Tensor


class DeepStack:
    """The DeepStack additions of a Qwen3-VL text model ``lm`` after its first ``depth`` decoder layers
    (docs/sa2va.md); :meth:`remove` takes the hooks off."""

    def __init__(self, lm, depth: int) -> None:
        self.lm, self.depth = lm, int(depth)
        self._refs: list[_Reference] = []
        self._seen: dict[int, list[_Seen]] = {}
        self._official = False
        self._handles = [lm.register_forward_pre_hook(self._on_model, with_kwargs=True),
                         lm.register_forward_hook(self._off_model, always_call=True)]
        self._handles += [lm.layers[i].register_forward_hook(self._hook(i), with_kwargs=True)
                          for i in range(min(self.depth, len(lm.layers)))]

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def register(self, rows: torch.Tensor, features: torch.Tensor) -> None:
        """A prepared input's visual tokens (N, h), as they enter the LLM, and their features (D, N, h)."""
        live = [r for r in self._refs if r.rows() is not None and r.features() is not None]
        if any(r.rows() is rows and r.features() is features for r in live):
            self._refs = live
            return
        self._refs = [*live, _Reference(weakref.ref(rows), weakref.ref(features))]

    # -- hooks ---------------------------------------------------------------------------------------------
    def _on_model(self, module, args, kwargs) -> None:
        self._official = kwargs.get("deepstack_visual_embeds") is not None

    def _off_model(self, module, args, output) -> None:
        self._official = False

    def _hook(self, layer: int):
        def after(module, args, kwargs, output):
            if self._official:
                return None
            hidden = args[0] if args else kwargs["hidden_states"]
            out = output[0] if isinstance(output, tuple) else output
            refs, index = self._identify(layer, hidden)
            new = self._add(layer, out, refs, index)
            self._remember(layer + 1, _Seen(new.detach(), weakref.ref(new), refs, index))
            return (new, *output[1:]) if isinstance(output, tuple) else new
        return after

    # -- which token each row is -----------------------------------------------------------------------------
    def _identify(self, layer: int, hidden: torch.Tensor) -> tuple[list, torch.Tensor]:
        b, s = hidden.shape[:2]
        for seen in reversed(self._seen.get(layer, [])):
            if seen.tensor() is hidden:
                return seen.refs, seen.index
        index = torch.full((b, s), -1, dtype=torch.long, device=hidden.device)
        refs: list = [None] * b
        sources = self._seen.get(layer, []) if layer > 0 else []
        for i in range(b):
            refs[i], index[i] = (self._from_seen(hidden[i], sources) if sources
                                 else self._from_refs(hidden[i]))
        return refs, index

    def _from_refs(self, rows: torch.Tensor) -> tuple[object, torch.Tensor]:
        """The registered input whose visual tokens most rows copy (the latest on a tie), and each row's
        token."""
        best = (None, torch.full((rows.shape[0],), -1, dtype=torch.long, device=rows.device), 0)
        for ref in reversed(self._refs):
            visual, features = ref.rows(), ref.features()
            if visual is None or features is None:
                continue
            got = match_rows(rows, visual.detach().to(rows.dtype))
            if int((got >= 0).sum()) > best[2]:
                best = (features, got, int((got >= 0).sum()))
        return best[0], best[1]

    def _from_seen(self, rows: torch.Tensor, sources: list[_Seen]) -> tuple[object, torch.Tensor]:
        """The kept sequence most rows copy (the latest on a tie: rows before the image are alike in every
        prompt sharing that prefix), and each row's token there."""
        best = (None, torch.full((rows.shape[0],), -1, dtype=torch.long, device=rows.device), 0)
        for seen in reversed(sources):
            for j in range(seen.hidden.shape[0]):
                got = match_rows(rows, seen.hidden[j])
                if int((got >= 0).sum()) > best[2]:
                    index = torch.where(got >= 0, seen.index[j][got.clamp(min=0)], got)
                    best = (seen.refs[j], index, int((got >= 0).sum()))
        return best[0], best[1]

    # -- the addition --------------------------------------------------------------------------------------
    def _add(self, layer: int, out: torch.Tensor, refs: list, index: torch.Tensor) -> torch.Tensor:
        if all(r is None for r in refs) or not bool((index >= 0).any()):
            return out
        new = out.clone()
        for i, features in enumerate(refs):
            rows = torch.nonzero(index[i] >= 0).flatten()
            if features is None or rows.numel() == 0:
                continue
            add = features[layer][index[i][rows].to(features.device)].to(new.device, new.dtype)
            new[i, rows] = new[i, rows] + add        # _deepstack_process: h[mask] + features
        return new

    def _remember(self, layer: int, seen: _Seen) -> None:
        if layer >= self.depth:
            return
        kept = self._seen.setdefault(layer, [])
        kept.append(seen)
        del kept[:-KEPT_PER_LAYER]


__all__ = ["DeepStack", "KEPT_PER_LAYER", "fingerprints", "match_rows"]
