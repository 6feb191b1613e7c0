"""The vision-tower stage (:data:`~litelvlm.method_stage.TOWER_STAGE`): a method that prunes between the
encoder blocks of the family's own vision tower, the tower finishing on the tokens it keeps.

A family offering the stage (its abilities' ``tower_stage``) gives a :class:`TowerContext` for a prepared
input (``GroundingPipeline.tower_context``). The method's ``select(ctx, K)`` calls ``ctx.run(observe)``: the
tower runs its blocks up to the family's feature layer and, after each block, shows ``observe`` a
:class:`TowerBlock` (the block's output and its attention's queries, keys, values and probabilities);
``observe`` returns the positions, among the current patch tokens, of those that go on (None: all of them).
Prefix tokens (CLIP's [CLS]) always go on. The run returns the feature-layer output of the kept patches and
their original patch indices (:class:`TowerOutput`), which the method returns as ``Selection(indices,
features)``; the context maps them onto the family's LLM inputs (``TowerContext.llm_inputs``).

:class:`ClipTower` is the stage on a transformers CLIP vision tower (GLaMM's, LLaVA-1.5's): its blocks
computed from their own modules, the attention in the operation order of transformers 4.x's eager
``CLIPAttention`` (queries scaled before ``bmm``, softmax in the tower's dtype: the statements of
:mod:`litelvlm.clip.attention`, which the CLIP trace runs under the official numerics), which FlowCut's
official code patches; with nothing pruned the output is the tower's own (tested to 1e-5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..clip.attention import scaled_attention
from ..errors import LiteLVLMError, UnsupportedModelError
from . import Selection


@dataclass
class TowerBlock:
    """What a tower-stage method sees after block ``index`` (0-based; of ``TowerContext.total_blocks``).

    ``hidden`` (1, T, W) is the block's output (prefix tokens first); ``queries``, ``keys``, ``values`` (1, H,
    T, d) its attention's heads, the queries as the attention multiplies them (CLIP: scaled by d^-0.5),
    ``attention`` (1, H, T, T) its softmax probabilities; ``patches`` (T - prefix,) the original patch index
    of each current patch token; ``last``: this block's output is the feature layer (the last block the tower
    runs)."""

    index: int
    hidden: torch.Tensor
    queries: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor
    attention: torch.Tensor
    patches: torch.Tensor
    prefix: int
    last: bool


@dataclass
class TowerOutput:
    """A tower run: ``features`` (K, W) the feature-layer output of the kept patch tokens (prefix dropped),
    ``indices`` (K,) their original patch indices, in the tower's order."""

    features: torch.Tensor
    indices: torch.Tensor

    def selection(self, **parts: torch.Tensor) -> Selection:
        """The method's :class:`Selection`: the kept patches with their tower output as ``features``."""
        return Selection(indices=self.indices, features=self.features, parts=dict(parts))


Observer = Callable[[TowerBlock], "torch.Tensor | None"]


