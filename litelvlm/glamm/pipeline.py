"""``GlammPipeline``: one image, its sentences, any pruning method and budget -> masks.

``clip_text="expression"`` (the bare sentences for CLIP) is this project's option.

Details: docs/grounding.md (``litelvlm.glamm.pipeline``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from PIL import Image

from ..clip import DEFAULT_HF_MODEL, load_clip, refuse_non_finite
from ..clip.traces import TextTrace, VisionTrace
from ..errors import LiteLVLMError
from ..lvlm.abilities import Abilities
from ..lvlm.family import GroundingOutput, GroundingPipeline, SequenceLayout
from ..lvlm.numerics import Numerics, set_attention
from ..lvlm.prepared import Prepared
from ..lvlm.upcast import check_layer_dtype, resolve_layer_dtype, upcast_layers
from ..models.quantize import check_quantize, quantize_llm_layers
from ..models.random_weights import writes_folders
from ..pruning import Selection, SelectorInputs
from ..pruning.tower import ClipTower
from ..registry.families import card, family_model
from ..switches import CLIP_TEXTS, check_one_of
from .checkpoint import load_glamm_checkpoint
from .prompts import (
    IMAGE_PLACEHOLDER,
    build_prompt,
    image_offset,
    seg_predictor_positions,
    seg_turns,
    tokenize_prompt,
)
from .random_model import built_random, random_model_dir
from .sam_preprocess import postprocess_masks, sam_normalised, sam_processor, sam_resized
from .stages import encoder_parts, stage_parts
from .tokenizer import prompt_encoder, seg_token_id


@dataclass(frozen=True)
class GlammPixels:
    """The CPU part of one image's preparation (:meth:`GlammPipeline.pixels`): the RGB ``image``, CLIP's
    float32 pixels ``clip`` (1, 3, H, W), SAM's input ``sam`` (the (h, w, 3) uint8 resized image, or a
    ``SamImageProcessor``'s float32 pixel values) and its resized (h, w) ``reshaped``."""

    image: Image.Image
    clip: torch.Tensor
    sam: torch.Tensor
    reshaped: tuple[int, int]


@dataclass
class PreparedImage(Prepared):
    """Everything computed once per image: reused by every method and budget."""

    image_size: tuple[int, int]              # original (H, W)
    vision: VisionTrace                      # the one CLIP vision forward (336 centre crop)
    text: TextTrace | None                   # CLIP text trace of the sentences (selectors)
    sam_embeddings: torch.Tensor             # (1, C, h, w)
    sam_reshaped_size: tuple[int, int]       # SAM input size before padding
    feature_layer: int = -2

    def selector_inputs(self) -> SelectorInputs:
        return SelectorInputs(vision=self.vision, text=self.text, image_index=0,
                              feature_layer=self.feature_layer, seed=self.seed)


