"""``QwenSam2Pipeline``: Qwen2.5-VL + SAM 2 prompted by the LLM's hidden state, the part of the family
contract every such family shares (a family subclasses it with its own protocol, prompt head and SAM 2 input).

Details: docs/qwen.md (``litelvlm.qwen.pipeline``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from PIL import Image

from ..clip import load_clip
from ..errors import LiteLVLMError
from ..lvlm.abilities import Abilities
from ..lvlm.encoders import Indexed
from ..lvlm.family import GroundingPipeline, SequenceLayout
from ..lvlm.numerics import set_attention
from ..lvlm.prepared import Prepared
from ..models.model_spec import ModelSpec
from ..pruning import MappedInputs, Selection
from ..qwen_vision.index import forward_index
from ..qwen_vision.tower import QwenTower
from ..registry.families import card, family_model
from ..switches import CLIP_TEXTS, check_one_of
from .clip_pairing import family_clip
from .mapped import CLIP_FEATURE_LAYER, CONTEXTS, SIMILARITIES, mapped_inputs  # noqa: F401 (re-exported)


@dataclass
class QwenSam2Input(Prepared):
    """One image (and, after ``with_sentences``, its prompt): everything every method and budget reuses."""

    image: Image.Image                      # the original image, which the protocol's prompt call reads
    image_size: tuple[int, int]             # original (H, W)
    mm_token_type_ids: torch.Tensor         # 1-D: 0 text, 1 image, 2 video (transformers' get_rope_index)
    grid_thw: torch.Tensor                  # (F, 3) patches in time, height, width (before the 2x2 merge)
    second_per_grid_ts: torch.Tensor        # (1,) the protocol's seconds per temporal patch
    visual: torch.Tensor                    # (N, h) merged tokens in the LLM's order (``pooler_output``)
    sam_features: object                    # SAM 2's image features (the adapter's)
    #: made by ``with_sentences``: the CLIP-side methods' inputs on the merged tokens (computed on first use)
    mapped: Callable[[], MappedInputs] | None = field(default=None, repr=False, compare=False)

    def selector_inputs(self) -> MappedInputs:
        """What a CLIP-side method reads: the paired CLIP's scores mapped onto the merged tokens."""
        if self.mapped is None:
            raise LiteLVLMError("no sentence yet: call with_sentences before a CLIP-side method")
        return self.mapped()


#: what every Qwen2.5-VL + SAM 2 family offers: one expression per prompt (the studies' ``--protocol`` does
#: not regroup them); an external CLIP's scores mapped onto the merged tokens (this project's adaptation); 3-D
#: M-RoPE; the methods' Qwen2.5-VL variants (:data:`litelvlm.methods.VARIANTS`); kept tokens keep their M-RoPE
#: ids under ``positions="official"`` (this project's adaptation); the vision-tower stage on Qwen2.5-VL's
#: tower (:class:`litelvlm.qwen_vision.tower.QwenTower`), where FlowCut, which reads a [CLS] token, is refused
ABILITIES = Abilities(sentences_per_prompt=1, clip_side="mapped", position_axes=3, backbone="qwen2.5-vl",
                      position_rule="keep", tower_stage=True,
                      refuses={"flowcut": "{method} reads the [CLS] token's attention in the vision tower; "
                                          "Qwen2.5-VL's tower has no [CLS] token"})


