"""PosPad, the ``pad`` position rule of ``GroundingPipeline.ground(positions=...)`` (FocusUI, CVPR 2026; its
code: ``focusui/modeling_focusui_qwen25vl.py``, ``_find_consecutive_run_ends`` and
``_apply_selection_to_sample``).

Each maximal run of consecutive dropped visual tokens (in the family's sequence order: the raster order of
the visual grid) is replaced by ONE marker token, so the sequence holds the text, the K kept visual tokens and
one marker per dropped run. The kept tokens keep their original RoPE positions; a marker takes the original
position of its run's LAST token (FocusUI's code places its ``<image_drop_end>`` marker at each run's end; for
M-RoPE, that token's (t, h, w)). The marker's embedding: FocusUI's is a token trained with its model
(``image_drop_end_token_id``); the families here have none, so this project's reading (the default, and the
only embedding offered) is the mean of the run's dropped visual tokens (the LLM's input embeddings).
``MARKER_ANCHORS`` also offers ``first`` (the run's first position) to a caller of :func:`pad_inputs`.

The rule applies where a method's kept tokens enter the LLM as single visual tokens: a method that merges or
creates tokens (``Method.original_positions=False``) is refused, as for ``keep``, and so is a method that
prunes inside the LLM (its dropped tokens leave after some decoder layers, where a marker's hidden state has
no definition here): :func:`litelvlm.method.position_error`. Everything else (``keep``, ``renumber``,
``official``) runs as before."""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..method import position_error
from ..switches import check_one_of

#: where a marker sits in its run: ``last`` (FocusUI's code, the default) or ``first``
MARKER_ANCHORS = ("last", "first")


def dropped_runs(kept: torch.Tensor, num_visual: int) -> torch.Tensor:
    """(R, 2) the first and last visual index of each maximal run of the ``num_visual`` tokens not in ``kept``
    (indices into them), in raster order; (0, 2) when nothing is dropped."""
    dropped = torch.ones(num_visual, dtype=torch.bool)
    dropped[kept.long().cpu()] = False
    idx = torch.nonzero(dropped).flatten()
    if idx.numel() == 0:
        return torch.zeros(0, 2, dtype=torch.long)
    breaks = torch.nonzero(idx[1:] - idx[:-1] != 1).flatten()
    return torch.stack([torch.cat([idx[:1], idx[breaks + 1]]), torch.cat([idx[breaks], idx[-1:]])], 1)


def pad_inputs(vis: torch.Tensor, kept: torch.Tensor, full: torch.Tensor,
               anchor: str = "last") -> tuple[torch.Tensor, torch.Tensor]:
    """((K + R, h) LLM inputs, (K + R,) visual-token indices) under PosPad: the kept inputs ``vis`` (K, h),
    standing for the visual tokens ``kept`` (K,), and one marker per dropped run (the mean of ``full``'s (N,
    h) tokens of the run, at its ``anchor`` token's index), ordered by index (raster order)."""
    check_one_of("anchor", anchor, MARKER_ANCHORS)
    kept = kept.long().cpu()
    n = int(full.shape[0])
    if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= n):
        raise LiteLVLMError("positions='pad': the selection holds tokens that are no single visual token (a "
                            "[CLS] or merged extra token), which have no original position")
    runs = dropped_runs(kept, n)
    if not len(runs):
        return vis, kept
    lengths = runs[:, 1] - runs[:, 0] + 1
    members = torch.cat([torch.arange(int(a), int(b) + 1) for a, b in runs.tolist()])
    run_of = torch.repeat_interleave(torch.arange(len(runs)), lengths)
    sums = torch.zeros(len(runs), full.shape[-1], dtype=torch.float32, device=full.device)
    sums = sums.index_add(0, run_of.to(full.device), full[members.to(full.device)].float())
    markers = (sums / lengths.to(full.device, torch.float32)[:, None]).to(vis.dtype).to(vis.device)
    at = runs[:, 1] if anchor == "last" else runs[:, 0]
    index = torch.cat([kept, at])
    order = torch.sort(index, stable=True).indices
    return torch.cat([vis, markers])[order.to(vis.device)], index[order]


__all__ = ["MARKER_ANCHORS", "dropped_runs", "pad_inputs", "position_error"]
