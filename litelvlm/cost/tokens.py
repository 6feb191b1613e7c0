"""The decoder sizes and token schedules every family's cost shares, and FlopCounterMode's count of a
callable.

One token schedule per method (:class:`TokenPlan`: the visual tokens each LLM layer sees, as stages
``[(first_layer, visual_tokens), ...]``) drives both the analytic counts (``analysis.common.measures.flops``)
and the prefill the efficiency study runs (:class:`litelvlm.cost.parts.PrefillParts`): the unpruned baseline
is [(0, N)], methods pruning before the LLM [(0, K)], a method pruning once inside it [(0, N), (K_layer, K)];
a method pruning at several LLM layers (SparseVLM) a longer list. ``k``, the width of the key and value
projections (``num_key_value_heads`` x head_dim), is ``d`` without grouped-query attention (:func:`kv_width`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..errors import LiteLVLMError
from ..methods import get_method


class LLMSizes(Protocol):
    """The decoder sizes the counts read: width d, SwiGLU width m, layers L, vocabulary V (a ``GlammArch`` has
    them; :class:`DecoderSizes` reads them from any family's decoder config), and optionally the key/value
    width ``llm_kv_hidden`` (:func:`kv_width`)."""

    llm_hidden: int
    llm_intermediate: int
    llm_layers: int
    vocab_size: int


@dataclass(frozen=True)
class DecoderSizes:
    """:class:`LLMSizes` of a family's decoder, read from its transformers config (Llama, Qwen2: any decoder
    with ``hidden_size``, ``intermediate_size``, ``num_hidden_layers``, ``vocab_size``;
    ``num_key_value_heads`` and ``head_dim`` where it has them). ``llm_kv_hidden`` None: the key/value width
    is ``llm_hidden``."""

    llm_hidden: int
    llm_intermediate: int
    llm_layers: int
    vocab_size: int
    llm_kv_hidden: int | None = None

    @classmethod
    def of(cls, config) -> DecoderSizes:
        """The sizes of the decoder configured by ``config`` (e.g. ``pipeline.language_model.config``)."""
        d, heads = int(config.hidden_size), int(config.num_attention_heads)
        head_dim = int(getattr(config, "head_dim", None) or d // heads)
        kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
        kv = kv_heads * head_dim
        if head_dim * heads != d:
            raise LiteLVLMError(f"the decoder's heads x head_dim ({heads} x {head_dim}) is not its width {d}")
        return cls(d, int(config.intermediate_size), int(config.num_hidden_layers), int(config.vocab_size),
                   None if kv == d else kv)


def kv_width(s: LLMSizes) -> int:
    """The width of the key and value projections: ``num_key_value_heads`` x head_dim (``d`` without GQA)."""
    return getattr(s, "llm_kv_hidden", None) or s.llm_hidden


def projection_macs(s: LLMSizes, n: int) -> int:
    """Multiply-accumulates of one layer's q, k, v and o projections on ``n`` tokens: ``2·n·d² + 2·n·d·k``
    (``4·n·d²`` without GQA; biases not counted, as FlopCounterMode counts none)."""
    d = s.llm_hidden
    return 2 * n * d * d + 2 * n * d * kv_width(s)


@dataclass(frozen=True)
class TokenPlan:
    """How many tokens each LLM layer sees: ``text_tokens`` text tokens at every layer, and the visual
    tokens of ``stages`` = ((first_layer, visual_tokens), ...): from ``first_layer`` on (up to the next
    stage's first layer) the layers see ``visual_tokens``. The first stage starts at layer 0."""

    text_tokens: int
    stages: tuple[tuple[int, int], ...]
    #: the LLM-side method that realises a multi-stage plan, and its budget ("" / 0: none needed)
    method: str = ""
    budget: int = 0

    def __post_init__(self) -> None:
        firsts = [first for first, _ in self.stages]
        if not firsts or firsts[0] != 0 or any(b <= a for a, b in zip(firsts, firsts[1:])):
            raise LiteLVLMError("token stages must start at layer 0 with increasing layers; got "
                                f"{self.stages}")

    @classmethod
    def uniform(cls, n: int) -> TokenPlan:
        """Every layer sees ``n`` tokens (counted as text: the count does not tell them apart)."""
        return cls(n, ((0, 0),))

    @property
    def n_before(self) -> int:
        """Tokens entering the LLM (the first layers)."""
        return self.text_tokens + self.stages[0][1]

    @property
    def n_tokens(self) -> int:
        """Tokens at the LLM output (what the LM head and the final hidden states see)."""
        return self.text_tokens + self.stages[-1][1]

    @property
    def prune_layer(self) -> int:
        """The first layer that sees fewer tokens than the input (0: pruned before the LLM, or not at all)."""
        return self.stages[1][0] if len(self.stages) > 1 else 0

    def layers(self, num_layers: int) -> list[tuple[int, int]]:
        """[(count of layers, tokens)] per stage, for an LLM of ``num_layers`` layers."""
        if self.stages[-1][0] >= num_layers:
            raise LiteLVLMError(f"token stages {self.stages} need more than {num_layers} LLM layers")
        ends = [first for first, _ in self.stages[1:]] + [num_layers]
        return [(end - first, self.text_tokens + visual) for (first, visual), end in zip(self.stages, ends)]


def selects_on_clip(spec) -> bool:
    """Whether the method selects before the LLM on CLIP's side: on the CLIP traces (no forward of its own,
    and the CLIP traces are what it reads, not the LLM's inputs), or inside the vision tower (re-running the
    tower's blocks from its embeddings, as ToMe re-runs them; the tower's own forward stays counted
    unpruned)."""
    return spec.forward is None and (spec.uses_clip or spec.prunes_in_vision_tower) and not spec.reads_clip


def selects_on_llm_input(spec) -> bool:
    """Whether the method selects on the LLM's input embeddings (no forward of its own; not the unpruned
    baseline)."""
    return spec.forward is None and not spec.baseline and not selects_on_clip(spec)


def schedule_plan(method: str, budget: int, num_visual: int, num_layers: int, text_tokens: int,
                  options: dict | None = None, spec=None) -> TokenPlan:
    """The token schedule of ``method`` at visual budget ``budget`` for any family: ``num_visual`` visual
    tokens unpruned, ``num_layers`` decoder layers, ``text_tokens`` text tokens around them; ``options``: the
    method's own (``Method.options_from``; its defaults where absent); ``spec``: the method as the family runs
    it (None: as registered). The plan names the method when the method itself must run to realise it (its
    selection happens with the LLM), not for CLIP-side methods or the unpruned baseline."""
    spec = get_method(method) if spec is None else spec
    budget = num_visual if spec.baseline else budget
    stages = tuple(spec.schedule(budget, num_visual, num_layers, **(options or {})))
    runs = not selects_on_clip(spec) and not spec.baseline
    return TokenPlan(text_tokens, stages, method if runs else "", budget if runs else 0)


def count_flops(fn: Callable[[], object]) -> tuple[int, dict[str, int]]:
    """Run ``fn`` under FlopCounterMode: (total FLOPs, FLOPs per aten op)."""
    fc = FlopCounterMode(display=False)
    with torch.no_grad(), fc:
        fn()
    return int(fc.get_total_flops()), {str(k): int(v) for k,
                                       v in fc.get_flop_counts().get("Global", {}).items()}
