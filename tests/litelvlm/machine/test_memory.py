"""The live-bytes tracker (``litelvlm.machine.memory``): its own flattening of an op's arguments and results
finds the tensors torch's pytree finds, and the tracker's counts equal those of a tracker flattening with
pytree, on a CLIP forward."""

from __future__ import annotations

import weakref

import torch
from torch.utils._pytree import tree_flatten

from litelvlm.machine.memory import LiveTensorBytes, tensor_leaves


class PytreeLiveTensorBytes(LiveTensorBytes):
    """The tracker as it was written first, flattening with torch's pytree (the reference)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {t.untyped_storage()._cdata for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        out = func(*args, **kwargs)
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            st = t.untyped_storage()
            key = st._cdata
            if key in inputs or key in self._sizes:
                continue
            self._sizes[key] = int(st.nbytes())
            self.live += self._sizes[key]
            self.peak = max(self.peak, self.live)
            weakref.finalize(st, self._free, key)
        return out


def test_tensor_leaves_are_pytrees_tensors_in_order():
    a, b, c = torch.zeros(1), torch.ones(2), torch.arange(3)
    trees = [a, (a, 1, [b, None, (c,)]), {"x": a, "y": [b, 2.0], "z": {"w": c}}, torch.max(c, 0),
             ([], (), {}), (torch.Size([2, 3]), "mean", torch.float32, [a, [b, [c]]])]
    for tree in trees:
        want = [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]
        got = tensor_leaves(tree)
        assert len(got) == len(want) and all(g is w for g, w in zip(got, want, strict=True)), tree


def test_counts_equal_pytrees_on_a_clip_forward(tiny_hf_clip):
    size = tiny_hf_clip.model.config.vision_config.image_size
    pixels = torch.randn(2, 3, size, size,
                         generator=torch.Generator().manual_seed(0))
    counts = []
    for tracker in (LiveTensorBytes(), PytreeLiveTensorBytes()):
        with torch.no_grad(), tracker:
            out = tiny_hf_clip.model.vision_model(pixel_values=pixels, output_attentions=True,
                                                  output_hidden_states=True)
        counts.append((tracker.peak, tracker.live))
        del out
    assert counts[0] == counts[1] and counts[0][1] > 0, counts
