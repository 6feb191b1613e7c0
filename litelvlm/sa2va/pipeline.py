"""``Sa2VAPipeline``: the ``sa2va`` family (Sa2VA-Qwen2.5-VL: Qwen2.5-VL + SAM 2 prompted by ``[SEG]``) on the contract.

    from litelvlm.families import load_pipeline
    pipe = load_pipeline("sa2va-tiny-random:0")         # or a Sa2VA-Qwen2_5-VL checkpoint folder
    prep = pipe.prepare(image, ["the dog on the left"])
    out = pipe.ground(prep, "fastv", 16)                 # any method that acts with the LLM

What is Sa2VA's (bytedance/Sa2VA @9832e1a, ``projects/sa2va/hf/models_qwen2_5_vl/modeling_sa2va_qwen.py``): the
image goes to Qwen2.5-VL as an image (``<|image_pad|>`` tokens, 3-D M-RoPE over its grid), resized as
:mod:`litelvlm.sa2va.protocol` says; the mask head reads the FINAL (normed) hidden state at the row whose input is
``[SEG]``, through ``text_hidden_fcs`` into SAM 2 as one prompt token (:mod:`litelvlm.sa2va.sam2_head`).

What is this project's: pruning Sa2VA at all (no official code prunes it) -- the budget counts the merged visual
tokens of the Qwen2.5-VL grid as for UniPixel, and every method runs as on UniPixel (the LLM-side methods on the
image tokens, their Qwen2.5-VL variants where one exists, the score-only CLIP-side methods through a paired CLIP
mapped onto the merged grid); the kept tokens keep their M-RoPE ids (``positions="keep"``); the teacher-forced
answer. ``describe()`` says so on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from ..errors import LiteLVLMError
from ..lvlm.family import GroundingPipeline, SequenceLayout
from ..unipixel.pipeline import CLIP_TEXTS, UniPixelInput, UniPixelPipeline

#: why a video's LLM input is not pruned
VIDEO_PRUNING = ("pruning Sa2VA's video input is not offered: its visual tokens lie in one block per frame, and "
                 "no rule for a pruned multi-image prompt is defined yet; run the video at all N (method none)")
#: how ``describe()`` labels this family's pruning
ADAPTATION = ("this project's adaptation: Sa2VA has no official pruning; budgets count the merged visual tokens of "
              "the Qwen2.5-VL grid")


@dataclass
class Sa2VAInput(UniPixelInput):
    """One image and its prompt (UniPixel's fields; ``grid_thw`` is the image grid, ``mm_token_type_ids`` 1 on the
    image tokens)."""

    llm_images: list | None = None          # the image(s) the vision tower sees
    video: object | None = None             # a video's frames for SAM 2 (:class:`litelvlm.sa2va.video.VideoParts`)


class Sa2VAPipeline(UniPixelPipeline):
    """Sa2VA-Qwen2.5-VL: ``Qwen2_5_VLForConditionalGeneration`` + processor + ``text_hidden_fcs`` + SAM 2."""

    family = "sa2va"
    seg_reads = "final"
    sentences_per_prompt = 1
    answers = ("teacher-forced",)

    def __init__(self, qwen, processor, fcs, sam2, name: str = "sa2va", numerics=None, clip=None,
                 clip_text: str = "question", context: str = "clip", similarity: str = "clip",
                 min_pixels: int = 512 * 28 * 28, max_pixels: int = 2048 * 28 * 28) -> None:
        from ..lvlm.numerics import Numerics
        from ..unipixel.mapped import CONTEXTS, SIMILARITIES
        from .protocol import seg_token_id

        for what, got, known in (("clip_text", clip_text, CLIP_TEXTS), ("context", context, CONTEXTS),
                                 ("similarity", similarity, SIMILARITIES)):
            if got not in known:
                raise LiteLVLMError(f"{what} must be one of {', '.join(known)}; got {got!r}")
        self.similarity_source, self.context_source = similarity, context
        self._clip, self.clip_text = clip, clip_text
        self.qwen, self.processor, self.sam2, self.name = qwen, processor, sam2, name
        self.fcs = self.seg_head = fcs
        self.numerics = Numerics.official() if numerics is None else numerics
        self.quantization = None
        self.layer_hooks = []
        self.seg_token = "[SEG]"
        self.seg_token_id = seg_token_id(processor.tokenizer)
        self.min_pixels, self.max_pixels = int(min_pixels), int(max_pixels)

    @classmethod
    def from_model_string(cls, model: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                          numerics=None, quantize: str = "none", layer_dtype: str = "model",
                          **unused) -> Sa2VAPipeline:
        """``sa2va-<size>-random[:SEED]`` or a Sa2VA-Qwen2_5-VL checkpoint folder (:mod:`litelvlm.sa2va.checkpoint`)."""
        from .checkpoint import load_sa2va

        if quantize != "none" or layer_dtype not in ("model", "auto"):  # auto: the weights' arithmetic here
            raise LiteLVLMError("the sa2va family does not offer --quantize or --layer-dtype yet")
        for key in ("sam", "tokenizer"):
            if unused.get(key):
                raise LiteLVLMError(f"model {model!r}: --{key} is for GLaMM; a Sa2VA folder brings its own")
        parts = load_sa2va(model, device=device, dtype=dtype)
        rnd = parts.config.get("litelvlm_random") or {}
        bounds = {k: int(rnd[k]) for k in ("min_pixels", "max_pixels") if k in rnd}
        return cls(parts.qwen, parts.processor, parts.fcs, parts.sam2, name=model, numerics=numerics,
                   clip=unused.get("clip") or default_clip(model), clip_text=unused.get("clip_text") or "question",
                   context=unused.get("clip_context") or "clip", similarity=unused.get("clip_similarity") or "clip",
                   **bounds)

    def describe(self) -> dict:
        out = super().describe()
        out.update(pruning=ADAPTATION, answer="teacher-forced (this project's: the official answer is generated)",
                   mask_head="final hidden state of the [SEG] row -> text_hidden_fcs -> SAM 2 (no object-score gate)")
        return out

    # -- per image ----------------------------------------------------------------------------------
    def _image(self, image: Image.Image):
        """The processor's image inputs of the image the vision tower sees (:func:`litelvlm.sa2va.protocol.llm_image`)."""
        from .protocol import llm_image

        seen = llm_image(image, self.min_pixels, self.max_pixels)
        return seen, self.processor.image_processor(images=[seen], do_resize=False, return_tensors="pt")

    @torch.no_grad()
    def prepare_image(self, image: Image.Image, seed: int = 0) -> Sa2VAInput:
        """The vision tower's merged tokens and SAM 2's features of the 1024-px stretched image, once per image."""
        seen, px = self._image(image)
        grid = px["image_grid_thw"]
        visual = self.qwen.model.get_image_features(px["pixel_values"].to(self.device),
                                                    image_grid_thw=grid.to(self.device)).pooler_output[0]
        return Sa2VAInput(image=image, image_size=(image.height, image.width), sentences=[],
                          input_ids=torch.empty(0, dtype=torch.long), mm_token_type_ids=torch.empty(0, dtype=torch.long),
                          grid_thw=grid.cpu(), second_per_grid_ts=torch.ones(1), visual=visual.to(self.dtype),
                          sam_features=self.sam2.encode_image(self.sam2.preprocess(image)), seed=seed,
                          llm_images=[seen])

    @torch.no_grad()
    def prepare_video(self, frames: list, seed: int = 0) -> Sa2VAInput:
        """A video (PIL frames of one size): the LLM's merged tokens of its first min(5, T) frames, one image each,
        and every frame's SAM 2 pixels (:mod:`litelvlm.sa2va.video`); masks are (T, H, W) at the first frame's size."""
        from .protocol import llm_image
        from .video import video_parts

        if not frames:
            raise LiteLVLMError("a video needs at least one frame")
        parts = video_parts(self.sam2, frames)
        seen = [llm_image(f, self.min_pixels, self.max_pixels) for f in frames[:parts.llm_frames]]
        px = self.processor.image_processor(images=seen, do_resize=False, return_tensors="pt")
        grid = px["image_grid_thw"]
        feats = self.qwen.model.get_image_features(px["pixel_values"].to(self.device),
                                                   image_grid_thw=grid.to(self.device)).pooler_output
        first = frames[0]
        return Sa2VAInput(image=first, image_size=(first.height, first.width), sentences=[],
                          input_ids=torch.empty(0, dtype=torch.long), mm_token_type_ids=torch.empty(0, dtype=torch.long),
                          grid_thw=grid.cpu(), second_per_grid_ts=torch.ones(1), visual=torch.cat(feats).to(self.dtype),
                          sam_features=None, seed=seed, llm_images=seen, video=parts)

    def mask_shape(self, prepared: Sa2VAInput) -> tuple[int, ...]:
        """(H, W) of an image, (T, H, W) of a video."""
        size = tuple(int(v) for v in prepared.image_size)
        return size if prepared.video is None else (len(prepared.video.pixels), *size)

    @torch.no_grad()
    def with_sentences(self, prepared: Sa2VAInput, sentences: list[str], turns=None, clip_text: str | None = None,
                       answer: str = "teacher-forced", response: int = 0, **unused) -> Sa2VAInput:
        """``prepared`` with the RefCOCO question of one sentence and this project's teacher-forced answer
        (:mod:`litelvlm.sa2va.protocol`)."""
        from .protocol import image_question, prepare_inputs, video_question

        if answer not in self.answers:
            raise LiteLVLMError(f"the sa2va family offers answer {', '.join(self.answers)} (the official generation "
                                f"is not offered yet); got {answer!r}")
        clip_text = self.clip_text if clip_text is None else clip_text
        if clip_text not in CLIP_TEXTS:
            raise LiteLVLMError(f"clip_text must be one of {', '.join(CLIP_TEXTS)}; got {clip_text!r}")
        if len(sentences) != 1:
            raise LiteLVLMError(f"Sa2VA's protocol asks one expression per prompt; got {len(sentences)}")
        if turns is not None:
            raise LiteLVLMError("turns are GLaMM's conversation; Sa2VA's prompt is the protocol's question")
        if prepared.video is None:
            made = prepare_inputs(self.processor, [prepared.image], image_question(sentences[0]), self.min_pixels,
                                  self.max_pixels, response)
        else:   # the frames as given (prepare_video resized them), the Ref-VOS question
            made = prepare_inputs(self.processor, prepared.llm_images, video_question(sentences[0]), self.min_pixels,
                                  self.max_pixels, response)
        got = made.inputs
        if not torch.equal(got["image_grid_thw"].cpu(), prepared.grid_thw):
            raise AssertionError("the prompt's image grid differs from the prepared input's")
        ids, types = got["input_ids"][0], got["mm_token_type_ids"][0]
        if int((ids == self.seg_token_id).sum()) != 1:
            raise LiteLVLMError("the prompt must hold one [SEG]")
        if int((types > 0).sum()) != self.num_visual(prepared):
            raise AssertionError("the prompt's image placeholders do not match the merged tokens")
        said = self.processor.tokenizer(made.response, add_special_tokens=False)["input_ids"]
        import functools
        from dataclasses import replace

        out = replace(prepared, sentences=list(sentences), input_ids=ids, mm_token_type_ids=types, answer=answer,
                      prompt_len=len(ids) - len(said))
        out.mapped = functools.cache(functools.partial(self._mapped_inputs, out, clip_text))
        return out

    def vision(self, prepared: Sa2VAInput):
        """The vision tower and ``prepared``'s image (:class:`litelvlm.qwen.vision.QwenVision`)."""
        from ..qwen.vision import QwenVision

        _, px = self._image(prepared.image)
        visual = self.qwen.model.visual
        return QwenVision(visual, px["pixel_values"].to(self.device, visual.dtype), px["image_grid_thw"].to(self.device))

    def layout(self, prepared: Sa2VAInput, num_visual: int) -> SequenceLayout:
        """All N: transformers' ``get_rope_index`` over the image grid (3-D M-RoPE). Fewer: ``0..S'-1`` on all three
        axes (``renumber``, this project's); the [SEG] rows are those whose input is ``[SEG]``."""
        from .protocol import seg_rows

        n = self.num_visual(prepared)
        if not 0 < num_visual <= n:
            raise LiteLVLMError(f"num_visual must be in 1..{n}; got {num_visual}")
        if prepared.video is not None and num_visual != n:
            raise LiteLVLMError(VIDEO_PRUNING)
        ids = prepared.input_ids if num_visual == n else self._pruned_ids(prepared, num_visual)
        if num_visual == n:
            pos, _ = self.qwen.model.get_rope_index(ids[None], mm_token_type_ids=prepared.mm_token_type_ids[None],
                                                    image_grid_thw=prepared.grid_thw)
        else:
            pos = torch.arange(len(ids)).view(1, 1, -1).expand(3, 1, -1)
        seg = self.seg_token_id
        return SequenceLayout(image_start=self._image_start(prepared), num_visual=num_visual, seq_len=len(ids),
                              position_ids=pos.to(self.device), find_seg_predictors=lambda: seg_rows(ids, seg))

    def sequence_embeds(self, prepared: Sa2VAInput, visual: torch.Tensor) -> torch.Tensor:
        """UniPixel's (one image's tokens in one run); a video's N tokens go to its frames' image-pad rows."""
        if prepared.video is None:
            return super().sequence_embeds(prepared, visual)
        if visual.shape[-2] != self.num_visual(prepared):
            raise LiteLVLMError(VIDEO_PRUNING)
        ids = prepared.input_ids.to(self.device)
        rows = (prepared.mm_token_type_ids > 0).to(self.device)
        text = self.language_model.embed_tokens(ids)
        batch = visual if visual.dim() == 3 else visual[None]
        out = text[None].expand(batch.shape[0], -1, -1).clone()
        out[:, rows] = batch.to(out.dtype)
        return out

    # -- the mask head --------------------------------------------------------------------------------
    own_metric = ""
    sample_metrics = GroundingPipeline.sample_metrics
    summarize_metrics = GroundingPipeline.summarize_metrics

    def seg_prompts(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        """``text_hidden_fcs`` of the [SEG] rows' final hidden states: (..., 1, 256) one SAM 2 prompt token each."""
        return self.fcs(seg_hidden).unsqueeze(-2)

    def decode_masks(self, prepared: Sa2VAInput, prompts: torch.Tensor) -> torch.Tensor:
        """One image: SAM 2's decoder on its features, (S, 1, h, w). A video: each prompt on the first min(5, T)
        frames and SAM 2's memory over the rest (:func:`litelvlm.sa2va.video.propagate`), (S, T, h, w)."""
        if prepared.video is None:
            return super().decode_masks(prepared, prompts)
        from .video import propagate

        v = prepared.video
        return torch.stack([propagate(self.sam2, v.pixels, p, v.llm_frames)[:, 0] for p in prompts])

    def upscale_masks(self, prepared: Sa2VAInput, low: torch.Tensor) -> torch.Tensor:
        """(S, H, W) or a video's (S, T, H, W) float32 logits: to ``image_size`` squared, then the original size."""
        if prepared.video is None:
            return super().upscale_masks(prepared, low)
        s, t = low.shape[:2]
        return self.sam2.upscale(low.reshape(s * t, 1, *low.shape[-2:]), prepared.image_size).reshape(
            s, t, *prepared.image_size)


def default_clip(model: str) -> str:
    """The CLIP paired with a Sa2VA model string: a random CLIP of the preset's size for the random presets (seeded
    alike), ViT-L/14-336 (``openai/clip-vit-large-patch14-336``, LiteLVLM's) for a checkpoint."""
    from ..clip import DEFAULT_HF_MODEL
    from ..model_spec import ModelSpec
    from .card import CARD
    from .config import RANDOM_SA2VAS

    spec = ModelSpec.parse(model)
    if spec.name not in RANDOM_SA2VAS:
        return DEFAULT_HF_MODEL
    seed = CARD.seed(spec)
    return f"tiny336-random:{seed}" if RANDOM_SA2VAS[spec.name] == "tiny" else f"vit-l-14-336-random:{seed}"


__all__ = ["ADAPTATION", "Sa2VAInput", "Sa2VAPipeline", "default_clip"]
