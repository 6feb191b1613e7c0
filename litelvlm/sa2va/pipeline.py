"""``Sa2VAPipeline``: the ``sa2va`` family (Sa2VA-Qwen2.5-VL: Qwen2.5-VL + SAM 2 prompted by ``[SEG]``) on the
contract. Pruning Sa2VA at all is this project's (no official code prunes it).

Details: docs/sa2va.md (`litelvlm.sa2va.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from PIL import Image

from ..errors import LiteLVLMError
from ..image_resize import IMAGE_RESIZES
from ..lvlm.numerics import Numerics
from ..models.model_spec import ModelSpec
from ..qwen.mapped import frames_mapped_inputs
from ..qwen.pipeline import ABILITIES
from ..qwen.pixels import QwenPixels, as_pixels, paired_clip_pixels
from ..qwen_vision.vision import QwenVision
from ..registry.families import family_model
from ..switches import ANSWERS, CLIP_TEXTS, check_one_of
from . import protocol as _protocol
from .backbones import BACKBONE_PIPELINES, Sa2VABackbone, Sa2VABackboneInput
from .card import CARD
from .checkpoint import load_sa2va
from .protocol import (
    image_question,
    llm_image,
    processor_factor,
    prompt_inputs,
    seg_rows,
    seg_token_id,
    video_question,
)
from .qwen3_checkpoint import backbone_of
from .video import joined, video_parts

#: how a video's LLM input is pruned (this project's adaptation, :func:`litelvlm.sa2va.video.joined`)
VIDEO_PRUNING = ("this project's adaptation: a pruned video (K < N) joins its min(5, T) frames' tokens into "
                 "one block (the separators between the frames' blocks dropped, every row keeping its "
                 "official M-RoPE ids) and the method keeps K of the N merged tokens over the whole video; "
                 "the unpruned run (none) and any method at K = N run the official prompt")
#: how ``describe()`` labels this family's pruning
ADAPTATION = ("this project's adaptation: Sa2VA has no official pruning; budgets count the merged visual "
              "tokens of the Qwen2.5-VL grid")


@dataclass
class Sa2VAInput(Sa2VABackboneInput):
    """One image (or a video's first frames) and its prompt (``grid_thw`` is the image grid, one row per
    image, ``mm_token_type_ids`` 1 on the image tokens)."""

    llm_images: list | None = None          # the image(s) the vision tower sees
    #: (D, N, h) Qwen3-VL's DeepStack features of the visual tokens (:mod:`litelvlm.sa2va.deepstack`); None on
    #: Qwen2.5-VL
    deepstack: torch.Tensor | None = None


class Sa2VAPipeline(Sa2VABackbone):
    """Sa2VA-Qwen2.5-VL: ``Qwen2_5_VLForConditionalGeneration`` + processor + ``text_hidden_fcs`` + SAM 2."""

    family = "sa2va"
    prepared_type = Sa2VAInput
    #: the mask head reads the final states; this project's teacher-forced answer (the default: random weights
    #: never generate ``[SEG]``) or the official greedy generation (``predict_forward`` L218-224,
    #: :mod:`.generate`)
    abilities = replace(ABILITIES, answers=ANSWERS)
    #: ``answer="generate"``: the official limit on new tokens (``predict_forward`` L220)
    max_new_tokens = 2048
    #: how the methods' Qwen variants read the vision tower (:meth:`vision`)
    vision_class = QwenVision
    #: how a pruned video runs (:meth:`join_video`)
    video_pruning = VIDEO_PRUNING

    def __init__(self, qwen, processor, fcs, sam2, name: str = "sa2va", numerics=None, clip=None,
                 clip_text: str = "question", context: str = "clip", similarity: str = "clip",
                 min_pixels: int = 512 * 28 * 28, max_pixels: int = 2048 * 28 * 28,
                 image_resize: str = "torchvision") -> None:
        if image_resize not in IMAGE_RESIZES:
            raise LiteLVLMError(f"model {name!r}: --image-resize must be one of "
                                f"{', '.join(IMAGE_RESIZES)}; got {image_resize!r}")

        self._set_clip(clip, clip_text, context, similarity)
        self.qwen, self.processor, self.sam2, self.name = qwen, processor, sam2, str(name)
        self.fcs = self.seg_head = fcs
        self.numerics = Numerics.for_protocol("official", attn=CARD.official_attn) if numerics is None \
            else numerics
        self.quantization = None
        self.layer_hooks = []
        self.seg_token = "[SEG]"
        self.seg_token_id = seg_token_id(processor.tokenizer)
        self.min_pixels, self.max_pixels = int(min_pixels), int(max_pixels)
        self.image_resize = image_resize
        #: the processor's resize factor (its patch times its merge: 28 on Qwen2.5-VL, 32 on Qwen3-VL)
        self.factor = processor_factor(processor)
        self.apply_attention()

    @classmethod
    def from_model_string(cls, model: str | ModelSpec, device: str | torch.device = "cpu",
                          dtype: torch.dtype | None = None, **options) -> Sa2VAPipeline:
        """The model string's pipeline, by the class of its backbone (:data:`BACKBONE_PIPELINES`: a random
        preset's, or the one its folder's ``config.json`` describes), loaded as
        :meth:`QwenSam2Pipeline.from_model_string` loads it."""
        spec = family_model(model, CARD)   # resolved once (a hub id downloaded)
        target = BACKBONE_PIPELINES[backbone_of(spec)].get()
        if target is not cls:
            return target.from_model_string(spec, device, dtype, **options)
        return super().from_model_string(spec, device, dtype, **options)

    @classmethod
    def load_parts(cls, spec: ModelSpec, device: str | torch.device, dtype: torch.dtype | None):
        """``sa2va-<size>-random[:SEED]`` or a Sa2VA-Qwen2_5-VL checkpoint folder
        (:mod:`litelvlm.sa2va.checkpoint`)."""
        return load_sa2va(spec, device=device, dtype=dtype)

    @classmethod
    def modules_of(cls, parts) -> tuple:
        return parts.qwen, parts.processor, parts.fcs, parts.sam2

    @classmethod
    def part_options(cls, parts, options: dict) -> dict:
        """The random preset's pixel bounds (its folder's ``litelvlm_random``) and ``image_resize``;
        ``seg_state`` is Sa2VA-Qwen3-VL's alone."""
        if options.get("seg_state"):
            raise LiteLVLMError("seg_state applies to Sa2VA-Qwen3-VL (Qwen2.5-VL's last hidden_states entry "
                                "is the final normed state under every transformers)")
        rnd = parts.config.get("litelvlm_random") or {}
        return {**{k: int(rnd[k]) for k in ("min_pixels", "max_pixels") if k in rnd},
                "image_resize": options.get("image_resize") or "torchvision"}

    def describe(self) -> dict:
        out = super().describe()
        out.update(pruning=ADAPTATION, video_pruning=VIDEO_PRUNING, answer="teacher-forced by default (this "
                   "project's: the official answer is generated, answer='generate')",
                   mask_head="final hidden state of the [SEG] row -> text_hidden_fcs -> SAM 2 (no "
                   "object-score gate)",
                   image_resize=self.image_resize + (" (the official Qwen2VLImageProcessorFast's)" if
                                                     self.image_resize == "torchvision" else
                                                     " (this project's option: the slow processor's PIL "
                                                     "bicubic)"))
        return out

    def stage_modules(self) -> dict[str, list]:
        """:meth:`QwenSam2Pipeline.stage_modules` and the image the vision tower sees (``_image``; the prompt
        makes it again: ``llm_image``)."""
        parts = super().stage_modules()
        return {**parts, "prepare": [*parts["prepare"], (self, "_image"), (_protocol, "llm_image")]}

    # -- per image ----------------------------------------------------------------------------------
    def _image(self, image: Image.Image):
        """The processor's image inputs of the image the vision tower sees
        (:func:`litelvlm.sa2va.protocol.llm_image`)."""
        seen = llm_image(image, self.min_pixels, self.max_pixels, self.image_resize, self.factor)
        return seen, self.processor.image_processor(images=[seen], do_resize=False, return_tensors="pt")

    def _tower(self, px) -> tuple[tuple, torch.Tensor | None]:
        """The vision tower on the processor's images: their merged tokens (one (N_i, h) tensor each) and what
        the LLM further reads of them (none on Qwen2.5-VL)."""
        out = self.qwen.model.get_image_features(px["pixel_values"].to(self.device),
                                                 image_grid_thw=px["image_grid_thw"].to(self.device))
        return out.pooler_output, None

    def pixels(self, image: Image.Image) -> QwenPixels:
        """:meth:`_image` and SAM 2's pixels of ``image``, on the CPU."""
        return QwenPixels(image, self._image(image), self.sam2.pixels(image), paired_clip_pixels(self, image))

    @torch.no_grad()
    def prepare_image(self, image: Image.Image | QwenPixels, seed: int = 0) -> Sa2VAInput:
        """The vision tower's merged tokens and SAM 2's features of the 1024-px stretched image (or of its
        :meth:`pixels`), once per image."""
        pixels = as_pixels(self, image)
        (seen, px), image = pixels.tower, pixels.image
        grid = px["image_grid_thw"]
        visual, extra = self._tower(px)
        return Sa2VAInput(image=image, image_size=(image.height, image.width), sentences=[],
                          input_ids=torch.empty(0, dtype=torch.long),
                          mm_token_type_ids=torch.empty(0, dtype=torch.long),
                          grid_thw=grid.cpu(), second_per_grid_ts=torch.ones(1),
                          visual=visual[0].to(self.dtype),
                          sam_features=self.sam2.encode_image(self.sam2.on_device(pixels.sam)), seed=seed,
                          llm_images=[seen], deepstack=extra, clip_cache=pixels.clip_cache())

    @torch.no_grad()
    def prepare_video(self, frames: list, seed: int = 0) -> Sa2VAInput:
        """A video (PIL frames of one size): the LLM's merged tokens of its first min(5, T) frames, one image
        each, and every frame's SAM 2 pixels (:mod:`litelvlm.sa2va.video`); masks are (T, H, W) at the first
        frame's size."""
        if not frames:
            raise LiteLVLMError("a video needs at least one frame")
        parts = video_parts(self.sam2, frames)
        seen = [llm_image(f, self.min_pixels, self.max_pixels, self.image_resize, self.factor)
                for f in frames[:parts.llm_frames]]
        px = self.processor.image_processor(images=seen, do_resize=False, return_tensors="pt")
        grid = px["image_grid_thw"]
        feats, extra = self._tower(px)
        first = frames[0]
        return Sa2VAInput(image=first, image_size=(first.height, first.width), sentences=[],
                          input_ids=torch.empty(0, dtype=torch.long),
                          mm_token_type_ids=torch.empty(0, dtype=torch.long),
                          grid_thw=grid.cpu(), second_per_grid_ts=torch.ones(1),
                          visual=torch.cat(feats).to(self.dtype),
                          sam_features=None, seed=seed, llm_images=seen, video=parts, deepstack=extra)

    @torch.no_grad()
    def with_sentences(self, prepared: Sa2VAInput, sentences: list[str], turns=None,
                       clip_text: str | None = None,
                       answer: str = "teacher-forced", response: int = 0, **unused) -> Sa2VAInput:
        """``prepared`` with the RefCOCO (or a video's Ref-VOS) question of one sentence and this project's
        teacher-forced answer, or (``answer="generate"``) the official prompt alone, whose answer ``ground``
        generates (:mod:`litelvlm.sa2va.protocol`)."""
        if answer not in self.abilities.answers:
            raise LiteLVLMError(f"answer must be one of {', '.join(self.abilities.answers)}; got {answer!r}")
        clip_text = self.clip_text if clip_text is None else clip_text
        check_one_of("clip_text", clip_text, CLIP_TEXTS)
        if len(sentences) != 1:
            raise LiteLVLMError(f"Sa2VA's protocol asks one expression per prompt; got {len(sentences)}")
        if turns is not None:
            raise LiteLVLMError("turns do not apply: Sa2VA's prompt is the protocol's one question")
        said = None if answer == "generate" else response
        # the prompt the processor makes for the prepared image's (or LLM frames') grid, its pixels not
        # made again (protocol.prompt_inputs)
        question = (image_question if prepared.video is None else video_question)(sentences[0])
        made = prompt_inputs(self.processor, prepared.grid_thw, question, said)
        ids, types = made.inputs["input_ids"][0], made.inputs["mm_token_type_ids"][0]
        if int((ids == self.seg_token_id).sum()) != (answer == "teacher-forced"):
            raise LiteLVLMError(f"the prompt must hold {'one' if answer == 'teacher-forced' else 'no'} [SEG]")
        said_ids = [] if made.response is None else \
            self.processor.tokenizer(made.response, add_special_tokens=False)["input_ids"]
        return self._with_ids(prepared, sentences, ids, types, answer, clip_text,
                              prompt_len=None if made.response is None else len(ids) - len(said_ids))

    def _mapped_inputs(self, prepared: Sa2VAInput, clip_text: str):
        """The paired CLIP's scores mapped onto the merged tokens: one image's (:mod:`litelvlm.qwen.mapped`),
        or each LLM frame's onto its own grid (:func:`litelvlm.qwen.mapped.frames_mapped_inputs`, this
        project's)."""
        if prepared.video is None:
            return super()._mapped_inputs(prepared, clip_text)

        if self.context_source != "clip":
            raise LiteLVLMError("context='vit' reads one image's vision tower; on Sa2VA's video the context "
                                "part comes from the paired CLIP (context='clip')")
        sentence = prepared.sentences[0]
        said = video_question(sentence).replace("<image>",
                                                "").strip() if clip_text == "question" else sentence
        _, h, w = (int(v) for v in prepared.grid_thw[0])
        return frames_mapped_inputs(self, prepared, prepared.video.originals, (h, w), said, per_patch=1)

    def clip_question(self, sentence: str) -> str:
        """The RefCOCO question of ``sentence`` as the LLM reads it (``<image>`` dropped, ``predict_forward``
        L87)."""
        return image_question(sentence).replace("<image>", "").strip()

    def seg_rows(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The rows whose input is ``[SEG]`` (:func:`litelvlm.sa2va.protocol.seg_rows`)."""
        return seg_rows(input_ids, self.seg_token_id)

    def vision(self, prepared: Sa2VAInput):
        """The vision tower and ``prepared``'s image (:class:`litelvlm.qwen_vision.vision.QwenVision`)."""
        _, px = self._image(prepared.image)
        visual = self.qwen.model.visual
        return self.vision_class(visual, px["pixel_values"].to(self.device, visual.dtype),
                                 px["image_grid_thw"].to(self.device))

    def layout(self, prepared: Sa2VAInput, num_visual: int):
        """All N: transformers' ``get_rope_index`` over the image grid (3-D M-RoPE; a joined video's official
        ids). Fewer: ``0..S'-1`` on all three axes (``renumber``, this project's); the [SEG] rows are those
        whose input is ``[SEG]``. A video's official prompt (its frames in separate blocks) runs at all N
        only."""
        if prepared.video is not None and prepared.joined_positions is None and num_visual != self.num_visual(
            prepared):
            raise LiteLVLMError(f"a video's official prompt runs at all N; pruned: {VIDEO_PRUNING} "
                                "(pipe.ground joins it, or litelvlm.sa2va.video.joined)")
        return super().layout(prepared, num_visual)

    def _rope_index(self, prepared: Sa2VAInput, ids: torch.Tensor) -> torch.Tensor:
        return super()._rope_index(prepared,
                                   ids) if prepared.joined_positions is None else prepared.joined_positions

    def join_video(self, prepared: Sa2VAInput) -> Sa2VAInput:
        """A pruned video's one block of tokens (:data:`VIDEO_PRUNING`,
        :func:`litelvlm.sa2va.video.joined`)."""
        return joined(self, prepared)


#: the CLIP paired with a Sa2VA model string (:meth:`QwenSam2Pipeline.default_clip`)
default_clip = Sa2VAPipeline.default_clip


__all__ = ["ADAPTATION", "Sa2VAInput", "Sa2VAPipeline", "default_clip"]