class QwenSam2Pipeline(GroundingPipeline):
    """``Qwen2_5_VLForConditionalGeneration`` + processor + a prompt head + SAM 2 (docs/qwen.md). A family
    sets ``family``, its abilities (:data:`ABILITIES` with its ``seg_reads`` and ``answers``), ``seg_token`` /
    ``seg_token_id`` and implements its protocol (``prepare_image``, ``with_sentences``, ``vision``),
    :meth:`seg_rows`, :meth:`clip_question`, ``seg_prompts``."""

    abilities = ABILITIES
    prepared_type = QwenSam2Input
    #: the grid argument of ``get_rope_index`` the prompt's visual tokens take (``image_grid_thw`` /
    #: ``video_grid_thw``)
    rope_grid = "image_grid_thw"

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def from_model_string(cls, model: str | ModelSpec, device: str | torch.device = "cpu",
                          dtype: torch.dtype | None = None, numerics=None, quantize: str = "none",
                          layer_dtype: str = "model", **options) -> QwenSam2Pipeline:
        """The family's random preset (``<preset>-random[:SEED]``) or checkpoint folder, resolved once here
        unless it comes resolved (:func:`litelvlm.registry.families.family_model`) and loaded by the family's
        :meth:`load_parts`; ``clip`` (default :meth:`default_clip`), ``clip_text``, ``clip_context``,
        ``clip_similarity`` and the family's :meth:`part_options` from ``options``; a released checkpoint's
        hub id is downloaded first."""
        spec = family_model(model, cls.card())
        if quantize != "none" or layer_dtype not in ("model", "auto"):  # auto: the weights' arithmetic here
            raise LiteLVLMError(f"the {cls.family} family does not offer --quantize or --layer-dtype yet")
        for key in ("sam", "tokenizer"):
            if options.get(key):
                raise LiteLVLMError(f"model {spec.text!r}: --{key} does not apply: a "
                                    f"{cls.card().display_name} folder brings its own")
        parts = cls.load_parts(spec, device=device, dtype=dtype)
        return cls(*cls.modules_of(parts), name=spec, numerics=numerics,
                   clip=options.get("clip") or cls.default_clip(spec, parts.config),
                   clip_text=options.get("clip_text") or "question",
                   context=options.get("clip_context") or "clip",
                   similarity=options.get("clip_similarity") or "clip", **cls.part_options(parts, options))

    @classmethod
    def card(cls):
        """The family's :class:`~litelvlm.models.family_card.FamilyCard`."""
        return card(cls.family)

    @classmethod
    def load_parts(cls, spec: ModelSpec, device: str | torch.device, dtype: torch.dtype | None):
        """The family's loaded parts (its checkpoint module's loader): ``config`` and what :meth:`modules_of`
        reads."""
        raise NotImplementedError

    @classmethod
    def modules_of(cls, parts) -> tuple:
        """(Qwen2.5-VL, processor, prompt head, SAM 2) of the loaded ``parts``, as ``__init__`` takes them."""
        raise NotImplementedError

    @classmethod
    def part_options(cls, parts, options: dict) -> dict:
        """The family's own ``__init__`` keywords from its loaded ``parts`` and the caller's ``options``
        (none)."""
        return {}

    @classmethod
    def default_clip(cls, model: str | ModelSpec, config: dict | None = None) -> str:
        """The CLIP paired with a model string of the family
        (:func:`~litelvlm.qwen.clip_pairing.family_clip`)."""
        return family_clip(cls.card(), model, config)

    def _set_clip(self, clip, clip_text: str, context: str, similarity: str) -> None:
        """Check and keep the paired CLIP's options (:data:`~litelvlm.switches.CLIP_TEXTS`,
        :data:`~litelvlm.switches.CLIP_CONTEXTS`, :data:`~litelvlm.switches.CLIP_SIMILARITIES`)."""
        for what, got, known in (("clip_text", clip_text, CLIP_TEXTS), ("context", context, CONTEXTS),
                                 ("similarity", similarity, SIMILARITIES)):
            check_one_of(what, got, known)
        #: where LiteLVLM's similarity part comes from (:data:`SIMILARITIES`; ``llm`` is this project's
        #: adaptation)
        self.similarity_source = similarity
        #: where LiteLVLM's context part comes from (:data:`CONTEXTS`)
        self.context_source = context
        #: the paired CLIP: a loaded backend, a model string (loaded on first use), or None (CLIP-side methods
        #: refused)
        self._clip = clip
        self.clip_text = clip_text

    @property
    def clip(self):
        """The paired CLIP backend (loaded on first use, in the pipeline's dtype and device)."""
        if self._clip is None:
            raise LiteLVLMError(f"this {self.family} pipeline has no paired CLIP: give clip=... to run a "
                                "CLIP-side method")
        if isinstance(self._clip, str):
            self._clip = load_clip(self._clip, "hf", device=self.device, dtype=self.dtype)
            self.clip_loaded(self._clip)
        return self._clip

    def loaded_clip(self):
        """The paired CLIP backend where it is loaded, else None (nothing loaded here)."""
        return None if self._clip is None or isinstance(self._clip, str) else self._clip

    def apply_attention(self) -> None:
        """``numerics.attn`` at load, as GLaMM's pipeline does: the LLM's decoder gets its kernel
        (:func:`~litelvlm.lvlm.numerics.llm_implementation`), the vision tower, SAM 2 and a loaded paired CLIP
        theirs (``sdpa`` for ``flash``); a paired CLIP loaded later gets it then (:attr:`clip`)."""
        clip = None if self.loaded_clip() is None else self.loaded_clip().modules()
        set_attention(self.numerics.attn, self.qwen, self.sam2.model, clip, llm=self.language_model,
                      clip_softmax=self.numerics.clip_softmax)

    # -- properties ---------------------------------------------------------------------------------
    @property
    def language_model(self):
        return self.qwen.model.language_model

    @property
    def lm_head(self):
        """The LLM's output projection (``answer="generate"``)."""
        return self.qwen.lm_head

    @property
    def stop_ids(self) -> set[int]:
        """The tokens that end a generated answer: the model's ``generation_config`` end tokens and the
        tokenizer's."""
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
                "seg_token_id": self.seg_token_id, **self.numerics.record(self.language_model),
                "positions": "keep (this project's adaptation for M-RoPE)",
                "clip": {"model": clip, "text": self.clip_text, "view": "pad", "context": self.context_source,
                         "map": "area-weighted mean onto the merged grid (this project's adaptation)",
                         **({} if self.similarity_source == "clip"
                            else {"similarity": "llm (the relevance in the LLM's input space, this project's "
                                                "adaptation)"})}}

    def num_visual(self, prepared: QwenSam2Input) -> int:
        return int(prepared.visual.shape[0])

    def stage_modules(self) -> dict[str, list]:
        """The time by stage's parts (:mod:`litelvlm.cost.stages`): the vision tower with the processor's
        image and video preprocessing, the paired CLIP with its own once loaded (a family adds the steps
        resizing its tower's input); SAM 2's parts with its preprocessing."""
        loaded, model = self.loaded_clip(), self.qwen.model
        clip = None if loaded is None else loaded.modules()
        prepare = [(getattr(self.processor, p), "preprocess") for p in ("image_processor", "video_processor")
                   if getattr(self.processor, p, None) is not None]
        steps = []
        if clip is not None:
            prepare.append((loaded, "preprocess"))
            steps += [*clip.children(), *((loaded, n) for n in ("trace_image", "encode_text"))]
        sam = [(self.sam2, n) for n in ("preprocess", "pixels", "on_device")]
        return {"prepare": [*prepare, (self, "pixels"), *sam],
                "vision": [model.visual, (model, "get_image_features"), (model, "get_video_features"),
                           *steps],
                "mask": [*self.sam2.model.children(), (self.sam2, "encode_image")]}

    def encoder_modules(self) -> list:
        """The vision tower (its grid's index tensors computed ahead of the call), SAM 2's image encoder and
        the paired CLIP's vision tower once loaded (captured under ``--encoders``)."""
        clip = None if self.loaded_clip() is None else self.loaded_clip().modules()
        visual = self.qwen.model.visual
        return [Indexed(visual, forward_index(visual)), self.sam2.model.vision_encoder,
                *([clip.vision_model] if clip is not None else [])]

    # -- what a family provides ---------------------------------------------------------------------
    def seg_rows(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The rows of ``input_ids`` whose state makes a mask (the family's rule)."""
        raise NotImplementedError

    def clip_question(self, sentence: str) -> str:
        """What the paired CLIP embeds for ``sentence`` under ``clip_text="question"`` (the family's
        question)."""
        raise NotImplementedError

    # -- the prompt -----------------------------------------------------------------------------------
    def _with_ids(self, prepared, sentences: list[str], ids: torch.Tensor, types: torch.Tensor, answer: str,
                  clip_text: str, **fields):
        """``prepared`` with the prompt ``ids`` (its merged-token count checked) and its CLIP inputs for
        ``clip_text``; ``fields`` are more of ``prepared``'s to replace."""
        if int((types > 0).sum()) != self.num_visual(prepared):
            raise AssertionError("the prompt's image/video placeholders do not match the merged tokens")
        out = replace(prepared, sentences=list(sentences), input_ids=ids, mm_token_type_ids=types,
                      answer=answer, **fields)
        out.mapped = functools.cache(functools.partial(self._mapped_inputs, out, clip_text))
        return out

    def _mapped_inputs(self, prepared: QwenSam2Input, clip_text: str) -> MappedInputs:
        """The paired CLIP's scores mapped onto the merged grid
        (:func:`litelvlm.qwen.mapped.mapped_inputs`)."""
        return mapped_inputs(self, prepared, clip_text)

    def visual_tokens(self, prepared: QwenSam2Input) -> torch.Tensor:
        """(N, h) the merged tokens in the LLM's order (row-major over the merged grid)."""
        return prepared.visual

    # -- the sequence ---------------------------------------------------------------------------------
    def _image_start(self, prepared: QwenSam2Input) -> int:
        where = torch.nonzero(prepared.mm_token_type_ids > 0).flatten()
        if where.numel() == 0:
            raise LiteLVLMError("the prompt holds no image placeholder: call with_sentences first")
        return int(where[0])

    def _pruned_ids(self, prepared: QwenSam2Input, num_visual: int) -> torch.Tensor:
        s, n = self._image_start(prepared), self.num_visual(prepared)
        ids = prepared.input_ids
        return torch.cat([ids[:s], ids[s:s + 1].expand(num_visual), ids[s + n:]])

    def _rope_index(self, prepared: QwenSam2Input, ids: torch.Tensor) -> torch.Tensor:
        """(3, 1, S) transformers' ``get_rope_index`` of the unpruned prompt ``ids`` (3-D M-RoPE over its
        grid)."""
        grids = {self.rope_grid: prepared.grid_thw}
        if self.rope_grid == "video_grid_thw":
            grids["second_per_grid_ts"] = prepared.second_per_grid_ts
        pos, _ = self.qwen.model.get_rope_index(ids[None], mm_token_type_ids=prepared.mm_token_type_ids[None],
                                                **grids)
        return pos

    def layout(self, prepared: QwenSam2Input, num_visual: int) -> SequenceLayout:
        """All N: transformers' ``get_rope_index`` (3-D M-RoPE ids). Fewer: the positions of a plain sequence
        of that length, ``0..S'-1`` on all three axes (``renumber``, this project's definition)."""
        n = self.num_visual(prepared)
        if not 0 < num_visual <= n:
            raise LiteLVLMError(f"num_visual must be in 1..{n}; got {num_visual}")
        ids = prepared.input_ids if num_visual == n else self._pruned_ids(prepared, num_visual)
        if num_visual == n:
            pos = self._rope_index(prepared, ids)
        else:
            pos = torch.arange(len(ids)).view(1, 1, -1).expand(3, 1, -1)
        return SequenceLayout(image_start=self._image_start(prepared), num_visual=num_visual,
                              seq_len=len(ids), position_ids=pos.to(self.device),
                              find_seg_predictors=lambda: self.seg_rows(ids))

    def sequence_embeds(self, prepared: QwenSam2Input, visual: torch.Tensor) -> torch.Tensor:
        """(B, S, h) text embeddings with ``visual`` ((K, h) or (B, K, h)) at the image-pad rows."""
        s, n = self._image_start(prepared), self.num_visual(prepared)
        ids = prepared.input_ids.to(self.device)
        before, after = self.language_model.embed_tokens(ids[:s]), self.language_model.embed_tokens(
            ids[s + n:])
        if visual.dim() == 2:
            return torch.cat([before, visual.to(before.dtype), after])[None]
        b = visual.shape[0]
        return torch.cat(
            [before[None].expand(b, -1, -1), visual.to(before.dtype), after[None].expand(b, -1, -1)], 1)

    def tower_context(self, prepared: QwenSam2Input) -> QwenTower:
        """The vision tower on ``prepared``'s image (the family's ``vision``) as a vision-tower stage: its
        merged tokens are the LLM's visual tokens."""
        return QwenTower(self.vision(prepared))

    def clip_selection_tokens(self, prepared: QwenSam2Input, sel: Selection, full=None) -> torch.Tensor:
        """(K, h) the merged tokens a CLIP-side selection kept (its indices index the merged tokens: the
        scores were mapped onto them), from ``full`` or the prepared ones."""
        src = prepared.visual if full is None else full
        return src[sel.indices.to(src.device)]

    def clip_selection_rows(self, prepared: QwenSam2Input, sel: Selection) -> torch.Tensor:
        """The merged-token index of each kept input: the selection's indices."""
        return sel.indices

    # -- the mask head --------------------------------------------------------------------------------
    def decode_masks(self, prepared: QwenSam2Input, prompts: torch.Tensor) -> torch.Tensor:
        """SAM 2's mask decoder, prompted by the prompt tokens, on the image features of ``prepare_image``."""
        return self.sam2.decode(prepared.sam_features, prompts, prepared.image_size).low_res

    def upscale_masks(self, prepared: QwenSam2Input, low: torch.Tensor) -> torch.Tensor:
        """(S, H, W) float32 logits at the original size (the SAM 2 adapter's upscaling)."""
        return self.sam2.upscale(low, prepared.image_size).float()


__all__ = ["ABILITIES", "CLIP_FEATURE_LAYER", "CONTEXTS", "SIMILARITIES", "QwenSam2Input",
           "QwenSam2Pipeline"]
