"""Running a family's LLM decoder layer by layer, and attention-row capture.

Attention rows are computed from a layer's own modules (``input_layernorm``, then
``attention_rows.rows_from_hidden``: ``q_proj``, ``k_proj``, RoPE) applied to the hidden states
entering that layer, for the requested query rows only, so no layer's full attention
matrix is ever materialised or stored, whatever attention implementation the model uses.

``LLMContext`` is what the ``select`` of a method acting with the LLM (stages ``llm-*`` of
:mod:`litelvlm.method`) receives: ``select(ctx, budget, **options) -> Selection``.
A method that prunes inside the LLM (FastV) sets ``selection.prune_layer``, the first decoder layer whose
input lacks the dropped tokens; its ``forward`` runs the LLM on what it kept.
"""

from __future__ import annotations

import functools

import torch
from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

from ..errors import LiteLVLMError
from ..switches import QUERY_KINDS
from .attention_rows import rows_from_hidden
from .captured import call_layers, runner_of
from .limits import check_llm_input


def causal_mask(lm, hidden: torch.Tensor, position_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None):
    """The mask the decoder layers get: built by transformers from an EXPLICIT 2-D mask (``attention_mask``,
    (B, S), 0 at a padded batch's padding; None: all ones), so non-contiguous ``position_ids`` (kept RoPE
    positions) are never taken for packed sequences; a sliding-window causal mask where the decoder's config
    sets ``sliding_window`` (Phi-3, VideoGLaMM's LLM), as its own forward."""
    ones = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
    given = ones if attention_mask is None else attention_mask
    make = create_causal_mask if sliding_window(lm) is None else create_sliding_window_causal_mask
    # the cache (none) is passed by position: transformers 5 renames that argument (``past_key_values`` ->
    # ``cache``; the old name warns and goes in 5.40)
    return make(lm.config, hidden, given, None, position_ids=position_ids)


def sliding_window(lm) -> int | None:
    """The keys a query row sees (transformers 5's ``kv_idx > q_idx - window``), None: every earlier one."""
    window = getattr(lm.config, "sliding_window", None)
    return None if window is None else int(window)


def window_mask(lm, seq_len: int, device) -> torch.Tensor | None:
    """(1, 1, S, S) bool: causal within the decoder's sliding window (None: no window, plain causal)."""
    window = sliding_window(lm)
    if window is None:
        return None
    i = torch.arange(seq_len, device=device)
    return ((i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window))[None, None]


