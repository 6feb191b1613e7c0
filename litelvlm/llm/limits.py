"""What every run of a family's LLM is checked against before its forward: the positions the LLM has and the
memory its attention takes. :func:`check_llm_input` is called where a sequence enters the LLM (the contract's
``final_hidden``, :class:`~litelvlm.llm.context.LLMContext`, the generated answer's prefill, VideoGLaMM's own
``segment_clip``), so every family and command is held to the same limits.

* **positions**: a sequence (text plus visual tokens, as the family assembles it) longer than the LLM's
  ``max_position_embeddings``, or whose positions reach past it (kept tokens keeping theirs), is refused. The
  LLMs' own code computes RoPE for any position and never refuses (transformers' Llama, Phi-3 and Qwen2.5-VL,
  and 4.41's Phi-3, VideoGLaMM's official stack), so such a run would silently leave the positions the model
  was built for. Phi-3-mini-4k's sliding window (each row sees 2048 keys) narrows what a row attends to, not
  the positions: its limit is its ``max_position_embeddings``, 4096 (Phi-3-mini-4k-instruct's ``config.json``,
  no RoPE scaling).
* **memory**: eager attention (the official stacks' GLaMM and VideoGLaMM) holds each layer's (B, H, S, S)
  scores at once; a run whose scores need more than the device has is refused before it allocates, with both
  figures (:func:`litelvlm.machine.memory.check_fits`). The eager path is kept: it is the official one, and a
  chunked path would change the numbers.
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..machine.memory import check_fits, eager_attention_bytes

#: what a refusal suggests
POSITIONS_FIX = ("give a shorter expression, or fewer visual tokens to the LLM (a smaller budget; for a "
                 "video, fewer frames or a pooling arrangement)")
MEMORY_FIX = ("give a shorter expression, fewer visual tokens (a smaller budget; for a video, fewer frames "
              "or a pooling arrangement), sdpa attention where the family offers it (--attn), or a device "
              "with more memory")


def position_limit(lm) -> int | None:
    """The positions the decoder stack ``lm`` has: its config's ``max_position_embeddings`` (None: none
    declared)."""
    limit = getattr(getattr(lm, "config", None), "max_position_embeddings", None)
    return None if limit is None else int(limit)


def _device(lm) -> torch.device:
    try:
        return next(lm.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def check_positions(lm, model: str, seq_len: int, position_ids: torch.Tensor | None = None,
                    num_visual: int | None = None) -> None:
    """Refuse a sequence of ``seq_len`` tokens (``num_visual`` of them visual) at ``position_ids`` (None, or
    on the ``meta`` device: 0..S-1) that the LLM ``lm`` of ``model`` has no positions for."""
    limit = position_limit(lm)
    if limit is None:
        return
    known = position_ids is not None and position_ids.numel() > 0 and position_ids.device.type != "meta"
    reach = max(int(seq_len), int(position_ids.max()) + 1) if known else int(seq_len)
    if reach <= limit:
        return
    parts = ("" if num_visual is None else f" ({int(seq_len) - int(num_visual)} text + {int(num_visual)} "
             "visual)")
    what = (f"the prompt is {int(seq_len)} tokens{parts}" if reach == int(seq_len) else
            f"the prompt of {int(seq_len)} tokens{parts} reaches position {reach - 1}")
    text = None if num_visual is None else int(seq_len) - int(num_visual)
    fix = "give a shorter expression" if text is not None and text >= limit else POSITIONS_FIX
    raise LiteLVLMError(f"model {model}: {what}, more than the {limit} positions its LLM has "
                        f"({type(lm).__name__}, max_position_embeddings {limit}); refused before the "
                        f"forward: {fix}")


def eager_forward_bytes(lm, seq_len: int, batch: int = 1, grad: bool = False) -> int | None:
    """Peak bytes of a forward of the decoder stack ``lm`` over ``batch`` sequences of ``seq_len`` tokens when
    its attention is eager (None otherwise): one layer's attention
    (:func:`litelvlm.machine.memory.eager_attention_bytes`) and its token-wise tensors (hidden states, q/k/v,
    the MLP); ``grad``: every layer's, kept for a backward."""
    config = getattr(lm, "config", None)
    if getattr(config, "_attn_implementation", None) != "eager":
        return None
    s, b, layers = int(seq_len), int(batch), int(config.num_hidden_layers)
    dtype = getattr(lm, "dtype", torch.float32)
    size = torch.empty(0, dtype=dtype).element_size()
    hidden = int(config.hidden_size)
    width = 6 * hidden + 3 * int(getattr(config, "intermediate_size", None) or 4 * hidden)
    stream = b * s * width * size * (layers if grad else 1)
    return eager_attention_bytes(b, config.num_attention_heads, s, s, dtype, layers if grad else 0) + stream


def check_attention_memory(lm, seq_len: int, batch: int = 1, grad: bool = False, extra_rows: int = 0,
                           available: int | None = None, model: str = "") -> None:
    """Refuse a forward of ``lm`` (``model``'s LLM) over ``batch`` sequences of ``seq_len`` (+ ``extra_rows``
    generated) tokens whose eager attention needs more memory than its device has (``available``: that figure
    given instead); ``grad``: a backward will follow. Other attention implementations pass
    (:func:`eager_forward_bytes`)."""
    s = int(seq_len) + int(extra_rows)
    needed = eager_forward_bytes(lm, s, batch, grad)
    if needed is None:
        return
    config = lm.config
    dtype = str(getattr(lm, "dtype", torch.float32)).replace("torch.", "")
    layer = type(lm.layers[0].self_attn).__name__ if getattr(lm, "layers", None) else "attention"
    what = ((f"model {model}: " if model else "") + f"the LLM's eager attention ({layer}, "
            f"{config.num_attention_heads} heads, {dtype}) over {batch} sequence(s) of {s} tokens"
            + (f", kept for the backward in all {config.num_hidden_layers} layers" if grad else ""))
    check_fits(needed, what, MEMORY_FIX, _device(lm), available)


def check_llm_input(lm, model: str, seq_len: int, position_ids: torch.Tensor | None = None,
                    num_visual: int | None = None, batch: int = 1, grad: bool = False,
                    extra_rows: int = 0) -> None:
    """Both checks, before a forward of ``lm`` (``model``'s LLM): its positions (:func:`check_positions`),
    then the memory of its attention (:func:`check_attention_memory`)."""
    check_positions(lm, model, seq_len, position_ids, num_visual)
    check_attention_memory(lm, seq_len, batch, grad, extra_rows, model=model)


__all__ = ["MEMORY_FIX", "POSITIONS_FIX", "check_attention_memory", "check_llm_input", "check_positions",
           "eager_forward_bytes", "position_limit"]
