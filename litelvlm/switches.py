"""The values each switch of a run takes, declared once: the library checks these tuples and the commands
offer them as choices; the modules that act on a switch import its tuple from here. This module is light (it
imports nothing but the error type), so a command's option module reads it before torch loads, and every
package of the library may import it.

Where each is used: the numerics (:mod:`litelvlm.lvlm.numerics`), the layer dtype
(:mod:`litelvlm.lvlm.upcast`), the kept tokens' positions (:mod:`litelvlm.lvlm.family`), the encoders
(:mod:`litelvlm.lvlm.encoders`), the prefill (:mod:`litelvlm.llm.captured`), the LLM's query rows
(:mod:`litelvlm.llm.context`), the paired CLIP (:mod:`litelvlm.clip`, :mod:`litelvlm.qwen.mapped`), the answer
and the video frames (the families), the ground truth's masks (:mod:`litelvlm.data.segmentation`), the
quantization (:mod:`litelvlm.models.quantize`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import LiteLVLMError

#: ``--attn``: attention kernels of the LLM, CLIP (vision and text), the vision towers and SAM. ``flash`` is
#: SDPA held to PyTorch's FlashAttention backend in the LLM (:mod:`litelvlm.llm.flash`, CUDA only), ``sdpa``
#: in the other modules.
ATTN_IMPLEMENTATIONS: tuple[str, ...] = ("eager", "sdpa", "flash")
#: ``--clip-preprocess``: ``official`` = the transformers 4.28 PIL path (resize with PIL bicubic, floor-offset
#: centre crop, float32 rescale and normalisation); ``transformers`` = the installed transformers' default
#: ``CLIPImageProcessor`` (torchvision-backed in transformers 5).
CLIP_PREPROCESSING: tuple[str, ...] = ("official", "transformers")
#: ``--score-dtype``: precision of the in-LLM methods' scores: ``model`` (the official: the model's
#: dtype, e.g. bfloat16 attention probabilities) or ``float32`` (this project's earlier choice).
SCORE_DTYPES: tuple[str, ...] = ("model", "float32")
#: ``--clip-softmax``: CLIP's eager attention (vision and text towers, under ``--attn eager``): ``official`` =
#: transformers 4.x's (queries scaled before the product, softmax in the tower's dtype;
#: :mod:`litelvlm.clip.attention`); ``float32`` = transformers 5's eager kernel (scaled after the product,
#: softmax in float32), this project's earlier computation. The same in float32 at CLIP's head sizes.
CLIP_SOFTMAXES: tuple[str, ...] = ("official", "float32")
#: ``--layer-dtype``: ``model`` (the weights' dtype, the official), ``float32``, or ``auto`` (the faster of
#: the two on this machine: :func:`litelvlm.lvlm.upcast.resolve_layer_dtype`)
LAYER_DTYPES: tuple[str, ...] = ("model", "float32", "auto")
#: ``--positions`` (``ground(positions=...)``): each method's ``official`` rule for its kept tokens' RoPE
#: positions (``Method.positions``), or every method's kept tokens ``keep`` their original positions, or are
#: ``renumber``-ed, or ``pad`` (PosPad: original positions, one marker per dropped run;
#: :mod:`litelvlm.llm.positions_pad`)
POSITION_SWITCH: tuple[str, ...] = ("official", "keep", "renumber", "pad")
#: ``--encoders`` values once resolved (``auto`` is :func:`litelvlm.lvlm.encoders.default_mode` of the device)
ENCODER_MODES: tuple[str, ...] = ("eager", "graph", "fused", "compile", "compile-eager", "fused-eager")
#: the encoder modes that record CUDA graphs (refused off CUDA)
CUDA_MODES: tuple[str, ...] = ("graph", "fused")
#: ``--encoders`` choices
ENCODER_CHOICES: tuple[str, ...] = ("auto", *ENCODER_MODES)
#: ``--prefill`` values once resolved: ``eager`` (each layer from Python) or ``captured``
#: (:mod:`litelvlm.llm.captured`); the commands offer ``auto`` besides
PREFILLS: tuple[str, ...] = ("eager", "captured")
#: the LLM's query rows whose attention a method or study reads: the ``[SEG]``-predicting token, the last
#: token, every text token (:meth:`litelvlm.llm.context.LLMContext.query_rows`)
QUERY_KINDS: tuple[str, ...] = ("seg", "last", "text")
#: the CLIP back-ends: ``hf`` (transformers) and ``open_clip``
CLIP_BACKENDS: tuple[str, ...] = ("hf", "open_clip")
#: what the paired CLIP's text encoder embeds: the formatted question (official) or the bare expression
CLIP_TEXTS: tuple[str, ...] = ("question", "expression")
#: where LiteLVLM's context part comes from on a family whose LLM reads another vision tower than CLIP
#: (:mod:`litelvlm.qwen.mapped`)
CLIP_CONTEXTS: tuple[str, ...] = ("clip", "vit")
#: where LiteLVLM's similarity part comes from there (``llm``: this project's adaptation)
CLIP_SIMILARITIES: tuple[str, ...] = ("clip", "llm")
#: how a family's answer is produced before its ``[SEG]`` states are read: teacher-forced (a fixed answer) or
#: generated (which of the two is a family's official, its pipeline says)
ANSWERS: tuple[str, ...] = ("teacher-forced", "generate")
#: how a video prompt's frames meet a family's square-only pooling: ``pool`` (the official: every frame to
#: 12 x 12 whatever it kept), ``pool-min`` (to min(sqrt K, 12) squared) or ``direct`` (no pooling); the last
#: two this project's readings (docs/video.md, "Which arrangement, and why")
ARRANGEMENTS: tuple[str, ...] = ("pool", "pool-min", "direct")
#: how a video's budget is shared among its frames: ``uniform``, or by each frame's CLIP ``relevance``
#: (:mod:`litelvlm.videoglamm.allocation`)
FRAME_ALLOCATIONS: tuple[str, ...] = ("uniform", "relevance")
#: the gradient target of the saliency methods and studies (``--target``): the mask logits inside the
#: predicted mask, or the ``[SEG]`` prompt-embedding norm (:mod:`litelvlm.methods.saliency`)
SALIENCY_TARGETS: tuple[str, ...] = ("mask", "seg_norm")
#: ``--gt-parts``: how the polygon parts of one object become a mask: ``union`` (this project's: overlapping
#: parts stay 1) or ``sum`` (the official REFER ``getMask``: part counts, so overlaps are 2)
MASK_PARTS: tuple[str, ...] = ("union", "sum")
#: ``--quantize``: the weights as they are, LLM.int8() or 4-bit NF4 (which weights, each command's help says)
QUANTIZE_MODES: tuple[str, ...] = ("none", "int8", "nf4")
#: ``--quantize-backend``: the library that quantizes (the ``quantize`` extra; imported only when asked)
QUANTIZE_BACKENDS: tuple[str, ...] = ("bitsandbytes", "torchao")


def check_one_of(what: str, value: object, names: Sequence[str]) -> None:
    """Refuse ``value`` unless it is one of ``names``: a :class:`LiteLVLMError` "``what`` must be one of
    ...; got ...\"."""
    if value not in names:
        raise LiteLVLMError(f"{what} must be one of {', '.join(names)}; got {value!r}")


__all__ = ["ANSWERS", "ARRANGEMENTS", "ATTN_IMPLEMENTATIONS", "CLIP_BACKENDS", "CLIP_CONTEXTS",
           "CLIP_PREPROCESSING", "CLIP_SIMILARITIES", "CLIP_SOFTMAXES", "CLIP_TEXTS", "CUDA_MODES",
           "ENCODER_CHOICES", "ENCODER_MODES", "FRAME_ALLOCATIONS", "LAYER_DTYPES", "MASK_PARTS",
           "POSITION_SWITCH", "PREFILLS", "QUANTIZE_BACKENDS", "QUANTIZE_MODES", "QUERY_KINDS",
           "SALIENCY_TARGETS", "SCORE_DTYPES", "check_one_of"]
