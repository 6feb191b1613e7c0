"""``UniPixelPipeline``: the ``unipixel`` family (Qwen2.5-VL + UniPixel's SAM 2 mask head) on the family contract.

    from litelvlm.families import load_pipeline
    pipe = load_pipeline("unipixel-tiny-random:0")       # or a UniPixel checkpoint folder
    prep = pipe.prepare(image, ["the dog on the left"])
    out = pipe.ground(prep, "fastv", 64)                  # any method that acts with the LLM

What is UniPixel's (PolyU-ChenLab/UniPixel @5c8e941, ``unipixel/model/qwen2_5_vl.py``): the visual tokens are the
vision tower's merged tokens (``pooler_output``) at the prompt's image-pad rows; the mask head reads the INPUT of
the LLM's final norm (its ``cache_state_hook``) at the rows predicting each ``<seg>``, through ``seg_head`` into
SAM 2 as a hidden-state prompt. The prompt and the image's resizing are the protocol's
(:mod:`litelvlm.unipixel.protocol`).

What is this project's (labelled wherever a user meets it):

* ``positions``: the kept visual tokens keep their original 3-D M-RoPE ids (``family_positions = "keep"``),
  as UniPruneBench's and vLLM's Qwen pruners do; ``renumber`` gives a pruned sequence the positions of a plain
  token sequence, ``0..S'-1`` on all three axes (no official definition exists for a pruned M-RoPE grid);
* the CLIP-side methods that read per-token scores alone (LiteLVLM, its ablations, random:
  ``Method.scores_only``) select among the merged tokens through an external CLIP run on the same image
  (``clip``: by default a random CLIP of the preset's size for the random presets, ViT-L/14-336 for a checkpoint),
  its scores mapped onto the merged grid (:class:`litelvlm.pruning.MappedInputs`): CLIP sees the image padded to a
  square (LLaVA's "pad", so every merged token lies under CLIP's patches) and each token takes the area-weighted
  mean of the patch scores its box overlaps; CLIP's text is the protocol's question (``clip_text="question"``, as
  the official LiteLVLM embeds GLaMM's question) or the expression. ``context`` and ``similarity`` say where
  LiteLVLM's two parts come from (:mod:`litelvlm.unipixel.mapped`: the similarity optionally in the LLM's input
  space, :mod:`litelvlm.lvlm.relevance`). CLIP is loaded on first use. The other methods run as their Qwen2.5-VL
  variants where :data:`litelvlm.methods.VARIANTS` has one (docs/unipixel.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from PIL import Image

from ..errors import LiteLVLMError
from ..lvlm.family import GroundingPipeline, SequenceLayout
from ..pruning import MappedInputs, Selection
from .mapped import CLIP_FEATURE_LAYER, CONTEXTS, SIMILARITIES  # noqa: F401 (re-exported)

#: what the paired CLIP embeds for a sentence: the protocol's question (the default, as the official LiteLVLM embeds
#: GLaMM's question) or the referring expression alone
CLIP_TEXTS = ("question", "expression")


@dataclass
class UniPixelInput:
    """One image (and, after ``with_sentences``, its prompt): everything every method and budget reuses."""

    image: Image.Image                      # the original image, which the protocol's prompt call reads
    image_size: tuple[int, int]             # original (H, W)
    sentences: list[str]
    input_ids: torch.Tensor                 # 1-D prompt ids with the N video-pad tokens
    mm_token_type_ids: torch.Tensor         # 1-D: 0 text, 1 image, 2 video (transformers' get_rope_index)
    grid_thw: torch.Tensor                  # (1, 3) patches in time, height, width (before the 2x2 merge)
    second_per_grid_ts: torch.Tensor        # (1,) the protocol's seconds per temporal patch
    visual: torch.Tensor                    # (N, h) merged tokens in the LLM's order (``pooler_output``)
    sam_features: object                    # SAM 2's image features (the adapter's)
    seed: int = 0
    #: the prompt's length before a teacher-forced answer (None: all of ``input_ids``, the official prompt)
    prompt_len: int | None = None
    #: ``teacher-forced`` (this project's: the prompt holds a training answer with ``<|seg|>``) or ``generate`` (the
    #: official protocol: greedy decoding after the prefill, :mod:`litelvlm.lvlm.generate`)
    answer: str = "teacher-forced"
    #: the paired CLIP's per-image work (its vision trace, the map onto the merged grid), made on first use and
    #: shared by every sentence of the image
    clip_cache: dict = field(default_factory=dict, repr=False, compare=False)
    #: made by ``with_sentences``: the CLIP-side methods' inputs on the merged tokens (computed on first use)
    mapped: Callable[[], MappedInputs] | None = field(default=None, repr=False, compare=False)

    def selector_inputs(self) -> MappedInputs:
        """What a CLIP-side method reads: the paired CLIP's scores mapped onto the merged tokens."""
        if self.mapped is None:
            raise LiteLVLMError("no sentence yet: call with_sentences before a CLIP-side method")
        return self.mapped()


