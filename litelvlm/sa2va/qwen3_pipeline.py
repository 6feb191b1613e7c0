"""``Sa2VAQwen3Pipeline``: Sa2VA-Qwen3-VL (``ByteDance/Sa2VA-Qwen3-VL-4B``), the ``sa2va`` family on Qwen3-VL.

Official source: bytedance/Sa2VA @ 9832e1a, ``projects/sa2va/hf/models_qwen3vl/``; pruning it is this
project's (``describe()`` says so on every run).

Details: docs/sa2va.md (`litelvlm.sa2va.qwen3_pipeline`).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..qwen_vision.vision import QwenVision
from ..qwen_vision.vit_attention import received_from
from ..switches import check_one_of
from .clip_pairing import default_clip
from .deepstack import DeepStack, match_rows
from .pipeline import Sa2VAPipeline

#: what Sa2VA-Qwen3-VL refuses beyond Sa2VA-Qwen2.5-VL (:class:`~litelvlm.lvlm.abilities.Abilities`
#: ``refuses``)
REFUSES = {"vscan": "{method}'s Qwen2.5-VL code takes its local scan from the vision tower's first "
                    "full-attention block (fullatt_block_indexes[0]), the first block between Qwen2.5-VL's "
                    "window-attention blocks; Qwen3-VL's tower has no window attention (every block attends "
                    "to the whole image), so that block has no counterpart on it"}
#: how ``describe()`` labels DeepStack under pruning
DEEPSTACK = ("official on the unpruned sequence (the features of the ViT blocks deepstack_visual_indexes "
             "added to the visual rows after the first LLM layers); pruned (this project's adaptation): each "
             "kept visual token carries its own features, a merged or pooled token none")
#: ``seg_state``: what the mask head reads at the ``[SEG]`` row -> the abilities' ``seg_reads`` and how
#: ``describe()`` labels it (docs/sa2va.md)
SEG_STATES = {
    "unnormed": ("norm_input", "the last decoder layer's output before the final RMSNorm (the official "
                               "predict_forward under its pin, transformers 4.57: hidden_states[-1])"),
    "normed": ("final", "the final normed hidden state (this project's option: transformers 5's "
                        "hidden_states[-1])")}
#: how ``describe()`` labels this backbone's pruning
PRUNING = ("this project's adaptation: Sa2VA has no official pruning; budgets count the merged visual tokens "
           "of the Qwen3-VL grid; the methods' Qwen2.5-VL variants run on Qwen3-VL's tower (no window "
           "attention) where they apply")


class Qwen3Vision(QwenVision):
    """One image's pass through Qwen3-VL's vision tower (``Qwen3VLVisionModel``) for the methods' Qwen
    variants:
    as :class:`~litelvlm.qwen_vision.vision.QwenVision` reads Qwen2.5-VL's, with no window order (every block
    attends to the whole image; its blocks, like its merger, see the patches in the LLM's order)."""

    def window_order(self) -> torch.Tensor:
        return torch.arange(sum(g.num_tokens for g in self.grids()))


