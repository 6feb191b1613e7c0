"""ToMe (Bolya et al., ICLR 2023): token merging inside the CLIP vision tower, down to K patch tokens.

Official source: facebookresearch/ToMe @ af95e4b, applied to the blocks of LLaVA's CLIP tower (nothing is
patched). The merge schedule that turns a target count K into r per block is this project's mapping (the
official code takes r per block); the Qwen2.5-VL variant is ``litelvlm.methods.tome_qwen``.

Details, the official statements with their lines and the deviations: docs/methods/tome.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import LiteLVLMError, UnsupportedModelError
from ..method import Method
from ..pruning.selection import Selection, SelectorInputs


def merge_schedule(num_patches: int, budget: int, num_blocks: int) -> list[int]:
    """r per block taking ``num_patches`` to ``budget`` in ``num_blocks`` blocks (see the module
    docstring)."""
    if num_blocks < 1:
        raise ValueError("ToMe needs at least one block before the feature layer")
    remaining, after = num_patches - budget, budget
    out = [0] * num_blocks
    for i in range(num_blocks - 1, 0, -1):  # from the last block: a block merges at most half its patches
        r = min(remaining // (i + 1), after)
        out[i], after, remaining = r, after + r, remaining - r
    out[0] = remaining  # more than half only where no schedule fits the cap (deviation 2)
    return out


@dataclass
class Matching:
    """One ``bipartite_soft_matching`` (class token protected): index tensors (1, ., 1), ``r`` merges."""

    unm_idx: torch.Tensor
    src_idx: torch.Tensor
    dst_idx: torch.Tensor
    r: int

    def merge(self, x: torch.Tensor, mode: str = "mean") -> torch.Tensor:
        """``merge`` of merge.py L70-80: ``cat[unmerged A, B]``, merged A tokens reduced into B."""
        src, dst = x[..., ::2, :], x[..., 1::2, :]
        n, t1, c = src.shape
        unm = src.gather(dim=-2, index=self.unm_idx.expand(n, t1 - self.r, c))
        src = src.gather(dim=-2, index=self.src_idx.expand(n, self.r, c))
        dst = dst.scatter_reduce(-2, self.dst_idx.expand(n, self.r, c), src, reduce=mode)
        return torch.cat([unm, dst], dim=1)

    def new_rows(self, t: int) -> torch.Tensor:
        """(t,) the row each of the t current tokens lands in after the merge."""
        device = self.unm_idx.device
        a_pos, b_pos = torch.arange(0, t, 2, device=device), torch.arange(1, t, 2, device=device)
        unm, src, dst = self.unm_idx[0, :, 0], self.src_idx[0, :, 0], self.dst_idx[0, :, 0]
        rows = torch.empty(t, dtype=torch.long, device=device)
        rows[a_pos[unm]] = torch.arange(unm.numel(), device=device)
        rows[b_pos] = unm.numel() + torch.arange(b_pos.numel(), device=device)
        rows[a_pos[src]] = unm.numel() + dst
        return rows


@torch.no_grad()
def bipartite_soft_matching(metric: torch.Tensor, r: int, class_token: bool = True) -> Matching | None:
    """merge.py L36-68 (no distill token): None where r (capped at (t - protected) // 2) is 0; ``class_token``
    (CLIP's, the default here) protects token 0 and keeps it first."""
    t = metric.shape[1]
    r = min(r, (t - int(class_token)) // 2)
    if r <= 0:
        return None
    metric = metric / metric.norm(dim=-1, keepdim=True)
    a, b = metric[..., ::2, :], metric[..., 1::2, :]
    scores = a @ b.transpose(-1, -2)
    if class_token:
        scores[..., 0, :] = -math.inf
    node_max, node_idx = scores.max(dim=-1)
    edge_idx = node_max.argsort(dim=-1, descending=True)[..., None]
    unm_idx = edge_idx[..., r:, :]
    src_idx = edge_idx[..., :r, :]
    dst_idx = node_idx[..., None].gather(dim=-2, index=src_idx)
    if class_token:
        unm_idx = unm_idx.sort(dim=1)[0]  # keeps the class token first
    return Matching(unm_idx, src_idx, dst_idx, r)


def merge_wavg(m: Matching, x: torch.Tensor, size: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """merge.py L210-224: size-weighted average of the merged tokens, and the new sizes."""
    if size is None:
        size = torch.ones_like(x[..., 0, None])
    x = m.merge(x * size, mode="sum")
    size = m.merge(size, mode="sum")
    return x / size, size


def clip_attention(attn: nn.Module, x: torch.Tensor, size: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """ToMeAttention.forward (timm.py L66-96) on a transformers ``CLIPAttention``: (output, keys averaged over
    heads)."""
    B, N, C = x.shape
    shape = (B, N, attn.num_heads, attn.head_dim)
    q = attn.q_proj(x).view(shape).transpose(1, 2)
    k = attn.k_proj(x).view(shape).transpose(1, 2)
    v = attn.v_proj(x).view(shape).transpose(1, 2)
    logits = torch.matmul(q, k.transpose(-1, -2)) * attn.scale
    if size is not None:  # proportional attention
        logits = logits + size.log()[:, None, None, :, 0]
    weights = logits.softmax(dim=-1, dtype=torch.float32).to(q.dtype)  # deviation 3
    out = torch.matmul(weights, v).transpose(1, 2).reshape(B, N, C)
    return attn.out_proj(out), k.mean(1)


@dataclass
class ToMeState:
    """The tokens (1, T, W) of a ToMe forward with their sizes and sources.

    ``size`` (1, T, 1) or None before the first merge; ``group`` (S,) the current row of each of
    the S initial tokens (CLS = 0); ``rep`` (T,) each row's representative initial token.
    """

    x: torch.Tensor
    size: torch.Tensor | None
    group: torch.Tensor
    rep: torch.Tensor

    def merge(self, m: Matching) -> None:
        """Apply one matching to the tokens, sizes and source tracking."""
        self.group = m.new_rows(self.x.shape[1])[self.group]
        self.rep = torch.cat([self.rep[::2][m.unm_idx[0, :, 0]], self.rep[1::2]])
        self.x, self.size = merge_wavg(m, self.x, self.size)

    def source(self) -> torch.Tensor:
        """(1, T, S) ``merge_source``'s adjacency: 1 where initial token s is in row t."""
        rows = torch.arange(self.x.shape[1], device=self.group.device)
        return (rows[:, None] == self.group[None]).to(self.x.dtype)[None]


def tome_block(layer: nn.Module, state: ToMeState, r: int, prop_attn: bool = True) -> None:
    """ToMeBlock.forward (timm.py L34-56) on a transformers ``CLIPEncoderLayer``, in place on ``state``."""
    x = state.x
    x_attn, metric = clip_attention(layer.self_attn, layer.layer_norm1(x), state.size if prop_attn else None)
    state.x = x + x_attn
    while r > 0:
        m = bipartite_soft_matching(metric, r)
        if m is None:
            raise LiteLVLMError("ToMe cannot merge a single remaining patch token")
        r -= m.r
        if r > 0:  # deviation 2: another round in this block, on the size-weighted averaged keys
            metric, _ = merge_wavg(m, metric, state.size)
        state.merge(m)
    state.x = state.x + layer.mlp(layer.layer_norm2(state.x))


@torch.no_grad()
def tome_forward(layers: list[nn.Module], hidden: torch.Tensor, schedule: list[int],
                 prop_attn: bool = True) -> ToMeState:
    """Run ``layers`` on ``hidden`` (1, S, W; CLS first), block i merging ``schedule[i]`` tokens."""
    s = hidden.shape[1]
    ar = torch.arange(s, device=hidden.device)
    state = ToMeState(hidden, None, ar, ar.clone())
    for layer, r in zip(layers, schedule, strict=True):
        tome_block(layer, state, int(r), prop_attn)
    return state


def _vision_layers(backend: Any) -> list[nn.Module]:
    model = backend.modules()
    vm = getattr(model, "vision_model", None)
    if vm is None or not hasattr(getattr(vm, "encoder", None), "layers"):
        raise UnsupportedModelError(f"ToMe runs transformers CLIP vision blocks; {backend.name!r} "
                                    f"({type(model).__name__}) has none")
    return list(vm.encoder.layers)


def _check_schedule(schedule: list[int], num_blocks: int, merges: int) -> list[int]:
    schedule = [int(r) for r in schedule]
    if len(schedule) > num_blocks or min(schedule, default=0) < 0 or sum(schedule) != merges:
        raise LiteLVLMError(f"schedule must give r >= 0 for at most {num_blocks} blocks summing to N - K = "
                            f"{merges}; got {schedule}")
    return schedule + [0] * (num_blocks - len(schedule))  # parse_r's zero padding


def tome(inputs: SelectorInputs, budget: int, *, schedule: list[int] | None = None,
         prop_attn: bool = True) -> Selection:
    """ToMe merging in the vision blocks before the feature layer, to K patch tokens."""
    vision = inputs.vision
    if vision.num_prefix_tokens != 1:
        vision.cls(0)  # raises the "no CLS token" error where there is none
        raise UnsupportedModelError("ToMe here expects one prefix (CLS) token, got "
                                    f"{vision.num_prefix_tokens}")
    num_blocks = vision.layer_index(inputs.feature_layer)
    if num_blocks < 1:
        raise LiteLVLMError(f"feature layer {inputs.feature_layer} is the embedding output: no block to "
                            "merge in")
    n = vision.num_patches
    sched = merge_schedule(n, budget, num_blocks) if schedule is None else \
        _check_schedule(schedule, num_blocks, n - budget)
    device = vision.hidden_states[0].device
    start = next((i for i, r in enumerate(sched) if r > 0), num_blocks)
    if start == num_blocks:  # deviation 4: no merge at all is the unmodified model
        idx = torch.arange(n, device=device)
        return Selection(indices=idx, parts={"assignment": idx, "size": torch.ones_like(idx),
                                             "schedule": torch.tensor(sched)})
    layers = _vision_layers(vision.backend)[start:num_blocks]
    hidden = vision.hidden_states[start][inputs.image_index:inputs.image_index + 1]
    state = tome_forward(layers, hidden, sched[start:], prop_attn)
    if state.x.shape[1] != budget + 1 or int(state.rep[0]) != 0:
        raise AssertionError(f"ToMe left {state.x.shape[1] - 1} patch tokens for budget {budget}")
    assignment = state.group[1:] - 1
    return Selection(indices=state.rep[1:] - 1, features=state.x[0, 1:],
                     parts={"assignment": assignment, "size": torch.bincount(assignment, minlength=budget),
                            "schedule": torch.tensor(sched)})

TOME = Method("clip", tome, reads_vision_blocks=True,
              name="tome",
              description="ToMe: bipartite soft matching + size-weighted merging in the CLIP blocks")
