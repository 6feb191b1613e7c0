"""IPCV ("Information-Preserving Compression inside the Vision encoder"): training-free pruning inside the
vision tower that gives the LLM every visual token back.

Official source: Perkzi/IPCV @ 29726f0, ``InternVL2/InternVL2_IPCV/modeling_intern_vit_sparse_IPCV.py``,
on the vision-tower stage. Rebuilding after an earlier feature layer (GLaMM's CLIP) is this project's
adaptation.

Details, the official statements with their lines and the deviations: docs/methods/ipcv.md
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..errors import LiteLVLMError
from ..method import Method, Option
from ..pruning import Selection
from ..pruning.tower import TowerContext

#: the official InternVL2/InternVL3 settings (``InternVL2/eval_scripts/lmms_eval_multi.sh``)
LAYER = 7
AS_LAYERS = 3
TOP_K = 10

log = logging.getLogger(__name__)
#: the (pruning layer, tower depth) pairs already named on screen as pruning nothing (once a process)
_SAID_PAST: set[tuple[int, int]] = set()


@dataclass
class Pruned:
    """What the pruning keeps (the official ``_sparse_vit_saved``): per sequence (B, K) ``keep`` and (B, R)
    ``removed`` rows, their states at the pruning, each removed token's neighbours as ``unique`` rows of the
    flattened (B*K) kept states and their ``inverse`` (B, R, top_k)."""

    length: int
    keep: torch.Tensor
    removed: torch.Tensor
    removed_states: torch.Tensor
    kept_states: torch.Tensor
    unique: list[torch.Tensor]
    inverse: list[torch.Tensor]


def tile_keep(tokens: int, budget: int, num_tokens: int) -> int:
    """The patch tokens each sequence of ``tokens`` keeps at budget K of N LLM tokens: ``tokens * K // N``,
    at least 1."""
    return max(1, tokens * budget // num_tokens)


def prune(cur: torch.Tensor, prev: torch.Tensor, keep: int, prefix: int, top_k: int) -> Pruned:
    """L482-587: the ``keep`` patch tokens per sequence of ``cur`` (B, T, W) that moved most from ``prev``
    (the prefix always kept) and each removed token's ``top_k`` nearest kept tokens of every sequence."""
    b, t, w = cur.shape
    keeps, removed = [], []
    for i in range(b):
        moved = torch.norm(cur[i, prefix:] - prev[i, prefix:], dim=-1)
        idx = moved.topk(keep).indices.sort().values + prefix
        idx = torch.cat([torch.arange(prefix, device=idx.device, dtype=idx.dtype), idx])
        mask = torch.ones(t, dtype=torch.bool, device=cur.device)
        mask[idx] = False
        keeps.append(idx)
        removed.append(torch.nonzero(mask, as_tuple=False).view(-1))
    keep_rows, removed_rows = torch.stack(keeps), torch.stack(removed)
    states = cur.detach().clone()
    kept_states = torch.stack([states[i, keep_rows[i]] for i in range(b)])
    removed_states = torch.stack([states[i, removed_rows[i]] for i in range(b)])
    flat = kept_states.reshape(-1, w)
    unique, inverse = [], []
    for i in range(b):
        dists = torch.cdist(removed_states[i].float(), flat.float(), p=2.0)
        _, near = dists.topk(min(top_k, flat.shape[0]), largest=False, dim=1)
        u, inv = torch.unique(near.view(-1), return_inverse=True)
        unique.append(u)
        inverse.append(inv.view(near.shape))
    return Pruned(t, keep_rows, removed_rows, removed_states, kept_states, unique, inverse)


def restore(x: torch.Tensor, pruned: Pruned) -> torch.Tensor:
    """L297-329 / L596-628: the full (B, T, W) sequences from the kept tokens' states ``x`` (B, K, W): each
    removed token its pruned state plus the mean change of its neighbours since the pruning."""
    b, k, w = x.shape
    new, old = x.reshape(b * k, w), pruned.kept_states.reshape(b * k, w)
    out = []
    for i in range(b):
        delta = new[pruned.unique[i]] - old[pruned.unique[i]]
        full = torch.zeros(pruned.length, w, device=x.device, dtype=new.dtype)
        full[pruned.keep[i]] = x[i]
        full[pruned.removed[i]] = pruned.removed_states[i] + delta[pruned.inverse[i]].mean(dim=1)
        out.append(full)
    return torch.stack(out)