class Sa2VAQwen3Pipeline(Sa2VAPipeline):
    """Sa2VA-Qwen3-VL: ``Qwen3VLForConditionalGeneration`` + processor + ``text_hidden_fcs`` + SAM 2."""

    #: no vision-tower stage: Qwen3-VL's tower (learned position embeddings, DeepStack features read from
    #: middle blocks) is not :class:`~litelvlm.qwen_vision.tower.QwenTower`'s Qwen2.5-VL tower
    abilities = replace(Sa2VAPipeline.abilities, seg_reads="norm_input", tower_stage=False,
                        refuses={**Sa2VAPipeline.abilities.refuses, **REFUSES})
    vision_class = Qwen3Vision

    def __init__(self, qwen, processor, fcs, sam2, seg_state: str = "unnormed", **kw) -> None:
        check_one_of("seg_state", seg_state, SEG_STATES)
        super().__init__(qwen, processor, fcs, sam2, **kw)
        #: what the mask head reads at the [SEG] row (:data:`SEG_STATES`)
        self.seg_state = seg_state
        self.abilities = replace(type(self).abilities, seg_reads=SEG_STATES[seg_state][0])
        #: DeepStack on the LLM's first layers (:mod:`litelvlm.sa2va.deepstack`)
        depth = len(qwen.config.vision_config.deepstack_visual_indexes)
        self.deepstack = DeepStack(self.language_model, depth)

    #: the CLIP paired with a model string (:func:`litelvlm.sa2va.clip_pairing.default_clip`)
    default_clip = classmethod(default_clip)

    @classmethod
    def part_options(cls, parts, options: dict) -> dict:
        """Sa2VA-Qwen2.5-VL's, and ``seg_state`` (:data:`SEG_STATES`; default ``unnormed``)."""
        rest = {k: v for k, v in options.items() if k != "seg_state"}
        return {**super().part_options(parts, rest), "seg_state": options.get("seg_state") or "unnormed"}

    def describe(self) -> dict:
        out = super().describe()
        out.update(backbone="Qwen3-VL", deepstack=DEEPSTACK, pruning=PRUNING,
                   mask_head=f"{SEG_STATES[self.seg_state][1]} of the [SEG] row -> text_hidden_fcs -> SAM 2 "
                             "(no object-score gate)", seg_state=self.seg_state)
        return out

    # -- the visual tokens and their DeepStack features --------------------------------------------------
    def _tower(self, px) -> tuple[tuple, torch.Tensor]:
        """The merged tokens of each image and their DeepStack features, (D, N, h) over all the images."""
        out = self.qwen.model.get_image_features(px["pixel_values"].to(self.device),
                                                 image_grid_thw=px["image_grid_thw"].to(self.device))
        features = torch.stack([torch.cat(f) for f in out.deepstack_features]).to(self.dtype)
        return out.pooler_output, features

    def sequence_embeds(self, prepared, visual: torch.Tensor) -> torch.Tensor:
        """As on Sa2VA-Qwen2.5-VL; the prepared input's visual tokens (and the given ones, at all N) are
        registered with their DeepStack features first."""
        self._register(prepared, visual)
        return super().sequence_embeds(prepared, visual)

    def run_clip_stage(self, prepared, method: str, budget: int, full, **kw) -> tuple:
        self._register(prepared, full)
        return super().run_clip_stage(prepared, method, budget, full, **kw)

    def run_llm_stage(self, prepared, method: str, budget: int, full, **kw) -> tuple:
        self._register(prepared, full)
        return super().run_llm_stage(prepared, method, budget, full, **kw)

    def _register(self, prepared, visual: torch.Tensor | None) -> None:
        """``prepared``'s visual tokens with their DeepStack features, and ``visual`` with them when it stands
        for all N in their order with other values (``visual_embeds`` given to ``ground``: no row of it is one
        of the prepared tokens; a reordering of them is not registered again)."""
        if prepared.deepstack is None:
            return
        self.deepstack.register(prepared.visual, prepared.deepstack)
        if (visual is not None and visual.dim() == 2 and visual.shape[0] == prepared.visual.shape[0]
                and not bool((match_rows(visual.to(prepared.visual.dtype), prepared.visual) >= 0).any())):
            self.deepstack.register(visual, prepared.deepstack)

    # -- LiteLVLM's context='vit' on Qwen3-VL's tower -------------------------------------------------------
    def _mapped_inputs(self, prepared, clip_text: str):
        """As on Sa2VA-Qwen2.5-VL; ``context='vit'`` reads the last block of Qwen3-VL's tower
        (:class:`Qwen3Vision`)."""
        cache = prepared.clip_cache
        if self.context_source == "vit" and prepared.video is None and "vit_context" not in cache:
            vision = self.vision(prepared)
            block = len(vision.visual.blocks) - 1
            cache["vit_context"] = received_from(vision, block, vision.block_inputs([block])[block])
        return super()._mapped_inputs(prepared, clip_text)


__all__ = ["DEEPSTACK", "REFUSES", "SEG_STATES", "Qwen3Vision", "Sa2VAQwen3Pipeline"]
