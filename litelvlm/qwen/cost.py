"""What every Qwen2.5-VL + SAM 2 family's cost description shares (:class:`QwenSam2Cost`): the study's tiny
LLM depth, the paired CLIP's sizes, attention switching, the vision tower's index tensors on ``meta``, the
prompt of the study's sentence and its synthetic stand-in, and the parts and FLOPs rows
(:mod:`litelvlm.qwen.cost_parts`). A family's cost subclasses it with its own architectures, model and image
view (``arch``, ``build``, ``prepare_image``, ``vision_inputs``, ``vision_forward``)."""

from __future__ import annotations

from dataclasses import replace

import torch
from PIL import Image

from litelvlm.lvlm.numerics import set_attention as set_attn

from ..cost import CostArch, FamilyCost
from ..cost.clip import SENTENCE, synthetic_image
from .config import get_preset as qwen_preset
from .cost_parts import QwenSam2Parts, count_rows

#: layers of the tiny LLM in this study (``litelvlm.qwen.config.PRESETS['tiny']`` has 2)
TINY_LLM_LAYERS = 4


def with_study_llm(preset):
    """A family preset on Qwen2.5-VL as the cost study builds it: the tiny one with its LLM at
    :data:`TINY_LLM_LAYERS` layers, any other as it is."""
    if preset.name != "tiny":
        return preset
    q = qwen_preset(preset.qwen)
    return replace(preset, qwen=replace(q, name=f"{q.name}-{TINY_LLM_LAYERS}-layers", layers=TINY_LLM_LAYERS))


#: the external CLIP a preset's random model pairs (each family pipeline's ``default_clip``): its
#: ``litelvlm.clip.random_init.ARCHS`` sizes (a real checkpoint pairs ViT-L/14-336, the 3B/7B's)
PAIRED_CLIP = {"3b": "vit-l-14-336", "7b": "vit-l-14-336", "tiny": "tiny-336"}


def set_attention(pipe, attn: str) -> None:
    """Attention implementation ``attn`` in Qwen2.5-VL (decoder and vision tower), SAM 2 and the paired CLIP
    (same weights; ``flash``: the decoder's, the others sdpa)."""
    set_attn(attn, pipe.qwen, pipe.sam2.model, pipe.clip.model, llm=pipe.language_model,
             clip_softmax=pipe.numerics.clip_softmax)
    pipe.numerics = replace(pipe.numerics, attn=attn)


def synthetic_prompt(prepared, arch: CostArch, seg_token_id: int):
    """``prepared`` with a prompt of ``arch.text_tokens`` text tokens: ordinary tokens, the N video pads after
    ``prefix_tokens`` of them, ``<|seg|>`` two tokens before the end where it fits (``--text-tokens``)."""
    n, start = int(prepared.visual.shape[0]), int(torch.nonzero(prepared.mm_token_type_ids > 0).flatten()[0])
    pad, video = prepared.input_ids[start], prepared.mm_token_type_ids[start]
    total, p = arch.text_tokens + n, arch.prefix_tokens
    ids = 3 + torch.arange(total) % 200  # ordinary tokens of every vocabulary (below the special tokens)
    types = torch.zeros(total, dtype=prepared.mm_token_type_ids.dtype)
    ids[p:p + n], types[p:p + n] = pad, video
    ids[max(p + n + 1, total - 2)] = seg_token_id
    return replace(prepared, input_ids=ids, mm_token_type_ids=types)


def with_sentence(pipe, arch: CostArch, base):
    """``with_sentences`` of the pipeline for :data:`SENTENCE` (the protocol's prompt); with
    ``--text-tokens``, the
    :func:`synthetic_prompt` of that length in its place."""
    prepared = pipe.with_sentences(base, [SENTENCE])
    n = pipe.num_visual(prepared)
    if n != arch.num_patches:
        raise AssertionError(f"the image gives {n} visual tokens, the arch says {arch.num_patches}")
    if prepared.input_ids.numel() - n == arch.text_tokens:
        return prepared
    return synthetic_prompt(prepared, arch, pipe.seg_token_id)


class QwenSam2Cost(FamilyCost):
    """The cost of a Qwen2.5-VL + SAM 2 family: N depends on the image, float32 CPU timing, no quantization
    yet; the parts and rows of :mod:`litelvlm.qwen.cost_parts`, with the family's hooks (the image's view, the
    vision forward)."""

    fixed_grid = False  # N: the merged tokens of the image, so a budget above it is skipped, as per image
    cpu_dtype = "float32"  # its bfloat16 CPU timing fails in its seg head (float32 input)
    offers_quantize = False  # the pipelines' from_model_string refuse it too

    def count(self, arch, rows, attns, dtype, method_args):
        return count_rows(self, arch, rows, attns, dtype, method_args)

    def set_attention(self, pipe, attn: str) -> None:
        set_attention(pipe, attn)

    def parts(self, pipe, arch, method_args):
        return QwenSam2Parts(self, pipe, arch, method_args)

    # -- the family's hooks ----------------------------------------------------------------------------------
    def prepare_image(self, pipe, image: Image.Image):
        """The pipeline's ``prepare_image`` (on ``meta``, the same statements with the tower's index
        tensors)."""
        raise NotImplementedError

    def vision_inputs(self, pipe, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """(pixels, grid) the vision tower reads for ``image``."""
        raise NotImplementedError

    def vision_forward(self, pipe, pixels: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """The merged tokens of ``prepare_image``'s vision forward on a real device."""
        raise NotImplementedError

    def with_sentence(self, pipe, arch: CostArch, base):
        return with_sentence(pipe, arch, base)

    def prepare(self, pipe, arch: CostArch, image: Image.Image | None = None):
        """The pipeline's per-image steps: :meth:`prepare_image`, then :meth:`with_sentence`."""
        return self.with_sentence(pipe, arch,
                                  self.prepare_image(pipe, synthetic_image() if image is None else image))
