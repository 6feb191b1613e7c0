"""``UniPixelPipeline``: the ``unipixel`` family (Qwen2.5-VL + UniPixel's SAM 2 mask head) on the family
contract.

    from litelvlm.registry.families import load_pipeline
    pipe = load_pipeline("unipixel-tiny-random:0")       # or a UniPixel checkpoint folder
    prep = pipe.prepare(image, ["the dog on the left"])
    out = pipe.ground(prep, "fastv", 64)                  # any method that acts with the LLM

What is UniPixel's (PolyU-ChenLab/UniPixel @5c8e941, ``unipixel/model/qwen2_5_vl.py``): the visual tokens are
the vision tower's merged tokens (``pooler_output``) at the prompt's image-pad rows; the mask head reads the
INPUT of the LLM's final norm (its ``cache_state_hook``) at the rows predicting each ``<seg>``, through
``seg_head`` into SAM 2 as a hidden-state prompt. The prompt and the image's resizing are the protocol's
(:mod:`litelvlm.unipixel.protocol`).

What is this project's (labelled wherever a user meets it): the kept tokens' positions and the paired CLIP
mapped onto the merged grid, as on every Qwen2.5-VL + SAM 2 family (:mod:`litelvlm.qwen.pipeline`); the
teacher-forced answer (:mod:`litelvlm.unipixel.protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from PIL import Image

from ..errors import LiteLVLMError
from ..lvlm.numerics import Numerics
from ..models.model_spec import ModelSpec
from ..qwen.pipeline import (
    ABILITIES,
    CLIP_FEATURE_LAYER,
    CONTEXTS,
    SIMILARITIES,
    QwenSam2Input,
    QwenSam2Pipeline,
)
from ..qwen.pixels import QwenPixels, as_pixels, paired_clip_pixels
from ..qwen_vision.vision import QwenVision
from ..switches import ANSWERS, CLIP_TEXTS, check_one_of
from . import protocol as _protocol
from .card import CARD
from .checkpoint import load_unipixel
from .protocol import (
    GENERATE_KWARGS,
    SEG_TOKEN,
    SampleScore,
    coco_box,
    prompt_inputs,
    question,
    resize_frame,
    score_sample,
    seg_rows,
    seg_token_id,
    summarize,
    video_frames,
)


@dataclass
class UniPixelInput(QwenSam2Input):
    """One image (and, after ``with_sentences``, its prompt) as UniPixel's protocol makes it: the image as a
    1-frame video (``grid_thw`` the video grid, ``mm_token_type_ids`` 2 on the video tokens)."""


class UniPixelPipeline(QwenSam2Pipeline):
    """UniPixel: ``Qwen2_5_VLForConditionalGeneration`` + processor + seg head + SAM 2 adapter."""

    family = "unipixel"
    prepared_type = UniPixelInput
    #: the mask head reads the final norm's input; this project's teacher-forced answer (the default: random
    #: weights never generate ``<|seg|>``) or the official greedy generation (``infer_seg.py`` L190-197);
    #: UniPixel's own RefCOCO metric (``eval_refcoco.py``, :meth:`sample_metrics`) beside GLaMM's
    abilities = replace(ABILITIES, seg_reads="norm_input", answers=ANSWERS,
                        own_metric="unipixel")
    #: the image goes in as a 1-frame video
    rope_grid = "video_grid_thw"

    def __init__(self, qwen, processor, seg_head, sam2, name: str = "unipixel", numerics=None,
                 clip=None, clip_text: str = "question", context: str = "clip", similarity: str = "clip"):
        self._set_clip(clip, clip_text, context, similarity)
        self.qwen = qwen
        self.processor = processor
        self.seg_head = seg_head
        self.sam2 = sam2
        self.name = str(name)   # the model string as written (a resolved model travels apart)
        self.numerics = Numerics.for_protocol("official", attn=CARD.official_attn) if numerics is None \
            else numerics
        self.quantization = None
        self.layer_hooks = []

        self.seg_token = SEG_TOKEN
        self.seg_token_id = seg_token_id(processor.tokenizer)

        #: ``answer="generate"``: the official limit on new tokens (``infer_seg.py`` L197)
        self.max_new_tokens = int(GENERATE_KWARGS["max_new_tokens"])
        self.apply_attention()

    @classmethod
    def load_parts(cls, spec: ModelSpec, device: str | torch.device, dtype: torch.dtype | None):
        """``unipixel-<size>-random[:SEED]`` or a UniPixel checkpoint folder
        (:mod:`litelvlm.unipixel.checkpoint`)."""
        return load_unipixel(spec, device=device, dtype=dtype)

    @classmethod
    def modules_of(cls, parts) -> tuple:
        return parts.qwen, parts.processor, parts.seg_head, parts.sam2

    def stage_modules(self) -> dict[str, list]:
        """:meth:`QwenSam2Pipeline.stage_modules` and the frame the vision tower sees (``_video``; the prompt
        makes it again: ``resize_frame``)."""
        parts = super().stage_modules()
        return {**parts, "prepare": [*parts["prepare"], (self, "_video"), (_protocol, "resize_frame")]}

    # -- per image ----------------------------------------------------------------------------------
    def pixels(self, image: Image.Image) -> QwenPixels:
        """:meth:`_video` and SAM 2's pixels of ``image``, on the CPU."""
        return QwenPixels(image, self._video(image), self.sam2.pixels(image), paired_clip_pixels(self, image))

    @torch.no_grad()
    def prepare_image(self, image: Image.Image | QwenPixels, seed: int = 0) -> UniPixelInput:
        """The vision tower's merged tokens (the image as the protocol's 1-frame video) and SAM 2's image
        features (of the image or its :meth:`pixels`), once per image."""
        pixels = as_pixels(self, image)
        video, image = pixels.tower, pixels.image
        grid = video["video_grid_thw"]
        visual = self.qwen.model.get_video_features(video["pixel_values_videos"].to(self.device),
                                                    video_grid_thw=grid.to(self.device)).pooler_output[0]
        return UniPixelInput(image=image, image_size=(image.height, image.width), sentences=[],
                             input_ids=torch.empty(0, dtype=torch.long),
                             mm_token_type_ids=torch.empty(0, dtype=torch.long), grid_thw=grid.cpu(),
                             second_per_grid_ts=torch.ones(1), visual=visual.to(self.dtype),
                             sam_features=self.sam2.encode_image(self.sam2.on_device(pixels.sam)), seed=seed,
                             clip_cache=pixels.clip_cache())

    def _video(self, image: Image.Image):
        """The processor's video inputs of the image as the protocol's 1-frame video."""
        return self.processor.video_processor(videos=[video_frames(resize_frame(image))], do_resize=False,
                                              return_tensors="pt")

    @torch.no_grad()
    def with_sentences(self, prepared: UniPixelInput, sentences: list[str], turns=None,
                       clip_text: str | None = None, answer: str = "teacher-forced",
                       **unused) -> UniPixelInput:
        """``prepared`` with the protocol's prompt for one sentence (UniPixel asks one expression per prompt)
        and this project's teacher-forced answer holding its ``<|seg|>``, or (``answer="generate"``) the
        official prompt alone, whose answer ``ground`` generates (:mod:`litelvlm.unipixel.protocol`);
        ``clip_text`` (this call's, else the pipeline's) is what the paired CLIP embeds
        (:data:`CLIP_TEXTS`)."""
        check_one_of("answer", answer, ANSWERS)

        clip_text = self.clip_text if clip_text is None else clip_text
        check_one_of("clip_text", clip_text, CLIP_TEXTS)
        if len(sentences) != 1:
            raise LiteLVLMError(f"UniPixel's protocol asks one expression per prompt; got {len(sentences)}")
        if turns is not None:
            raise LiteLVLMError("turns do not apply: UniPixel's prompt is the protocol's one question")
        # the prompt the processor makes for the prepared frames' grid, the frames not made again
        made = prompt_inputs(self.processor, prepared.grid_thw, prepared.image_size, sentences[0],
                             answer=answer, seed=prepared.seed)
        return self._with_prompt(prepared, made, sentences, answer, clip_text)

    def _with_prompt(self, prepared, made, sentences: list[str], answer: str, clip_text: str):
        """``prepared`` with the protocol's prompt ``made`` (its ids checked against the prepared grid, the
        [SEG] count and the merged tokens) and its CLIP inputs for ``clip_text``."""
        got = made.inputs
        if not torch.equal(got["video_grid_thw"].cpu(), prepared.grid_thw):
            raise AssertionError("the prompt's video grid differs from the prepared input's")
        ids, types = got["input_ids"][0], got["mm_token_type_ids"][0]
        if int((ids == self.seg_token_id).sum()) != (answer == "teacher-forced"):
            raise LiteLVLMError(f"the prompt must hold {'one' if answer == 'teacher-forced' else 'no'} "
                                f"{self.seg_token}")
        return self._with_ids(prepared, sentences, ids, types, answer, clip_text,
                              second_per_grid_ts=got["second_per_grid_ts"],
                              prompt_len=self._prompt_len(made, ids))

    def _prompt_len(self, got, ids: torch.Tensor) -> int | None:
        """Where the teacher-forced answer starts in ``ids`` (None: no answer appended)."""
        if got.response is None:
            return None
        said = self.processor.tokenizer(got.response, add_special_tokens=False)["input_ids"]
        if ids[len(ids) - len(said):].tolist() != list(said):
            raise AssertionError("the teacher-forced answer's tokens do not end the prompt")
        return len(ids) - len(said)

    def clip_question(self, sentence: str) -> str:
        """The protocol's question of ``sentence`` (:func:`litelvlm.unipixel.protocol.question`)."""
        return question(sentence)

    def seg_rows(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The rows predicting ``<|seg|>`` (:func:`litelvlm.unipixel.protocol.seg_rows`)."""
        return seg_rows(input_ids, self.seg_token_id)

    def vision(self, prepared: UniPixelInput):
        """The vision tower and ``prepared``'s image as the protocol's 1-frame video
        (:class:`litelvlm.qwen_vision.vision.QwenVision`): what a method's Qwen2.5-VL variant hooks or
        re-runs."""
        video = self._video(prepared.image)
        visual = self.qwen.model.visual
        return QwenVision(visual, video["pixel_values_videos"].to(self.device, visual.dtype),
                          video["video_grid_thw"].to(self.device))

    # -- UniPixel's own RefCOCO metric (eval_refcoco.py), beside GLaMM's -------------------------------------
    def sample_metrics(self, pred, gt, box) -> dict:
        """``infer_seg.py`` L239-250 (:func:`litelvlm.unipixel.protocol.score_sample`): the target read as a
        plain mask (a pixel of any of the referent's parts), IoU 1 on an empty union (no epsilon), and
        ``hit``: the prediction's box against the referent's (COCO (x, y, w, h), stored as UniPixel does) at
        IoU >= 0.5."""
        s = score_sample(pred, gt > 0, None if box is None else coco_box(box))
        return {"unipixel_inter": s.inter, "unipixel_union": s.union, "unipixel_iou": s.iou,
                "unipixel_hit": bool(s.hit)}

    @classmethod
    def summarize_metrics(cls, rows) -> dict:
        """``eval_refcoco.py`` L29-34 (:func:`litelvlm.unipixel.protocol.summarize`): cIoU = sum(inter) /
        sum(union), gIoU = mean IoU, box accuracy = hits / samples; NaN cIoU where every union is empty."""
        scores = [SampleScore(int(i), int(u), float(o), bool(h)) for i, u, o, h in
                  zip(rows["unipixel_inter"], rows["unipixel_union"], rows["unipixel_iou"],
                      rows["unipixel_hit"])]
        got = summarize(scores) if any(s.union for s in scores) else {
            "ciou": float("nan"), "giou": 1.0, "box_acc": sum(bool(s.hit) for s in scores) / len(scores)}
        return {"unipixel_ciou": got["ciou"], "unipixel_giou": got["giou"],
                "unipixel_box_acc": got["box_acc"]}

    # -- the mask head ----------------------------------------------------------------------------------
    def seg_prompts(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        """UniPixel's ``seg_head`` on the final norm's input: (..., hidden_tokens, sam_dim) SAM 2 prompts."""
        return self.seg_head(seg_hidden)


#: the CLIP paired with a UniPixel model string (:meth:`QwenSam2Pipeline.default_clip`)
default_clip = UniPixelPipeline.default_clip


__all__ = ["CLIP_FEATURE_LAYER", "CONTEXTS", "SIMILARITIES", "UniPixelInput",
           "UniPixelPipeline", "default_clip"]