def run_layers(lm, hidden: torch.Tensor, position_ids: torch.Tensor, start: int = 0,
               stop: int | None = None, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Hidden states after decoder layers ``start..stop-1`` of ``lm`` (the family's decoder stack, e.g.
    GLaMM's ``LlamaModel``), no final norm; ``attention_mask``: a right-padded batch's (B, S) 2-D mask (None:
    every row real)."""
    stop = len(lm.layers) if stop is None else stop
    if start >= stop:
        return hidden
    mask = causal_mask(lm, hidden, position_ids, attention_mask)
    pe = lm.rotary_emb(hidden, position_ids=position_ids)
    # ``--prefill captured``: the segment as one captured callable
    if (captured := runner_of(lm)) is not None:
        return captured.run(hidden, mask, pe, position_ids, start, stop)
    return call_layers(lm.layers[start:stop], hidden, mask, pe, position_ids)


def attention_rows_at(lm, layer: int, hidden: torch.Tensor, position_ids: torch.Tensor,
                      query_rows: torch.Tensor, kernel: str = "float32") -> torch.Tensor:
    """Softmax attention (H, Q, S) of sequence rows ``query_rows`` in decoder layer ``layer``, given the
    hidden states (1, S, h) entering it; causal by sequence index, within the decoder's sliding window where
    it has one (``attention_rows.rows_from_hidden``, probabilities computed as ``kernel``)."""
    block = lm.layers[layer]
    pe = lm.rotary_emb(hidden, position_ids=position_ids)
    mask = window_mask(lm, hidden.shape[1], hidden.device)
    return rows_from_hidden(block.self_attn, block.input_layernorm(hidden), pe, mask, query_rows,
                            kernel=kernel)[0]


class LLMContext:
    """The unpruned sequence of one prepared image, with cached per-layer hidden states (the sequence checked
    against the LLM's positions and memory when the context is made:
    :func:`litelvlm.llm.limits.check_llm_input`).

    ``embeds`` (1, S, h) holds the N visual tokens at ``image_start``; ``seg_predictors`` are the
    positions predicting each [SEG]; ``hidden_before(l)`` is what enters decoder layer ``l``.
    """

    def __init__(self, pipeline, prepared, visual_embeds: torch.Tensor, position_rule: str | None = None):
        self.pipeline = pipeline
        #: the RoPE positions of the tokens a method keeps inside the LLM: ``keep`` (theirs), ``renumber``,
        #: ``pad`` (PosPad, applied at the LLM input only: :mod:`litelvlm.llm.positions_pad`), or None: the
        #: method's official rule (``Method.positions``)
        self.position_rule = position_rule
        self.prepared = prepared
        self.visual_embeds = visual_embeds
        self.num_visual = int(visual_embeds.shape[0])
        #: where the visual tokens sit, the rows predicting each [SEG] and the positions (the family's)
        self.layout = pipeline.layout(prepared, self.num_visual)
        check_llm_input(pipeline.language_model, pipeline.name, self.layout.seq_len, self.layout.position_ids,
                        self.num_visual)
        self.image_start = self.layout.image_start
        self.seq_len = self.layout.seq_len
        self.position_ids = self.layout.position_ids
        self.seg_predictors = self.layout.seg_predictors
        self._hidden: dict[int, torch.Tensor] = {}
        numerics = pipeline.numerics
        #: ``model``: FastV and SparseVLM score as their official code (the model's dtype); ``float32``.
        self.score_dtype = "float32" if numerics is None else numerics.score_dtype

    # the sequence is embedded on first use: a method that reads none of it (``none``) costs nothing
    @functools.cached_property
    def embeds(self) -> torch.Tensor:
        """(1, S, h) input embeddings of the unpruned sequence."""
        return self.pipeline.sequence_embeds(self.prepared, self.visual_embeds)

    @property
    def lm(self):
        return self.pipeline.language_model

    @property
    def num_layers(self) -> int:
        return len(self.lm.layers)

    def positions(self, keep: torch.Tensor) -> torch.Tensor:
        """The original RoPE positions of the sequence rows ``keep`` (pruned tokens keep theirs)."""
        return self.layout.positions(keep)

    def pruned_positions(self, keep: torch.Tensor, official: str) -> torch.Tensor:
        """Positions of the pruned sequence made of the rows ``keep`` (sorted), by ``position_rule`` (None:
        the calling method's ``official`` rule): the rows' own (``keep``) or the family's positions of a
        sequence of that length (``renumber``: 0..S'-1 for 1-D RoPE). ``pad`` is refused: its markers are
        tokens the pruned sequence gains, which positions alone cannot give (``ground`` applies it at the LLM
        input)."""
        rule = self.position_rule or official
        if rule == "pad":
            raise LiteLVLMError("positions='pad' (PosPad) adds one marker per dropped run at the LLM input; "
                                "a sequence pruned inside the LLM has no markers, so it has no pad positions")
        if rule == "keep":
            return self.positions(keep)
        kept_visual = int(keep.numel()) - (self.seq_len - self.num_visual)
        return self.pipeline.layout(self.prepared, kept_visual).position_ids.to(keep.device)

    def visual_slice(self) -> slice:
        return slice(self.image_start, self.image_start + self.num_visual)

    def hidden_before(self, layer: int) -> torch.Tensor:
        """Hidden states (1, S, h) entering decoder layer ``layer`` (cached; computed from the nearest
        one)."""
        if not 0 <= layer <= self.num_layers:
            raise LiteLVLMError(f"layer must be in 0..{self.num_layers}; got {layer}")
        if not self._hidden:
            self._hidden[0] = self.embeds
        if layer not in self._hidden:
            start = max(k for k in self._hidden if k < layer)
            self._hidden[layer] = run_layers(self.lm, self._hidden[start], self.position_ids, start, layer)
        return self._hidden[layer]

    def query_rows(self, queries: str | torch.Tensor) -> torch.Tensor:
        """Sequence rows for a query kind: ``last`` (the last token), ``text`` (every text token after
        the image), ``seg`` (the tokens predicting [SEG]); or explicit positions."""
        if isinstance(queries, torch.Tensor):
            return queries.long()
        if queries == "last":
            return torch.tensor([self.seq_len - 1])
        if queries == "text":
            return torch.arange(self.image_start + self.num_visual, self.seq_len)
        if queries == "seg":
            return self.seg_predictors.clone()
        raise LiteLVLMError(f"unknown query kind {queries!r}; choose one of {', '.join(QUERY_KINDS)}")

    def attention_rows(self, layer: int, queries: str | torch.Tensor = "last",
                       kernel: str = "float32") -> torch.Tensor:
        """Attention (H, Q, S) of the query rows in decoder layer ``layer`` (0-based), computed as ``kernel``
        (``attention_rows.ROW_KERNELS``)."""
        if not 0 <= layer < self.num_layers:
            raise LiteLVLMError(f"attention layer must be in 0..{self.num_layers - 1}; got {layer}")
        rows = self.query_rows(queries).to(self.embeds.device)
        return attention_rows_at(self.lm, layer, self.hidden_before(layer), self.position_ids, rows, kernel)

    def visual_attention(self, layer: int, queries: str | torch.Tensor = "last",
                         kernel: str = "float32") -> torch.Tensor:
        """(N,) attention each visual token receives, averaged over heads and query rows. With a
        model-dtype ``kernel``, in that dtype: the mean over heads first (FastV's ``torch.mean(attn,
        dim=1)``)."""
        rows = self.attention_rows(layer, queries, kernel)
        if kernel == "float32":
            return rows[:, :, self.visual_slice()].mean(dim=(0, 1))
        return rows.mean(0)[:, self.visual_slice()].mean(0)