class TowerContext:
    """A family's vision tower on one input, for a tower-stage method (``method_stage.tower_step`` asks
    ``llm_inputs``). ``num_visual``: N patch tokens at the input; ``prefix``: tokens before them that always
    go on; ``total_blocks``: the tower's blocks (L); ``num_blocks``: the blocks it runs, up to the family's
    feature layer."""

    num_visual: int
    prefix: int
    total_blocks: int
    num_blocks: int
    #: the LLM's visual tokens the tower's output gives (its ``finish``): N
    num_tokens: int
    #: the family's map of a selection onto (its (K, h) LLM inputs, (K,) the visual-token index each stands
    #: for)
    to_llm: Callable[[Selection], tuple[torch.Tensor, torch.Tensor]] | None = None

    def run(self, observe: Observer) -> TowerOutput:
        """Run the tower, ``observe`` choosing after each block the patch tokens that go on."""
        raise NotImplementedError

    # -- a block in its two residual branches, for a rule that runs them on different tokens (IPCV) -------
    def embed(self) -> torch.Tensor:
        """(B, T, W) the input of block 0: B sequences (images or tiles) of T tokens, prefix tokens first."""
        raise NotImplementedError

    def attend(self, index: int, x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """``x`` plus block ``index``'s attention branch on it; ``x`` (B, T', W) holds the tokens at ``rows``
        (B, T') of the full sequences (None: all of them), whose positions and attention bounds they take."""
        raise NotImplementedError

    def feed(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """``x`` plus block ``index``'s MLP branch on it."""
        raise NotImplementedError

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """(N, h) the LLM's visual tokens from the output (B, T, W) of the last block the tower runs."""
        raise NotImplementedError

    def full_run(self) -> torch.Tensor:
        """(N, h) the LLM's visual tokens from every block on every token (:meth:`embed`, :meth:`attend`,
        :meth:`feed`, :meth:`finish`): the run the input's preparation makes, which a method running the tower
        itself makes again (this project's cost accounting, :mod:`litelvlm.cost.stage_count`)."""
        x = self.embed()
        for i in range(self.num_blocks):
            x = self.feed(i, self.attend(i, x, None))
        return self.finish(x)

    def llm_inputs(self, sel: Selection) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, h) the LLM inputs of a selection of this tower (its ``features``: the tower's output on the
        kept tokens) and (K,) the family's visual-token index each stands for."""
        if self.to_llm is None:
            raise LiteLVLMError("this vision tower is no family's: it has no map onto LLM inputs")
        return self.to_llm(sel)


def clip_attention_branch(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A ``CLIPEncoderLayer``'s attention branch on ``x`` (B, T, W) as transformers 4.x's eager
    ``CLIPAttention.forward`` computes it (the scaled queries split into heads,
    :func:`litelvlm.clip.attention.scaled_attention`): (its output (B, T, W), q, k, v (B, H, T, d), the
    probabilities (B * H, T, T))."""
    attn = layer.self_attn
    b, t, w = x.shape
    heads, d = attn.num_heads, attn.head_dim
    h = layer.layer_norm1(x)

    def split(y: torch.Tensor) -> torch.Tensor:  # 4.x's ``_shape``: (B, H, T, d), contiguous
        return y.view(b, t, heads, d).transpose(1, 2).contiguous()

    q, k, v = split(attn.q_proj(h) * attn.scale), split(attn.k_proj(h)), split(attn.v_proj(h))
    out, probs = scaled_attention(q, k, v)
    return attn.out_proj(out.transpose(1, 2).reshape(b, t, w)), q, k, v, probs.view(b * heads, t, t)


def eager_clip_block(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, TowerBlock]:
    """A transformers ``CLIPEncoderLayer`` on ``x`` (B, T, W): its output and its attention's heads and
    probabilities (:func:`clip_attention_branch`)."""
    b, t, _ = x.shape
    out, q, k, v, probs = clip_attention_branch(layer, x)
    x = x + out
    x = x + layer.mlp(layer.layer_norm2(x))
    view = TowerBlock(index=-1, hidden=x, queries=q, keys=k, values=v,
                      attention=probs.view(b, q.shape[1], t, t),
                      patches=torch.empty(0), prefix=0, last=False)
    return x, view


class ClipTower(TowerContext):
    """The stage on a transformers CLIP vision tower: ``layers`` its ``CLIPEncoderLayer`` blocks, ``hidden``
    (1, S, W) the input of block 0 (the embeddings after the pre-norm: a trace's ``hidden_states[0]``),
    ``feature_layer`` the hidden-state index the family reads (LLaVA's -2: the output of block L-2),
    ``prefix`` the [CLS] token, ``to_llm`` the family's map onto its LLM inputs."""

    def __init__(self, layers: list[nn.Module], hidden: torch.Tensor, feature_layer: int = -2,
                 prefix: int = 1,
                 to_llm: Callable[[Selection], tuple[torch.Tensor, torch.Tensor]] | None = None):
        self.layers, self.to_llm = list(layers), to_llm
        self.hidden = hidden
        self.prefix = int(prefix)
        self.total_blocks = len(self.layers)
        self.num_blocks = feature_layer % (self.total_blocks + 1)
        self.num_visual = self.num_tokens = int(hidden.shape[1]) - self.prefix
        if self.num_blocks < 1:
            raise LiteLVLMError(f"feature layer {feature_layer} is the embedding output: no vision block to "
                                "prune in")

    @classmethod
    def of(cls, backend, trace, image_index: int = 0, feature_layer: int = -2, to_llm=None) -> ClipTower:
        """The tower of a CLIP backend (``backend.modules()``, a transformers ``CLIPModel``) on one image of
        ``trace``."""
        vm = getattr(backend.modules(), "vision_model", None)
        if vm is None or not hasattr(getattr(vm, "encoder", None), "layers"):
            raise UnsupportedModelError("the vision-tower stage runs transformers CLIP vision blocks; "
                                        f"{backend.name!r} has none")
        hidden = trace.hidden_states[0][image_index:image_index + 1]
        return cls(list(vm.encoder.layers), hidden, feature_layer, trace.num_prefix_tokens, to_llm)

    @torch.no_grad()
    def run(self, observe: Observer) -> TowerOutput:
        x, p = self.hidden, self.prefix
        patches = torch.arange(self.num_visual, device=x.device)
        for i in range(self.num_blocks):
            x, view = eager_clip_block(self.layers[i], x)
            view.index, view.patches, view.prefix, view.last = i, patches, p, i == self.num_blocks - 1
            keep = observe(view)
            if keep is not None:
                keep = keep.to(x.device)
                x = torch.cat([x[:, :p], x[:, p:].index_select(1, keep)], dim=1)
                patches = patches[keep]
        return TowerOutput(features=x[0, p:], indices=patches)

    def embed(self) -> torch.Tensor:
        return self.hidden

    def attend(self, index: int, x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        return x + clip_attention_branch(self.layers[index], x)[0]

    def feed(self, index: int, x: torch.Tensor) -> torch.Tensor:
        layer = self.layers[index]
        return x + layer.mlp(layer.layer_norm2(x))

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        vis, rows = self.llm_inputs(Selection(indices=torch.arange(self.num_tokens, device=x.device),
                                              features=x[0, self.prefix:]))
        return vis[torch.argsort(rows.to(vis.device))]  # in the family's order of its visual tokens
