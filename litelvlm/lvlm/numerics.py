"""How the GLaMM pipeline computes: attention kernels, CLIP image preprocessing, scoring precision.

The official evaluation (sejong-rcv/LiteLVLM @5896153 on transformers 4.28.0.dev0 / torch 1.13)
runs eager attention in LLaMA, CLIP and SAM (CLIP's as transformers 4.x computes it:
:mod:`litelvlm.clip.attention`), resizes CLIP's input with PIL, and scores the
in-LLM methods (FastV, SparseVLM, DART) in the model's dtype. ``Numerics.official()`` is that
stack and the default of ``--protocol official``; ``Numerics.project()`` is what this project
ran before (transformers' SDPA, its torchvision-backed CLIP processor, float32 scoring, transformers 5's
eager CLIP kernel where eager is asked), kept as the default of ``--protocol per-expression`` so that
protocol's results do not change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from transformers.models.sam.modeling_sam import SAM_VISION_ATTENTION_CLASSES
from transformers.utils import logging

from ..clip.attention import clip_models
from ..clip.attention import register as register_clip
from ..llm.flash import check_flash, register
from ..switches import ATTN_IMPLEMENTATIONS, CLIP_PREPROCESSING, CLIP_SOFTMAXES, SCORE_DTYPES, check_one_of


@dataclass(frozen=True)
class Numerics:
    """Kernel, preprocessing and scoring-precision choices of one pipeline."""

    attn: str = "eager"
    clip_preprocess: str = "official"
    score_dtype: str = "model"
    clip_softmax: str = "official"

    def __post_init__(self) -> None:
        for name, value, allowed in (("attn", self.attn, ATTN_IMPLEMENTATIONS),
                                     ("clip_preprocess", self.clip_preprocess, CLIP_PREPROCESSING),
                                     ("score_dtype", self.score_dtype, SCORE_DTYPES),
                                     ("clip_softmax", self.clip_softmax, CLIP_SOFTMAXES)):
            check_one_of(name, value, allowed)

    @classmethod
    def official(cls) -> Numerics:
        """The official stack: eager attention (CLIP's 4.x kernel), the 4.28 PIL preprocessing, scores in the
        model's dtype."""
        return cls("eager", "official", "model", "official")

    @classmethod
    def project(cls) -> Numerics:
        """This project's earlier numerics: SDPA, transformers' processor, float32 scores, transformers 5's
        eager CLIP kernel."""
        return cls("sdpa", "transformers", "float32", "float32")

    @classmethod
    def for_protocol(cls, protocol: str, **overrides: str | None) -> Numerics:
        """The default of ``protocol`` (``official`` or ``per-expression``), with non-None ``overrides``."""
        base = cls.official() if protocol == "official" else cls.project()
        d = asdict(base)
        d.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def record(self, llm) -> dict:
        """What a pipeline's run record (``describe()``) holds of them: ``numerics`` (:meth:`to_dict`) and
        ``llm_attn_implementation``, the LLM's effective ``config._attn_implementation``."""
        return {"numerics": self.to_dict(), "llm_attn_implementation": llm_attn_implementation(llm)}


def _checked(attn: str) -> str:
    check_one_of("attn", attn, ATTN_IMPLEMENTATIONS)
    return attn


def llm_implementation(attn: str) -> str:
    """The ``config._attn_implementation`` the LLM runs for ``--attn attn``: the one mapping of the names
    (``flash``: the implementation :mod:`litelvlm.llm.flash` registers, registered here on first use)."""
    if _checked(attn) == "flash":
        return register()
    return attn


def tower_implementation(attn: str) -> str:
    """The implementation CLIP, SAM and the vision towers run for ``--attn attn``: ``sdpa`` for ``flash``."""
    return "sdpa" if _checked(attn) == "flash" else attn


def clip_implementation(attn: str, clip_softmax: str = "official") -> str:
    """The implementation transformers' CLIP towers run for ``--attn attn``: under ``eager``, 4.x's kernel
    (:data:`litelvlm.clip.attention.NAME`, registered here on first use) for ``clip_softmax="official"``,
    transformers 5's ``eager`` for ``float32``; :func:`tower_implementation` otherwise."""
    check_one_of("clip_softmax", clip_softmax, CLIP_SOFTMAXES)
    towers = tower_implementation(attn)
    return register_clip() if towers == "eager" and clip_softmax == "official" else towers


def set_attention(attn: str, *models, llm=None, clip_softmax: str = "official") -> None:
    """Switch every transformers model in ``models`` (GLaMM's LLaVA and SAM, the CLIP backend's model, a
    Qwen2.5-VL, SAM 2) to :func:`tower_implementation` of ``attn`` (``eager``: the official stack's;
    ``sdpa``), the CLIP models among them (:func:`litelvlm.clip.attention.clip_models`) to
    :func:`clip_implementation` of ``attn`` and ``clip_softmax``, then ``llm`` (the LLM's decoder, a sub-model
    of one of them or not) to :func:`llm_implementation`. ``flash`` needs ``llm``, on CUDA in float16 /
    bfloat16 (:func:`litelvlm.llm.flash.check_flash`)."""
    towers = tower_implementation(attn)
    clip = clip_implementation(attn, clip_softmax)
    if attn == "flash":
        if llm is None:
            raise ValueError("attn='flash' applies to an LLM: pass llm=")
        check_flash(llm)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # SamModel's sub-configs without a sub-model warn on every switch
    try:
        for model in models:
            if model is not None and getattr(model.config, "_attn_implementation", None) != towers:
                model.set_attn_implementation(towers)
            if model is not None:
                _sam_vision_attention(model, towers)
            for sub in clip_models(model):
                if sub.config._attn_implementation != clip:
                    sub.set_attn_implementation(clip)
        name = llm_implementation(attn)
        if llm is not None and llm.config._attn_implementation != name:
            llm.set_attn_implementation(name)
    finally:
        logging.set_verbosity(verbosity)


def llm_attn_implementation(llm) -> str:
    """What a run records as ``llm_attn_implementation``: the LLM's effective
    ``config._attn_implementation``."""
    return str(llm.config._attn_implementation)


def _sam_vision_attention(model, attn: str) -> None:
    """transformers' ``SamModel`` picks its image encoder's attention class when it is built
    (``SAM_VISION_ATTENTION_CLASSES[config._attn_implementation]``), so ``set_attn_implementation`` only
    reaches the mask decoder. Give each ViT layer a new attention module of ``attn``'s class, built on the
    meta device, that holds the old module's parameters (the same tensors: no copy, no change of weights)."""
    encoder = getattr(model, "vision_encoder", None)
    layers = getattr(encoder, "layers", None)
    if layers is None:
        return

    cls = SAM_VISION_ATTENTION_CLASSES[attn]
    for layer in layers:
        old = layer.attn
        if type(old) is cls:
            continue
        with torch.device("meta"):
            new = cls(encoder.config, layer.window_size)
        for name, child in old.named_children():
            setattr(new, name, child)
        for name, param in old.named_parameters(recurse=False):
            setattr(new, name, param)
        layer.attn = new.train(old.training)