@torch.no_grad()
def ipcv_run(tower: TowerContext, keep: int, layer: int, as_layers: int, top_k: int) -> torch.Tensor:
    """The tower's (N, h) output under IPCV, each sequence keeping ``keep`` patch tokens from block ``layer``
    (attention stabilisation in blocks ``layer .. layer + as_layers - 1``), every token rebuilt at the end."""
    blocks = tower.num_blocks
    if layer < 2:
        raise LiteLVLMError(f"IPCV's pruning layer must be at least 2 (it ranks the change over block "
                            f"layer - 1, whose input the official code reads from block 1 on); got {layer}")
    x = tower.embed()
    if not 1 <= keep <= x.shape[1] - tower.prefix:
        raise LiteLVLMError(f"IPCV keeps 1..{x.shape[1] - tower.prefix} patch tokens per sequence; "
                            f"got {keep}")
    if layer >= blocks and (layer, blocks) not in _SAID_PAST:
        _SAID_PAST.add((layer, blocks))
        log.warning("IPCV's pruning layer %d lies past the blocks this tower runs (%d): it prunes nothing "
                    "(its result is the unpruned tower's)", layer, blocks)
    prev, pruned = None, None
    for i in range(blocks):
        if i == layer - 1:
            prev = x
        if i == layer:
            pruned = prune(x, prev, keep, tower.prefix, top_k)
            x = pruned.kept_states
        if pruned is not None and i < layer + as_layers:
            full = tower.attend(i, restore(x, pruned), None)
            x = tower.feed(i, torch.stack([full[j, pruned.keep[j]] for j in range(full.shape[0])]))
        else:
            x = tower.feed(i, tower.attend(i, x, None if pruned is None else pruned.keep))
    return tower.finish(x if pruned is None else restore(x, pruned))


def ipcv_tokens(tower: TowerContext, budget: int, *, vit_layer: int | None = None,
                as_layers: int | None = None, top_k: int = TOP_K,
                defaults: tuple[int, int] = (LAYER, AS_LAYERS)) -> torch.Tensor:
    """(N, h) the LLM's visual tokens of IPCV at budget K (:func:`tile_keep`), ``defaults`` the rule's
    official (layer, AS layers)."""
    keep = tile_keep(tower.embed().shape[1] - tower.prefix, budget, tower.num_tokens)
    layer = defaults[0] if vit_layer is None else vit_layer
    return ipcv_run(tower, keep, layer, defaults[1] if as_layers is None else as_layers, top_k)


def ipcv(ctx: TowerContext, budget: int, *, vit_layer: int | None = None, as_layers: int | None = None,
         top_k: int = TOP_K) -> Selection:
    """IPCV alone: every one of the N visual tokens, from a tower run that keeps K's share of them after the
    pruning layer."""
    feats = ipcv_tokens(ctx, budget, vit_layer=vit_layer, as_layers=as_layers, top_k=top_k)
    return Selection(indices=torch.arange(ctx.num_tokens), features=feats)


def all_tokens(budget: int, num_visual: int, num_layers: int, **options) -> tuple[tuple[int, int], ...]:
    """IPCV's LLM schedule: all N visual tokens from layer 0 (the tower rebuilds them)."""
    return ((0, num_visual),)


#: its command-line options (``--ipcv-layer``, ``--ipcv-as-layers``, ``--ipcv-top-k``); None: the rule's
#: official value on the family's tower (7 and 3 on InternViT and CLIP, 3 and 7 on Qwen2.5-VL's)
IPCV_OPTIONS = (
    Option("vit_layer", "ipcv_layer", default=None,
           help="IPCV's vit_pruned_layer: prune before this vision block (0-based; default: the official "
                "7 for InternViT/CLIP, 3 for Qwen's tower)"),
    Option("as_layers", "ipcv_as_layers", default=None,
           help="IPCV's AS_layer: blocks from the pruning layer that attend over the rebuilt tokens "
                "(default: the official 3 for InternViT/CLIP, 7 for Qwen's tower)"),
    Option("top_k", "ipcv_top_k", default=TOP_K,
           help="IPCV's Top_K: nearest kept tokens whose change rebuilds a pruned one"),
)

IPCV = Method("vision-tower", ipcv, host_sync=True, reads_vision_blocks=True, restores_tokens=True,
              schedule=all_tokens, original_positions=True,
              name="ipcv", options=IPCV_OPTIONS,
              description=("IPCV: inside the vision tower keep the tokens that moved most over one block, "
                           "rebuild the pruned ones from their nearest kept neighbours' change (attention "
                           "over the rebuilt tokens for a few blocks) and give the LLM all N back"))
