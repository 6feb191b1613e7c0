"""What the pipelines of Sa2VA's three backbones share (:data:`BACKBONE_PIPELINES`): the prepared input's
video fields, a video's official prompt and pruned run, the masks of a generated answer, and the mask head
(the [SEG] rows' final states -> ``text_hidden_fcs`` -> SAM 2 on one image, or over SAM 2's memory of a
video). This module is this project's own structure (docs/sa2va.md)."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch

from ..errors import LiteLVLMError
from ..models.family_card import Lazy
from ..qwen.pipeline import QwenSam2Input, QwenSam2Pipeline
from .generate import RecordingHead, generated_masks, reading_generation
from .video import propagate, video_method_error

#: the pipeline class of each backbone a Sa2VA model is built on (:data:`litelvlm.sa2va.config.BACKBONES`)
BACKBONE_PIPELINES = {"qwen2.5-vl": Lazy("litelvlm.sa2va.pipeline", "Sa2VAPipeline"),
                      "qwen3-vl": Lazy("litelvlm.sa2va.qwen3_pipeline", "Sa2VAQwen3Pipeline"),
                      "internvl3": Lazy("litelvlm.sa2va.internvl.pipeline", "Sa2VAInternVLPipeline")}


@dataclass
class Sa2VABackboneInput(QwenSam2Input):
    """One image, or a video's first frames, and its prompt: what every backbone's prepared input holds."""

    #: a video's frames for SAM 2 (:class:`litelvlm.sa2va.video.VideoParts`; None: one image)
    video: object | None = None
    #: a pruned video's prompt (the backbone's :meth:`Sa2VABackbone.join_video`): the official positions of
    #: its rows
    joined_positions: torch.Tensor | None = None


class Sa2VABackbone(QwenSam2Pipeline):
    """The base of every Sa2VA backbone's pipeline: a video's path and the mask head on the family
    contract."""

    #: how a video's LLM input is pruned (each backbone sets its ``VIDEO_PRUNING``, this project's adaptation)
    video_pruning: str
    #: while generating: the LM head's inputs, one per decoding step (:mod:`litelvlm.sa2va.generate`)
    _lm_head_inputs: list | None = None

    @abc.abstractmethod
    def join_video(self, prepared: Sa2VABackboneInput) -> Sa2VABackboneInput:
        """``prepared`` (a video) with its LLM frames' tokens joined into one block, as the backbone joins
        them (its ``VIDEO_PRUNING``)."""

    def mask_shape(self, prepared: Sa2VABackboneInput) -> tuple[int, ...]:
        """(H, W) of an image, (T, H, W) of a video."""
        size = tuple(int(v) for v in prepared.image_size)
        return size if prepared.video is None else (len(prepared.video.pixels), *size)

    def sequence_embeds(self, prepared: Sa2VABackboneInput, visual: torch.Tensor) -> torch.Tensor:
        """One block of visual tokens (an image, a joined video:
        :class:`litelvlm.qwen.pipeline.QwenSam2Pipeline`); a video's official prompt: its N tokens at its
        frames' visual rows (Qwen2.5-VL's image-pad rows; InternVL3's ``<IMG_CONTEXT>`` rows, ``generate``
        L497-501)."""
        if prepared.video is None or prepared.joined_positions is not None:
            return super().sequence_embeds(prepared, visual)
        if visual.shape[-2] != self.num_visual(prepared):
            raise LiteLVLMError("a video's official prompt takes all N visual tokens; pruned: "
                                f"{self.video_pruning}")
        ids = prepared.input_ids.to(self.device)
        rows = (prepared.mm_token_type_ids > 0).to(self.device)
        batch = visual if visual.dim() == 3 else visual[None]
        out = self.language_model.embed_tokens(ids)[None].expand(batch.shape[0], -1, -1).clone()
        out[:, rows] = batch.to(out.dtype)
        return out

    def run_input(self, prepared, method: str, prunes: bool):
        """A video pruned by the run (``prunes``) joined first (:meth:`join_video`; K = N prunes nothing: the
        official prompt, unjoined); the methods a video cannot run refused
        (:func:`litelvlm.sa2va.video.video_method_error`)."""
        if prepared.video is None:
            return prepared
        if why := video_method_error(self, method):
            raise LiteLVLMError(why)
        return self.join_video(prepared) if prunes else prepared

    # -- answer="generate" ----------------------------------------------------------------------------
    @property
    def lm_head(self):
        """The LLM's output projection; while generating, one that keeps each input
        (:mod:`litelvlm.sa2va.generate`)."""
        head = super().lm_head
        return head if self._lm_head_inputs is None else RecordingHead(head, self._lm_head_inputs)

    def generated(self, prepared, run):
        """``answer="generate"``: the masks of the generated ``[SEG]`` rows as ``predict_forward`` reads them
        (InternVL3's L750-770; :func:`litelvlm.sa2va.generate.generated_masks`)."""
        with reading_generation(self) as inputs:
            out = run()
        return generated_masks(self, prepared, out, inputs)

    # -- the mask head --------------------------------------------------------------------------------
    def seg_prompts(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        """``text_hidden_fcs`` of the [SEG] rows' final hidden states: (..., 1, 256) one SAM 2 prompt token
        each."""
        return self.fcs(seg_hidden).unsqueeze(-2)

    def decode_masks(self, prepared: Sa2VABackboneInput, prompts: torch.Tensor) -> torch.Tensor:
        """One image: SAM 2's decoder on its features, (S, 1, h, w). A video: each prompt on the first min(5,
        T) frames and SAM 2's memory over the rest (:func:`litelvlm.sa2va.video.propagate`), (S, T, h, w)."""
        if prepared.video is None:
            return super().decode_masks(prepared, prompts)
        if torch.is_grad_enabled() and prompts.requires_grad:
            raise LiteLVLMError("Sa2VA's video masks come from SAM 2's memory propagation, run without "
                                "gradients: no gradient reaches the prompt (a saliency target needs one "
                                "image)")
        v = prepared.video
        return torch.stack([propagate(self.sam2, v.pixels, p, v.llm_frames)[:, 0] for p in prompts])

    def upscale_masks(self, prepared: Sa2VABackboneInput, low: torch.Tensor) -> torch.Tensor:
        """(S, H, W) or a video's (S, T, H, W) float32 logits: to the SAM 2 input size, then the original
        size."""
        if prepared.video is None:
            return super().upscale_masks(prepared, low)
        s, t = low.shape[:2]
        return self.sam2.upscale(low.reshape(s * t, 1, *low.shape[-2:]), prepared.image_size).reshape(
            s, t, *prepared.image_size)


__all__ = ["BACKBONE_PIPELINES", "Sa2VABackbone", "Sa2VABackboneInput"]
