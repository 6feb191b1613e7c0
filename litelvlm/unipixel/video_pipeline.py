"""UniPixel's video path on the family contract: ``ground`` on a whole video, one mask per frame.

The ``frame-wise`` fallback and the CLIP-side methods' video mapping are this project's.

Details: docs/unipixel.md (``litelvlm.unipixel.video_pipeline``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from PIL import Image

from ..errors import LiteLVLMError
from ..lvlm.family import GroundingPipeline
from ..qwen_vision.vision import QwenVision
from ..switches import ANSWERS, CLIP_TEXTS, check_one_of
from .pipeline import UniPixelInput, UniPixelPipeline
from .protocol import SAMPLE_FRAMES
from .sam2_video import propagated_logits
from .video import llm_frames, prepare_video_inputs, sample_indices
from .video_mapped import video_mapped_inputs

#: how the frame-0 prompt reaches the later frames (see docs/unipixel.md)
PROPAGATIONS = ("sam2", "frame-wise")
#: the methods whose Qwen2.5-VL variant reads one image's merged grid, and why they are refused on a video
ONE_IMAGE_VARIANTS = {"vscan": "VScan's Qwen2.5-VL window scan runs over one image's merged grid (its "
                               "official code prunes images); a video's several temporal patches have no "
                               "scan of its own yet",
                      "downsample": "{method} pools one image's merged grid; a video's several temporal "
                                    "patches have no pooling of their own yet",
                      "needs_mask_gradient": "{method} backpropagates from the masks to the visual tokens; "
                                             "UniPixel's video masks come from SAM 2's memory propagation, "
                                             "run without gradients (a saliency target needs one image)"}


@dataclass
class UniPixelVideoInput(UniPixelInput):
    """One video (and, after ``with_sentences``, its prompt); ``image`` is its first frame."""

    frames: list = field(default_factory=list, repr=False)            # every frame of the video (SAM 2's)
    sampled: list = field(default_factory=list)                       # the frames the LLM sees
    llm_frames: list = field(default_factory=list, repr=False)        # those frames, resized and padded
    sample_frames: int = SAMPLE_FRAMES
    #: SAM 2's features per frame index, made on first use and shared by every sentence and method
    frame_features: dict = field(default_factory=dict, repr=False, compare=False)
    #: the memory propagation's frame pixels and features, made on first use and shared alike
    sam2_video: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_frames(self) -> int:
        return len(self.frames)


class UniPixelVideoPipeline(UniPixelPipeline):
    """:class:`UniPixelPipeline` on videos: ``prepare_video``, and masks (frames, H, W) from ``ground``."""

    #: the image path's abilities; its refusals and the variants reading one image's grid
    #: (:data:`ONE_IMAGE_VARIANTS`) refused
    abilities = replace(UniPixelPipeline.abilities, refuses={**UniPixelPipeline.abilities.refuses,
                                                             **ONE_IMAGE_VARIANTS})
    prepared_type = UniPixelVideoInput
    #: the contract's default (the image handed back): a video's preparation makes its frames' pixels itself
    pixels = GroundingPipeline.pixels
    #: how the frame-0 prompt reaches the later frames (:data:`PROPAGATIONS`)
    propagation = "sam2"

    @classmethod
    def of(cls, pipe: UniPixelPipeline, propagation: str = "sam2") -> UniPixelVideoPipeline:
        """The video path of a loaded ``UniPixelPipeline`` (the same modules, not copied)."""
        check_one_of("propagation", propagation, PROPAGATIONS)
        out = copy.copy(pipe)
        out.__class__ = cls
        out.propagation = propagation
        return out

    def describe(self) -> dict:
        return {**super().describe(), "video": {
            "frames": f"{SAMPLE_FRAMES} sampled uniformly for the LLM (UniPixel's infer_seg.py), every frame "
            "for SAM 2", "propagation": self.propagation
            + (" (this project's fallback: the frame-0 prompt decoded on each frame without SAM 2's "
               "memory)" if self.propagation == "frame-wise"
                                               else
                                               " (SAM 2's memory from frame 0, UniPixel's)")}}

    def _mapped_inputs(self, prepared: UniPixelVideoInput, clip_text: str):
        """The paired CLIP's scores of the LLM's frames mapped onto the video's merged tokens
        (:func:`litelvlm.unipixel.video_mapped.video_mapped_inputs`, this project's adaptation)."""
        return video_mapped_inputs(self, prepared, clip_text)

    # -- per video ----------------------------------------------------------------------------------
    @torch.no_grad()
    def prepare_video(self, frames: Sequence[Image.Image], seed: int = 0,
                      sample_frames: int = SAMPLE_FRAMES) -> UniPixelVideoInput:
        """The vision tower's merged tokens of the protocol's sampled frames; SAM 2's features of each frame
        are made on first use."""
        frames = list(frames)
        sampled = sample_indices(len(frames), sample_frames)
        made = llm_frames([frames[i] for i in sampled], sample_frames)
        video = self.processor.video_processor(videos=[made], do_resize=False, return_tensors="pt")
        grid = video["video_grid_thw"]
        visual = self.qwen.model.get_video_features(video["pixel_values_videos"].to(self.device),
                                                    video_grid_thw=grid.to(self.device)).pooler_output[0]
        first = frames[0]
        out = UniPixelVideoInput(image=first, image_size=(first.height, first.width), sentences=[],
                                 input_ids=torch.empty(0, dtype=torch.long),
                                 mm_token_type_ids=torch.empty(0, dtype=torch.long), grid_thw=grid.cpu(),
                                 second_per_grid_ts=torch.ones(1), visual=visual.to(self.dtype),
                                 sam_features=None,
                                 seed=seed, frames=frames, sampled=sampled, llm_frames=made,
                                 sample_frames=sample_frames)
        if self.propagation == "frame-wise":   # the memory path encodes the frames itself, on first use
            out.sam_features = self.frame_features(out, 0)
        return out

    def prepare_image(self, image: Image.Image, seed: int = 0) -> UniPixelVideoInput:
        """An image as a one-frame video (the image protocol exactly)."""
        return self.prepare_video([image], seed=seed)

    def frame_features(self, prepared: UniPixelVideoInput, index: int):
        """SAM 2's features of frame ``index`` (cached on ``prepared``)."""
        if index not in prepared.frame_features:
            with torch.no_grad():
                frame = prepared.frames[index]
                prepared.frame_features[index] = self.sam2.encode_image(self.sam2.preprocess(frame))
        return prepared.frame_features[index]

    @torch.no_grad()
    def with_sentences(self, prepared: UniPixelVideoInput, sentences: list[str], turns=None,
                       clip_text: str | None = None, answer: str = "teacher-forced",
                       **unused) -> UniPixelVideoInput:
        """``prepared`` with the video protocol's prompt for one sentence and this project's teacher-forced
        answer holding its ``<|seg|>`` (``answer="generate"``: the official prompt alone)."""
        clip_text = self.clip_text if clip_text is None else clip_text
        if answer not in ANSWERS or clip_text not in CLIP_TEXTS:
            raise LiteLVLMError(f"answer must be one of {', '.join(ANSWERS)} and clip_text one of "
                                f"{', '.join(CLIP_TEXTS)}; got {answer!r}, {clip_text!r}")
        if len(sentences) != 1 or turns is not None:
            raise LiteLVLMError("UniPixel's protocol asks one expression per prompt, no turns; got "
                                f"{len(sentences)}")
        made = prepare_video_inputs(self.processor, prepared.frames, sentences[0], answer=answer,
                                    seed=prepared.seed, sample_frames=prepared.sample_frames)
        return self._with_prompt(prepared, made, sentences, answer, clip_text)

    def vision(self, prepared: UniPixelVideoInput):
        """The vision tower and the video's sampled frames
        (:class:`litelvlm.qwen_vision.vision.QwenVision`)."""
        video = self.processor.video_processor(videos=[prepared.llm_frames], do_resize=False,
                                               return_tensors="pt")
        visual = self.qwen.model.visual
        return QwenVision(visual, video["pixel_values_videos"].to(self.device, visual.dtype),
                          video["video_grid_thw"].to(self.device))

    # -- the masks ----------------------------------------------------------------------------------
    def decode_masks(self, prepared: UniPixelVideoInput, prompts: torch.Tensor) -> torch.Tensor:
        """(frames, 1, h, w) low-resolution logits of the one prompt on every frame (:attr:`propagation`)."""
        if prompts.shape[0] != 1:
            raise LiteLVLMError(f"UniPixel's video path decodes one prompt; got {prompts.shape[0]}")
        if self.propagation == "sam2":
            return propagated_logits(self.sam2, prepared.frames, prompts[0],
                                     prepared.sam2_video).to(prompts.dtype)
        return torch.cat(
            [self.sam2.decode(self.frame_features(prepared, f), prompts, prepared.image_size).low_res
                          for f in range(prepared.num_frames)])


__all__ = ["ONE_IMAGE_VARIANTS", "PROPAGATIONS", "UniPixelVideoInput", "UniPixelVideoPipeline"]