class UniPixelPipeline(GroundingPipeline):
    """UniPixel: ``Qwen2_5_VLForConditionalGeneration`` + processor + seg head + SAM 2 adapter."""

    family = "unipixel"
    seg_reads = "norm_input"
    #: UniPixel's protocol asks one expression per prompt (the studies' ``--protocol`` does not regroup them)
    sentences_per_prompt = 1
    #: an external CLIP's scores are mapped onto the merged tokens (this project's adaptation)
    clip_mapped = True
    position_axes = 3
    #: the methods' Qwen2.5-VL variants (:data:`litelvlm.methods.VARIANTS`) run on this family
    backbone = "qwen2.5-vl"
    #: this project's teacher-forced answer (the default: random weights never generate ``<|seg|>``) or the official
    #: greedy generation (``infer_seg.py`` L190-197)
    answers = ("teacher-forced", "generate")
    #: this project's adaptation: kept tokens keep their 3-D M-RoPE ids under ``positions="official"``
    family_positions = "keep"

    def __init__(self, qwen, processor, seg_head, sam2, name: str = "unipixel", numerics=None,
                 clip=None, clip_text: str = "question", context: str = "clip", similarity: str = "clip"):
        from ..lvlm.numerics import Numerics

        if clip_text not in CLIP_TEXTS:
            raise LiteLVLMError(f"clip_text must be one of {', '.join(CLIP_TEXTS)}; got {clip_text!r}")
        if context not in CONTEXTS:
            raise LiteLVLMError(f"context must be one of {', '.join(CONTEXTS)}; got {context!r}")
        if similarity not in SIMILARITIES:
            raise LiteLVLMError(f"similarity must be one of {', '.join(SIMILARITIES)}; got {similarity!r}")
        #: where LiteLVLM's similarity part comes from (:data:`SIMILARITIES`; ``llm`` is this project's adaptation)
        self.similarity_source = similarity
        #: where LiteLVLM's context part comes from (:data:`CONTEXTS`)
        self.context_source = context
        #: the paired CLIP: a loaded backend, a model string (loaded on first use), or None (CLIP-side methods refused)
        self._clip = clip
        self.clip_text = clip_text
        self.qwen = qwen
        self.processor = processor
        self.seg_head = seg_head
        self.sam2 = sam2
        self.name = name
        self.numerics = Numerics.official() if numerics is None else numerics
        self.quantization = None
        self.layer_hooks = []
        from .protocol import SEG_TOKEN, seg_token_id

        self.seg_token = SEG_TOKEN
        self.seg_token_id = seg_token_id(processor.tokenizer)
        from .protocol import GENERATE_KWARGS

        #: ``answer="generate"``: the official limit on new tokens (``infer_seg.py`` L197)
        self.max_new_tokens = int(GENERATE_KWARGS["max_new_tokens"])

    @classmethod
    def from_model_string(cls, model: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                          numerics=None, quantize: str = "none", layer_dtype: str = "model",
                          **unused) -> UniPixelPipeline:
        """``unipixel-<size>-random[:SEED]`` or a UniPixel checkpoint folder (:mod:`litelvlm.unipixel.checkpoint`)."""
        from .checkpoint import load_unipixel

        if quantize != "none" or layer_dtype not in ("model", "auto"):  # auto: the weights' arithmetic here
            raise LiteLVLMError("the unipixel family does not offer --quantize or --layer-dtype yet")
        for key in ("sam", "tokenizer"):
            if unused.get(key):
                raise LiteLVLMError(f"model {model!r}: --{key} is for GLaMM; a UniPixel folder brings its own")
        parts = load_unipixel(model, device=device, dtype=dtype)
        clip = unused.get("clip") or default_clip(model)
        return cls(parts.qwen, parts.processor, parts.seg_head, parts.sam2, name=model, numerics=numerics,
                   clip=clip, clip_text=unused.get("clip_text") or "question",
                   context=unused.get("clip_context") or "clip", similarity=unused.get("clip_similarity") or "clip")

    @property
    def clip(self):
        """The paired CLIP backend (loaded on first use, in the pipeline's dtype and device)."""
        if self._clip is None:
            raise LiteLVLMError("this UniPixel pipeline has no paired CLIP: give clip=... to run a CLIP-side method")
        if isinstance(self._clip, str):
            from ..clip import load_clip

            self._clip = load_clip(self._clip, "hf", device=self.device, dtype=self.dtype)
        return self._clip

    # -- properties ---------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.language_model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.language_model.embed_tokens.weight.dtype

    @property
    def language_model(self):
        return self.qwen.model.language_model

    @property
    def lm_head(self):
        """The LLM's output projection (``answer="generate"``)."""
        return self.qwen.lm_head

    @property
    def stop_ids(self) -> set[int]:
        """The tokens that end a generated answer: the model's ``generation_config`` end tokens and the tokenizer's."""
        ends = getattr(self.qwen.generation_config, "eos_token_id", None)
        ends = [] if ends is None else [ends] if isinstance(ends, int) else list(ends)
        tok = self.processor.tokenizer.eos_token_id
        return {int(e) for e in ends} | ({int(tok)} if tok is not None else set())

    @property
    def hidden_size(self) -> int:
        return int(self.qwen.config.text_config.hidden_size)

    def describe(self) -> dict:
        clip = self._clip if self._clip is None or isinstance(self._clip, str) else self._clip.name
        return {"model": self.name, "family": self.family, "dtype": str(self.dtype).replace("torch.", ""),
                "seg_token_id": self.seg_token_id, "numerics": self.numerics.to_dict(),
                "positions": "keep (this project's adaptation for M-RoPE)",
                "clip": {"model": clip, "text": self.clip_text, "view": "pad", "context": self.context_source,
                         "map": "area-weighted mean onto the merged grid (this project's adaptation)",
                         **({} if self.similarity_source == "clip" else {"similarity": "llm (the relevance in the "
                            "LLM's input space, this project's adaptation)"})}}

    def num_visual(self, prepared: UniPixelInput) -> int:
        return int(prepared.visual.shape[0])

    # -- per image ----------------------------------------------------------------------------------
    @torch.no_grad()
    def prepare_image(self, image: Image.Image, seed: int = 0) -> UniPixelInput:
        """The vision tower's merged tokens (the image as the protocol's 1-frame video) and SAM 2's image
        features, once per image."""
        video = self._video(image)
        grid = video["video_grid_thw"]
        visual = self.qwen.model.get_video_features(video["pixel_values_videos"].to(self.device),
                                                    video_grid_thw=grid.to(self.device)).pooler_output[0]
        return UniPixelInput(image=image, image_size=(image.height, image.width), sentences=[],
                             input_ids=torch.empty(0, dtype=torch.long),
                             mm_token_type_ids=torch.empty(0, dtype=torch.long), grid_thw=grid.cpu(),
                             second_per_grid_ts=torch.ones(1), visual=visual.to(self.dtype),
                             sam_features=self.sam2.encode_image(self.sam2.preprocess(image)), seed=seed)

    def _video(self, image: Image.Image):
        """The processor's video inputs of the image as the protocol's 1-frame video."""
        from .protocol import resize_frame, video_frames

        return self.processor.video_processor(videos=[video_frames(resize_frame(image))], do_resize=False,
                                              return_tensors="pt")

    @torch.no_grad()
    def with_sentences(self, prepared: UniPixelInput, sentences: list[str], turns=None,
                       clip_text: str | None = None, answer: str = "teacher-forced", **unused) -> UniPixelInput:
        """``prepared`` with the protocol's prompt for one sentence (UniPixel asks one expression per prompt)
        and this project's teacher-forced answer holding its ``<|seg|>``, or (``answer="generate"``) the official
        prompt alone, whose answer ``ground`` generates (:mod:`litelvlm.unipixel.protocol`); ``clip_text`` (this
        call's, else the pipeline's) is what the paired CLIP embeds (:data:`CLIP_TEXTS`)."""
        from .protocol import ANSWERS, prepare_inputs

        if answer not in ANSWERS:
            raise LiteLVLMError(f"answer must be one of {', '.join(ANSWERS)}; got {answer!r}")

        clip_text = self.clip_text if clip_text is None else clip_text
        if clip_text not in CLIP_TEXTS:
            raise LiteLVLMError(f"clip_text must be one of {', '.join(CLIP_TEXTS)}; got {clip_text!r}")
        if len(sentences) != 1:
            raise LiteLVLMError(f"UniPixel's protocol asks one expression per prompt; got {len(sentences)}")
        if turns is not None:
            raise LiteLVLMError("turns are GLaMM's conversation; UniPixel's prompt is the protocol's question")
        made = prepare_inputs(self.processor, prepared.image, sentences[0], answer=answer, seed=prepared.seed)
        return self._with_prompt(prepared, made, sentences, answer, clip_text)

    def _with_prompt(self, prepared, made, sentences: list[str], answer: str, clip_text: str):
        """``prepared`` with the protocol's prompt ``made`` (its ids checked against the prepared grid, the [SEG]
        count and the merged tokens) and its CLIP inputs for ``clip_text``."""
        got = made.inputs
        if not torch.equal(got["video_grid_thw"].cpu(), prepared.grid_thw):
            raise AssertionError("the prompt's video grid differs from the prepared input's")
        ids, types = got["input_ids"][0], got["mm_token_type_ids"][0]
        if int((ids == self.seg_token_id).sum()) != (answer == "teacher-forced"):
            raise LiteLVLMError(f"the prompt must hold {'one' if answer == 'teacher-forced' else 'no'} {self.seg_token}")
        if int((types > 0).sum()) != self.num_visual(prepared):
            raise AssertionError("the prompt's video placeholders do not match the merged tokens")
        out = replace(prepared, sentences=list(sentences), input_ids=ids, mm_token_type_ids=types,
                      second_per_grid_ts=got["second_per_grid_ts"], answer=answer, prompt_len=self._prompt_len(made, ids))
        out.mapped = functools.cache(functools.partial(self._mapped_inputs, out, clip_text))
        return out

    def _prompt_len(self, got, ids: torch.Tensor) -> int | None:
        """Where the teacher-forced answer starts in ``ids`` (None: no answer appended)."""
        if got.response is None:
            return None
        said = self.processor.tokenizer(got.response, add_special_tokens=False)["input_ids"]
        if ids[len(ids) - len(said):].tolist() != list(said):
            raise AssertionError("the teacher-forced answer's tokens do not end the prompt")
        return len(ids) - len(said)

    def _mapped_inputs(self, prepared: UniPixelInput, clip_text: str) -> MappedInputs:
        """The paired CLIP's scores mapped onto the merged grid (:func:`litelvlm.unipixel.mapped.mapped_inputs`)."""
        from .mapped import mapped_inputs

        return mapped_inputs(self, prepared, clip_text)

    def vision(self, prepared: UniPixelInput):
        """The vision tower and ``prepared``'s image as the protocol's 1-frame video
        (:class:`litelvlm.qwen.vision.QwenVision`): what a method's Qwen2.5-VL variant hooks or re-runs."""
        from ..qwen.vision import QwenVision

        video = self._video(prepared.image)
        visual = self.qwen.model.visual
        return QwenVision(visual, video["pixel_values_videos"].to(self.device, visual.dtype),
                          video["video_grid_thw"].to(self.device))

    def visual_tokens(self, prepared: UniPixelInput) -> torch.Tensor:
        """(N, h) the merged tokens in the LLM's order (row-major over the merged grid)."""
        return prepared.visual

    # -- the sequence ---------------------------------------------------------------------------------
    def _image_start(self, prepared: UniPixelInput) -> int:
        where = torch.nonzero(prepared.mm_token_type_ids > 0).flatten()
        if where.numel() == 0:
            raise LiteLVLMError("the prompt holds no image placeholder: call with_sentences first")
        return int(where[0])

    def _pruned_ids(self, prepared: UniPixelInput, num_visual: int) -> torch.Tensor:
        s, n = self._image_start(prepared), self.num_visual(prepared)
        ids = prepared.input_ids
        return torch.cat([ids[:s], ids[s:s + 1].expand(num_visual), ids[s + n:]])

    def layout(self, prepared: UniPixelInput, num_visual: int) -> SequenceLayout:
        """All N: transformers' ``get_rope_index`` (3-D M-RoPE ids). Fewer: the positions of a plain sequence of
        that length, ``0..S'-1`` on all three axes (``renumber``, this project's definition)."""
        from .protocol import seg_rows

        n = self.num_visual(prepared)
        if not 0 < num_visual <= n:
            raise LiteLVLMError(f"num_visual must be in 1..{n}; got {num_visual}")
        ids = self._pruned_ids(prepared, num_visual)
        if num_visual == n:
            pos, _ = self.qwen.model.get_rope_index(ids[None], mm_token_type_ids=prepared.mm_token_type_ids[None],
                                                    video_grid_thw=prepared.grid_thw,
                                                    second_per_grid_ts=prepared.second_per_grid_ts)
        else:
            pos = torch.arange(len(ids)).view(1, 1, -1).expand(3, 1, -1)
        seg = self.seg_token_id
        return SequenceLayout(image_start=self._image_start(prepared), num_visual=num_visual, seq_len=len(ids),
                              position_ids=pos.to(self.device),
                              find_seg_predictors=lambda: seg_rows(ids, seg))

    def sequence_embeds(self, prepared: UniPixelInput, visual: torch.Tensor) -> torch.Tensor:
        """(B, S, h) text embeddings with ``visual`` ((K, h) or (B, K, h)) at the image-pad rows."""
        s, n = self._image_start(prepared), self.num_visual(prepared)
        ids = prepared.input_ids.to(self.device)
        before, after = self.language_model.embed_tokens(ids[:s]), self.language_model.embed_tokens(ids[s + n:])
        if visual.dim() == 2:
            return torch.cat([before, visual.to(before.dtype), after])[None]
        b = visual.shape[0]
        return torch.cat([before[None].expand(b, -1, -1), visual.to(before.dtype), after[None].expand(b, -1, -1)], 1)

    def clip_selection_tokens(self, prepared: UniPixelInput, sel: Selection, full=None) -> torch.Tensor:
        """(K, h) the merged tokens a CLIP-side selection kept (its indices index the merged tokens: the scores were
        mapped onto them), from ``full`` or the prepared ones."""
        src = prepared.visual if full is None else full
        return src[sel.indices.to(src.device)]

    def clip_selection_rows(self, prepared: UniPixelInput, sel: Selection) -> torch.Tensor:
        """The merged-token index of each kept input: the selection's indices."""
        return sel.indices

    # -- UniPixel's own RefCOCO metric (eval_refcoco.py), beside GLaMM's ---------------------------------------
    own_metric = "unipixel"

    def sample_metrics(self, pred, gt, box) -> dict:
        """``infer_seg.py`` L239-250 (:func:`litelvlm.unipixel.protocol.score_sample`): the target read as a plain mask
        (a pixel of any of the referent's parts), IoU 1 on an empty union (no epsilon), and ``hit``: the prediction's
        box against the referent's (COCO (x, y, w, h), stored as UniPixel does) at IoU >= 0.5."""
        from .protocol import coco_box, score_sample

        s = score_sample(pred, gt > 0, None if box is None else coco_box(box))
        return {"unipixel_inter": s.inter, "unipixel_union": s.union, "unipixel_iou": s.iou,
                "unipixel_hit": bool(s.hit)}

    @classmethod
    def summarize_metrics(cls, rows) -> dict:
        """``eval_refcoco.py`` L29-34 (:func:`litelvlm.unipixel.protocol.summarize`): cIoU = sum(inter) / sum(union),
        gIoU = mean IoU, box accuracy = hits / samples; NaN cIoU where every union is empty."""
        from .protocol import SampleScore, summarize

        scores = [SampleScore(int(i), int(u), float(o), bool(h)) for i, u, o, h in
                  zip(rows["unipixel_inter"], rows["unipixel_union"], rows["unipixel_iou"], rows["unipixel_hit"])]
        got = summarize(scores) if any(s.union for s in scores) else {
            "ciou": float("nan"), "giou": 1.0, "box_acc": sum(bool(s.hit) for s in scores) / len(scores)}
        return {"unipixel_ciou": got["ciou"], "unipixel_giou": got["giou"], "unipixel_box_acc": got["box_acc"]}

    # -- the mask head ----------------------------------------------------------------------------------
    def seg_prompts(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        """UniPixel's ``seg_head`` on the final norm's input: (..., hidden_tokens, sam_dim) SAM 2 prompts."""
        return self.seg_head(seg_hidden)

    def decode_masks(self, prepared: UniPixelInput, prompts: torch.Tensor) -> torch.Tensor:
        """SAM 2's mask decoder, prompted by the seg tokens, on the image features of ``prepare_image``."""
        return self.sam2.decode(prepared.sam_features, prompts, prepared.image_size).low_res

    def upscale_masks(self, prepared: UniPixelInput, low: torch.Tensor) -> torch.Tensor:
        """(S, H, W) float32 logits at the original size (SAM 2's video predictor's upscaling)."""
        return self.sam2.upscale(low, prepared.image_size).float()


def default_clip(model: str) -> str:
    """The CLIP paired with a UniPixel model string: a random CLIP of the preset's size for the random presets (seeded
    alike), ViT-L/14-336 (``openai/clip-vit-large-patch14-336``, LiteLVLM's) for a checkpoint."""
    from ..clip import DEFAULT_HF_MODEL
    from ..model_spec import ModelSpec
    from .card import CARD

    spec = ModelSpec.parse(model)
    if CARD.preset(spec) is None:
        return DEFAULT_HF_MODEL
    seed = CARD.seed(spec)
    return f"tiny336-random:{seed}" if CARD.preset(spec) == "tiny" else f"vit-l-14-336-random:{seed}"


__all__ = ["CLIP_FEATURE_LAYER", "CLIP_TEXTS", "CONTEXTS", "SIMILARITIES", "UniPixelInput", "UniPixelPipeline", "default_clip"]