class GlammPipeline(GroundingPipeline):
    """GLaMM (``GlammModel``) + tokenizer + CLIP backend + SAM image processor: the ``glamm`` family."""

    family = "glamm"
    abilities = Abilities(tower_stage=True)
    prepared_type = PreparedImage

    def __init__(self, model, tokenizer, clip, sam_processor=None, name: str = "glamm",
                 clip_text: str = "question", numerics: Numerics | None = None):
        check_one_of("clip_text", clip_text, CLIP_TEXTS)
        self.model = model
        self.tokenizer = tokenizer
        self.encoder = prompt_encoder(tokenizer)
        self.clip_text = clip_text
        #: attention kernels, CLIP preprocessing and scoring precision (default: the official stack)
        self.numerics = Numerics.official() if numerics is None else numerics
        self.clip = clip
        self.name = str(name)   # the model string as written (a resolved model travels apart)
        self.seg_token_id = seg_token_id(tokenizer)
        #: how the LLM's weights were quantized (``QuantReport``), None when they were not
        self.quantization = None
        #: hooks that run the decoder layers in float32 (``layer_dtype="float32"``), empty otherwise
        self.layer_hooks: list = []
        #: what ``layer_dtype="auto"`` chose and why (:func:`litelvlm.lvlm.upcast.resolve_layer_dtype`), else
        #: None
        self.layer_dtype_auto: dict | None = None
        a = model.arch
        s = a.sam_image_size
        #: None: GLaMM's own SAM pre- and post-processing (``sam_preprocess``); a transformers
        #: ``SamImageProcessor`` instead is this project's option (it resizes differently: about one
        #: uint8 level on some pixels)
        self.sam_processor = sam_processor
        self.sam_size = s
        width = clip.modules().config.vision_config.hidden_size
        if width != a.clip_arch.vision_width:
            raise LiteLVLMError(f"CLIP {clip.name!r} has vision width {width}, but the GLaMM projector "
                                f"expects {a.clip_arch.vision_width}")
        if clip.num_patches != a.num_visual_tokens:
            raise LiteLVLMError(f"CLIP {clip.name!r} has {clip.num_patches} patches; GLaMM expects "
                                f"{a.num_visual_tokens}")
        model.share_vision_tower(clip.modules())
        set_attention(self.numerics.attn, model.llava, model.sam, clip.modules(), llm=self.language_model,
                      clip_softmax=self.numerics.clip_softmax)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_model_string(cls, model: str, clip: str | None = None, sam: str | None = None,
                          device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                          clip_text: str = "question", tokenizer: str | None = None,
                          numerics: Numerics | None = None, quantize: str = "none",
                          quantize_backend: str = "bitsandbytes", layer_dtype: str = "model",
                          clip_context: str = "clip", clip_similarity: str = "clip") -> GlammPipeline:
        # > 60 lines: the loader's steps in order: check, read or build the weights, quantize, CLIP, upcast
        """``tiny-random[:SEED]`` / ``glamm-7b-random[:SEED]`` (a random GLaMM of that size written in the
        GLaMM-RefSeg layout and loaded back; the full size needs ``tokenizer``, a slow GLaMM-RefSeg
        tokenizer folder, and gets ``vit-l-14-336-random:SEED`` as CLIP), or a GLaMM-RefSeg folder with
        ``clip`` (default openai/clip-vit-large-patch14-336) and ``sam`` (optional: a folder/id whose
        ``SamImageProcessor`` to use instead of GLaMM's own preprocessing, which is the default).

        ``dtype=None`` is the official precision: bfloat16 for a checkpoint folder (GLaMM's
        evaluation runs the whole model, pruning arithmetic included, in bfloat16), float32 for
        ``tiny-random``. ``quantize`` (``int8``/``nf4``, :mod:`litelvlm.models.quantize`) quantizes the LLM's
        decoder layers with ``quantize_backend`` as they move to ``device``; ``layer_dtype="float32"`` runs
        each LLM decoder layer and SAM image-encoder layer in float32, weights kept in ``dtype``
        (:mod:`litelvlm.lvlm.upcast`); ``"auto"`` does so where float32 measured faster than bfloat16 on this
        machine (``layer_dtype_auto`` records why). ``clip_context``, ``clip_similarity``: UniPixel's options
        (GLaMM's visual tokens are CLIP's own: ``"clip"``)."""
        model = family_model(model, card(cls.family))  # resolved once, at this edge (a hub id downloaded)
        if clip_context != "clip":
            raise LiteLVLMError(f"model {model.text!r}: --clip-context {clip_context} is for a family that "
                                "maps an external CLIP onto its own tokens; GLaMM's context part is its "
                                "CLIP's [CLS] score")
        if clip_similarity != "clip":
            raise LiteLVLMError(f"model {model.text!r}: --clip-similarity {clip_similarity} is for a family "
                                "that maps an external CLIP onto its own tokens; GLaMM's similarity part is "
                                "its CLIP's")

        check_quantize(quantize, quantize_backend)
        check_layer_dtype(layer_dtype, quantize)
        if dtype is None:
            dtype = torch.float32 if model.is_preset and model.preset == "tiny" else torch.bfloat16
        load_on = "cpu" if quantize != "none" else device
        if model.is_preset:
            seed_i = model.seed
            path = random_model_dir(model.preset, seed_i, tokenizer, load_on) if writes_folders() else None
            clip = clip or (f"tiny336-random:{seed_i}" if model.preset == "tiny"
                            else f"vit-l-14-336-random:{seed_i}")
        else:
            path = model.path
            clip = clip or DEFAULT_HF_MODEL
        proc = sam_processor(sam) if sam else None  # before the weights: a bad --sam fails at once
        # validate --no-write: built in memory
        glamm, tok = load_glamm_checkpoint(path, device=load_on, dtype=dtype, config=model.config) \
            if path is not None else built_random(model.preset, seed_i, tokenizer, load_on, dtype)
        # before quantization; GLaMM's own vision tower is skipped: images go through the CLIP loaded
        # below (checked by load_clip), and a checkpoint need not fill that tower
        refuse_non_finite(glamm, f"GLaMM model {str(model)!r}", skip="vision_tower")
        quant = quantize_llm_layers(glamm, quantize, quantize_backend, device) if quantize != "none" else None
        backend = load_clip(clip, "hf", device=device, dtype=dtype)
        pipe = cls(glamm, tok, backend, proc, name=model, clip_text=clip_text, numerics=numerics)
        pipe.quantization = quant
        a = glamm.arch  # auto: a layer of the LLM's widths on its visual tokens and about 130 text tokens
        layer_dtype, pipe.layer_dtype_auto = resolve_layer_dtype(
            layer_dtype, dtype, device, a.num_visual_tokens + 130, a.llm_hidden, a.llm_intermediate, quantize)
        # the two big bfloat16 workloads (CLIP, whose ranks pick the tokens, keeps its dtype)
        if layer_dtype == "float32":
            pipe.layer_hooks = upcast_layers(glamm.language_model.layers) + upcast_layers(
                glamm.sam.vision_encoder.layers)
        return pipe

    # -- properties ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.model.text_hidden_fcs[0][0].weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.text_hidden_fcs[0][0].weight.dtype

    @property
    def language_model(self):
        return self.model.language_model

    @property
    def hidden_size(self) -> int:
        return self.model.arch.llm_hidden

    @property
    def num_visual_tokens(self) -> int:
        """N for every image: GLaMM's fixed grid of CLIP patches."""
        return self.model.arch.num_visual_tokens

    def num_visual(self, prepared: PreparedImage) -> int:
        return prepared.vision.num_patches

    def describe(self) -> dict:
        """JSON-able description (result configs)."""
        return {"model": self.name, "arch": self.model.arch.to_dict(), "clip": self.clip.describe(),
                "seg_token_id": self.seg_token_id, "dtype": str(self.dtype).replace("torch.", ""),
                "clip_text": self.clip_text, **self.numerics.record(self.language_model),
                **({"quantization": self.quantization.to_dict()} if self.quantization else {}),
                **({"layer_dtype": "float32"} if self.layer_hooks else {}),
                **({"layer_dtype_auto": self.layer_dtype_auto} if self.layer_dtype_auto else {})}

    #: the time by stage's parts (:mod:`litelvlm.cost.stages`) and the encoders ``--encoders`` captures
    stage_modules = stage_parts
    encoder_modules = encoder_parts

    # -- per image ----------------------------------------------------------------------------
    @torch.no_grad()
    def pixels(self, image: Image.Image) -> GlammPixels:
        """CLIP's preprocessing and SAM's longest-side resize of ``image``, on the CPU (a loader thread's part
        of :meth:`prepare_image`)."""
        image = image.convert("RGB")
        clip = self.clip.preprocess([image], processor=self.numerics.clip_preprocess, on_device=False)
        if self.sam_processor is None:
            sam, reshaped = sam_resized(image, self.sam_size)
        else:
            sam_in = self.sam_processor(images=image, return_tensors="pt")
            sam, reshaped = sam_in["pixel_values"], tuple(int(x) for x in sam_in["reshaped_input_sizes"][0])
        return GlammPixels(image, clip, sam, reshaped)

    def _on_device(self, px: GlammPixels) -> tuple[torch.Tensor, torch.Tensor]:
        """(CLIP's pixels, SAM's pixel values) of ``px`` on the device in the towers' dtypes (SAM's own
        normalising and padding there)."""
        sam = sam_normalised(px.sam.to(self.device), self.sam_size) if self.sam_processor is None else px.sam
        return px.clip.to(self.clip.device, self.clip.dtype), sam.to(self.device, self.dtype)

    @torch.no_grad()
    def prepare_image(self, image: Image.Image | GlammPixels, seed: int = 0) -> PreparedImage:
        """The image part only (one CLIP vision forward, one SAM encoder forward) of an image or its
        :meth:`pixels`; add text with ``with_sentences`` (cheap, so one image serves many sentences)."""
        px = image if isinstance(image, GlammPixels) else self.pixels(image)
        clip_pixels, sam_pixels = self._on_device(px)
        vision = self.clip.trace_image(clip_pixels)
        reshaped, image = px.reshaped, px.image
        emb = self.model.sam.get_image_embeddings(sam_pixels)
        return PreparedImage(image_size=(image.height, image.width), sentences=[],
                             input_ids=torch.empty(0, dtype=torch.long), vision=vision, text=None,
                             sam_embeddings=emb, sam_reshaped_size=reshaped,
                             feature_layer=self.model.arch.feature_layer, seed=seed)

    @torch.no_grad()
    def with_sentences(self, prepared: PreparedImage, sentences: list[str],
                       turns: list[tuple[str, str]] | None = None,
                       clip_texts: list[str] | None = None, clip_text: str | None = None) -> PreparedImage:
        """``prepared`` with the prompt (one [SEG] per sentence; default one turn each with GLaMM's first
        templates; ``turns`` gives them explicitly) and the CLIP text trace the selectors read
        (``clip_texts``; default: the turns' questions, or the sentences if ``clip_text`` (this call's, else
        the pipeline's) is ``"expression"``)."""
        if not sentences:
            raise LiteLVLMError("at least one sentence is needed")
        turns = seg_turns(sentences) if turns is None else turns
        ids = tokenize_prompt(self.encoder, build_prompt(turns))
        n_seg = int((ids == self.seg_token_id).sum())
        if n_seg != len(sentences):
            raise LiteLVLMError(f"the prompt has {n_seg} [SEG] tokens for {len(sentences)} sentences")
        clip_text = self.clip_text if clip_text is None else clip_text
        check_one_of("clip_text", clip_text, CLIP_TEXTS)
        if clip_texts is None:
            clip_texts = [q for q, _ in turns] if clip_text == "question" else list(sentences)
        text = self.clip.encode_text(list(clip_texts), warn_truncation=False)
        return replace(prepared, sentences=list(sentences), input_ids=ids, text=text)

    def visual_tokens(self, prepared: PreparedImage) -> torch.Tensor:
        """(N, h) projector outputs of the feature-layer patch tokens (CLS dropped), raster order."""
        feats = prepared.vision.patches(prepared.feature_layer)[0]
        return self.model.project(feats.to(self.dtype))

    def sequence_embeds(self, prepared: PreparedImage, visual: torch.Tensor) -> torch.Tensor:
        """(B, S, h) input embeddings: the text tokens' embeddings with ``visual`` ((K, h) or (B, K, h)) at
        the placeholder."""
        ids = prepared.input_ids
        p = image_offset(ids)
        emb = self.language_model.embed_tokens(torch.cat([ids[:p], ids[p + 1:]]).to(self.device))
        if visual.dim() == 2:
            return torch.cat([emb[:p], visual.to(emb.dtype), emb[p:]])[None]
        b = visual.shape[0]
        return torch.cat(
            [emb[None, :p].expand(b, -1, -1), visual.to(emb.dtype), emb[None, p:].expand(b, -1, -1)], 1)

    def layout(self, prepared: PreparedImage, num_visual: int) -> SequenceLayout:
        """The N visual tokens replace the prompt's one placeholder; positions 0..S-1 (1-D RoPE)."""
        ids = prepared.input_ids
        seq_len = int(len(ids)) - 1 + num_visual
        return SequenceLayout(image_start=image_offset(ids), num_visual=num_visual, seq_len=seq_len,
                              position_ids=torch.arange(seq_len, device=self.device)[None],
                              find_seg_predictors=lambda:
                              seg_predictor_positions(ids, num_visual, self.seg_token_id),
                              positions_are_indices=True)

    def clip_selection_tokens(self, prepared: PreparedImage, sel: Selection,
                              full: torch.Tensor | None = None) -> torch.Tensor:
        """Merged CLIP features (VisionZip) through the projector; kept rows of ``full``; with no ``full``,
        the official order: gather the kept CLIP features, then the projector on K rows."""
        if sel.features is not None:
            return self.model.project(sel.features.to(self.dtype))
        if full is None:
            feats = prepared.vision.patches(prepared.feature_layer)[0]
            return self.model.project(feats[sel.indices.to(feats.device)].to(self.dtype))
        return full[sel.indices.to(full.device)]

    def clip_selection_rows(self, prepared: PreparedImage, sel: Selection) -> torch.Tensor:
        """GLaMM's visual tokens are CLIP's patches in raster order: the selection's indices (-1: VisionZip's
        [CLS], -2: PruMerge's merged token; a VisionZip contextual token is its target patch's)."""
        return sel.indices

    def tower_context(self, prepared: PreparedImage):
        """GLaMM's CLIP tower (the backend's blocks, shared with LLaVA) from the trace's embeddings to the
        feature layer; the kept patches' output goes through the projector, in the tower's order
        (``clip_selection_tokens``)."""
        def to_llm(sel: Selection) -> tuple[torch.Tensor, torch.Tensor]:
            return self.clip_selection_tokens(prepared, sel), self.clip_selection_rows(prepared, sel)

        return ClipTower.of(self.clip, prepared.vision, 0, prepared.feature_layer, to_llm)

    def projector(self):
        """GLaMM's model, whose ``project`` maps CLIP's features to the LLM's visual tokens."""
        return self.model

    def seg_prompts(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        """GLaMM's ``text_hidden_fcs`` on the [SEG] hidden states."""
        return self.model.seg_prompts(seg_hidden)

    def decode_masks(self, prepared: PreparedImage, prompts: torch.Tensor) -> torch.Tensor:
        """SAM's mask decoder on the image embedding of ``prepare_image``."""
        return self.model.decode_masks(prepared.sam_embeddings, prompts)

    def decode_masks_many(self, prepared: list[PreparedImage],
                          prompts: list[torch.Tensor]) -> list[torch.Tensor]:
        """:meth:`decode_masks` of several inputs in one decoder call (``ground_many``'s mask head over the
        inputs that shared an LLM forward)."""
        return self.model.decode_masks_many([p.sam_embeddings for p in prepared], prompts)

    def upscale_masks(self, prepared: PreparedImage, low: torch.Tensor) -> torch.Tensor:
        """(S, H, W) float32 mask logits at the original size from the decoder's (S, 1, h, w) logits
        (GLaMM's ``postprocess_masks``; masks are ``logits > 0``)."""
        if self.sam_processor is None:
            return postprocess_masks(low, prepared.sam_reshaped_size, prepared.image_size, self.sam_size)
        return self.sam_processor.post_process_masks(
            [low.float()], [prepared.image_size], [prepared.sam_reshaped_size], binarize=False)[0][:, 0]


__all__ = ["GlammPipeline", "GroundingOutput", "PreparedImage", "IMAGE_PLACEHOLDER"]
