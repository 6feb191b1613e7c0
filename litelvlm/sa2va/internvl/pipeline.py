"""``Sa2VAInternVLPipeline``: Sa2VA-InternVL3 (InternViT + ``mlp1`` + Qwen2.5 + SAM 2 prompted by ``[SEG]``),
the ``sa2va`` family on InternVL3. Pruning it is this project's (``describe()`` says so on every run).

Details: docs/sa2va.md (`litelvlm.sa2va.internvl.pipeline`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
from PIL import Image

from ...errors import LiteLVLMError
from ...lvlm.abilities import Abilities
from ...lvlm.family import SequenceLayout
from ...lvlm.numerics import Numerics
from ...models.model_spec import ModelSpec
from ...qwen.mapped import frames_mapped_inputs
from ...qwen.pixels import QwenPixels, as_pixels, paired_clip_pixels
from ...switches import ANSWERS, CLIP_TEXTS
from .. import protocol
from ..backbones import Sa2VABackbone, Sa2VABackboneInput
from ..card import CARD
from ..clip_pairing import default_clip
from ..video import video_parts
from . import tiles as _tiles
from .config import IMG_CONTEXT, MAX_TILES, PATCH, STOP_WORDS, TILE
from .loading import load_internvl
from .mapped import tiles_mapped_inputs
from .tiles import TileGrid, image_tiles, prompt_text, tile_grid, tile_pixels
from .tower import InternViTTower
from .video import VIDEO_PRUNING, joined

#: what Sa2VA-InternVL3 refuses beyond the family contract's rules (``Abilities.refuses``)
REFUSES = {"downsample": "{method} pools one image's grid of visual tokens; Sa2VA-InternVL3 gives the LLM "
                         "the grids of several 448-px tiles and of a thumbnail, for which no pooling is "
                         "defined yet",
           "flowcut": "{method} runs CLIP-style blocks with a [CLS] attention row; InternViT's tower stage "
                      "runs a block as its two branches only (IPCV)"}
#: one expression per prompt; an external CLIP's scores mapped onto the tiles' tokens (this project's); 1-D
#: RoPE, each method's own position rule (as on LLaVA); the LLaVA form of every method (no variant)
ABILITIES = Abilities(sentences_per_prompt=1, clip_side="mapped", position_axes=1,
                      answers=ANSWERS, refuses=REFUSES, tower_stage=True)
#: how ``describe()`` labels this backbone's pruning
ADAPTATION = ("this project's adaptation: Sa2VA has no official pruning; budgets count the <IMG_CONTEXT> "
              "tokens (256 per 448-px tile, the thumbnail's included); the methods acting with the LLM run "
              "in their LLaVA form (1-D RoPE), the score-only CLIP-side methods through the paired CLIP "
              "mapped onto the tiles")


@dataclass
class InternVLInput(Sa2VABackboneInput):
    """One image (or a video's first frames) and its prompt: ``grid_thw`` holds one (1, 32, 32) patch grid per
    tile or frame, ``mm_token_type_ids`` is 1 on the ``<IMG_CONTEXT>`` rows."""

    grid: TileGrid | None = None            # an image's tiles (None: a video)


class Sa2VAInternVLPipeline(Sa2VABackbone):
    """Sa2VA-InternVL3: transformers' ``InternVLForConditionalGeneration`` + tokenizer + ``text_hidden_fcs`` +
    SAM 2 (docs/sa2va.md)."""

    family = "sa2va"
    abilities = ABILITIES
    prepared_type = InternVLInput
    #: ``answer="generate"``: ``preparing_for_generation``'s limit (L527)
    max_new_tokens = 2048
    #: how a pruned video runs (:meth:`join_video`)
    video_pruning = VIDEO_PRUNING

    def __init__(self, model, tokenizer, fcs, sam2, name: str = "sa2va", numerics=None, clip=None,
                 clip_text: str = "question", context: str = "clip", similarity: str = "clip",
                 max_tiles: int = MAX_TILES) -> None:
        if context != "clip":
            raise LiteLVLMError(f"model {name!r}: context={context!r} reads Qwen2.5-VL's vision tower; "
                                "Sa2VA-InternVL3's context part comes from the paired CLIP (context='clip')")
        self._set_clip(clip, clip_text, context, similarity)
        self.qwen = self.model = model         # QwenSam2Pipeline reads the LVLM as ``qwen``
        self.tokenizer, self.processor, self.sam2, self.name = tokenizer, None, sam2, str(name)
        self.fcs = self.seg_head = fcs
        self.numerics = Numerics.for_protocol("official", attn=CARD.official_attn) if numerics is None \
            else numerics
        self.quantization, self.layer_hooks = None, []
        self.seg_token = protocol.SEG_TOKEN
        self.seg_token_id = protocol.seg_token_id(tokenizer)
        self.image_token_id = int(tokenizer.convert_tokens_to_ids(IMG_CONTEXT))
        self.max_tiles = int(max_tiles)
        self.apply_attention()

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def load_parts(cls, spec: ModelSpec, device: str | torch.device, dtype: torch.dtype | None):
        """``sa2va-internvl3-<size>-random[:SEED]`` or a Sa2VA-InternVL3 checkpoint folder
        (:mod:`.loading`)."""
        return load_internvl(spec, device=device, dtype=dtype)

    @classmethod
    def modules_of(cls, parts) -> tuple:
        return parts.model, parts.tokenizer, parts.fcs, parts.sam2

    @classmethod
    def part_options(cls, parts, options: dict) -> dict:
        """A random tiny preset's tile limit (its folder's ``litelvlm_random``); ``--image-resize`` refused:
        the tiles are resized by PIL, as the official code resizes them."""
        if options.get("image_resize") not in (None, "torchvision"):
            raise LiteLVLMError(f"--image-resize {options['image_resize']}: Sa2VA-InternVL3 resizes its "
                                "tiles with PIL as its official code does; the option is the Qwen-VL "
                                "processors'")
        rnd = parts.config.get("litelvlm_random") or {}
        return {"max_tiles": int(rnd.get("max_tiles", MAX_TILES))}

    #: the CLIP paired with a model string (:func:`litelvlm.sa2va.clip_pairing.default_clip`)
    default_clip = classmethod(default_clip)

    def describe(self) -> dict:
        out = super().describe()
        out.update(backbone="InternVL3", pruning=ADAPTATION, video_pruning=VIDEO_PRUNING,
                   positions="1-D RoPE: each method's own rule (as on LLaVA)",
                   tiles=f"official: 1 to {self.max_tiles} tiles of {TILE} px and a thumbnail",
                   answer="teacher-forced by default (this project's: the official answer is generated, "
                   "answer='generate')",
                   mask_head="final hidden state of the [SEG] row -> text_hidden_fcs -> SAM 2 (no "
                   "object-score gate)")
        out["clip"]["map"] = "area-weighted mean onto the tiles' tokens (this project's adaptation)"
        return out

    def encoder_modules(self) -> list:
        """InternViT, SAM 2's image encoder and the paired CLIP's vision tower once loaded
        (``--encoders``)."""
        clip = None if self.loaded_clip() is None else self.loaded_clip().modules()
        return [self.model.model.vision_tower, self.sam2.model.vision_encoder,
                *([clip.vision_model] if clip is not None else [])]

    def stage_modules(self) -> dict[str, list]:
        """The vision tower, ``mlp1`` and the tiling; the paired CLIP once loaded; SAM 2's parts."""
        loaded, model = self.loaded_clip(), self.model.model
        clip = None if loaded is None else loaded.modules()
        steps = [] if clip is None else [*clip.children(),
                                         *((loaded, n) for n in ("trace_image", "encode_text"))]
        prepare = [] if clip is None else [(loaded, "preprocess")]
        here = sys.modules[__name__]   # the names this module calls (imported from .tiles)
        tiling = [(m, n) for m in (_tiles, here) for n in ("image_tiles", "tile_pixels")]
        sam = [(self.sam2, n) for n in ("preprocess", "pixels", "on_device")]
        return {"prepare": [*prepare, *tiling, (self, "pixels"), *sam],
                "vision": [model.vision_tower, model.multi_modal_projector, (model, "get_image_features"),
                           *steps],
                "mask": [*self.sam2.model.children(), (self.sam2, "encode_image")]}

    @property
    def stop_ids(self) -> set[int]:
        """``<|im_end|>`` (the tokenizer's end) and ``<|endoftext|>``: ``preparing_for_generation``'s
        ``eos_token_id`` and stop words (L532-541)."""
        ids = {int(self.tokenizer.convert_tokens_to_ids(w)) for w in STOP_WORDS}
        end = self.tokenizer.eos_token_id
        return ids | ({int(end)} if end is not None else set())

    # -- per image ------------------------------------------------------------------------------------
    def _features(self, images: list[Image.Image]) -> torch.Tensor:
        """(n * 256, h) the LLM inputs of 448-px images: InternViT, pixel shuffle, ``mlp1``."""
        return self._tile_features(tile_pixels(images, self.model.model.vision_tower.dtype))

    def _tile_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """(n * 256, h) the LLM inputs of the tiles' pixels (``tile_pixels``, on the CPU)."""
        out = self.model.model.get_image_features(pixels.to(self.device)).pooler_output
        return out.reshape(-1, out.shape[-1]).to(self.dtype)

    def _input(self, image: Image.Image, visual: torch.Tensor, count: int, **fields) -> InternVLInput:
        grid_thw = torch.tensor([[1, TILE // PATCH, TILE // PATCH]] * count)
        return InternVLInput(image=image, image_size=(image.height, image.width), sentences=[],
                             input_ids=torch.empty(0, dtype=torch.long),
                             mm_token_type_ids=torch.empty(0, dtype=torch.long), grid_thw=grid_thw,
                             second_per_grid_ts=torch.ones(1), visual=visual, **fields)

    def pixels(self, image: Image.Image) -> QwenPixels:
        """The tile grid and the tiles' pixels (``tile_pixels``) and SAM 2's pixels of ``image``, on the
        CPU."""
        grid = tile_grid(image.width, image.height, self.max_tiles)
        tiles = tile_pixels(image_tiles(image, grid), self.model.model.vision_tower.dtype)
        return QwenPixels(image, (grid, tiles), self.sam2.pixels(image), paired_clip_pixels(self, image))

    @torch.no_grad()
    def prepare_image(self, image: Image.Image | QwenPixels, seed: int = 0) -> InternVLInput:
        """The tiles' visual tokens and SAM 2's features of the image (or of its :meth:`pixels`) stretched to
        its input size."""
        pixels = as_pixels(self, image)
        (grid, tiles), image = pixels.tower, pixels.image
        visual = self._tile_features(tiles)
        return self._input(image, visual, grid.num_tiles, grid=grid, seed=seed,
                           sam_features=self.sam2.encode_image(self.sam2.on_device(pixels.sam)),
                           clip_cache=pixels.clip_cache())

    @torch.no_grad()
    def prepare_video(self, frames: list, seed: int = 0) -> InternVLInput:
        """A video (PIL frames of one size): the visual tokens of its first min(5, T) frames, each whole, and
        every frame's SAM 2 pixels; masks are (T, H, W) at the first frame's size."""
        if not frames:
            raise LiteLVLMError("a video needs at least one frame")
        parts = video_parts(self.sam2, frames)
        visual = self._features(list(frames[:parts.llm_frames]))
        return self._input(frames[0], visual, parts.llm_frames, seed=seed, sam_features=None, video=parts)

    @torch.no_grad()
    def with_sentences(self, prepared: InternVLInput, sentences: list[str], turns=None,
                       clip_text: str | None = None, answer: str = "teacher-forced", response: int = 0,
                       **unused) -> InternVLInput:
        """``prepared`` with the RefCOCO (or a video's Ref-VOS) question of one sentence as
        ``predict_forward`` encodes it, and this project's teacher-forced answer, or (``answer="generate"``)
        the official prompt alone."""
        clip_text = self.clip_text if clip_text is None else clip_text
        if answer not in self.abilities.answers or clip_text not in CLIP_TEXTS:
            raise LiteLVLMError(f"answer must be one of {', '.join(self.abilities.answers)} and clip_text "
                                f"one of {', '.join(CLIP_TEXTS)}; got {answer!r}, {clip_text!r}")
        if len(sentences) != 1 or turns is not None:
            raise LiteLVLMError("Sa2VA's protocol asks one expression per prompt, in its own question (no "
                                "turns)")
        if answer == "teacher-forced" and not 0 <= response < len(protocol.ANSWERS_LIST):
            raise LiteLVLMError(f"response {response} not in 0..{len(protocol.ANSWERS_LIST) - 1}")
        video = prepared.video is not None
        question = (protocol.video_question if video else protocol.image_question)(sentences[0])
        per_block = int(prepared.visual.shape[0]) // (len(prepared.grid_thw) if video else 1)
        text = prompt_text(question, per_block, len(prepared.grid_thw) if video else 1)
        said = "" if answer == "generate" else protocol.ANSWERS_LIST[response]
        ids = torch.tensor(self.tokenizer.encode(text + said), dtype=torch.long)
        if int((ids == self.seg_token_id).sum()) != (answer == "teacher-forced"):
            raise LiteLVLMError(f"the prompt must hold {'one' if answer == 'teacher-forced' else 'no'} [SEG]")
        answer_len = len(self.tokenizer(said, add_special_tokens=False)["input_ids"]) if said else 0
        types = (ids == self.image_token_id).long()
        return self._with_ids(prepared, sentences, ids, types, answer, clip_text,
                              prompt_len=len(ids) - answer_len if said else None)

    def _mapped_inputs(self, prepared: InternVLInput, clip_text: str):
        """The paired CLIP's scores mapped onto the tiles' tokens (:mod:`.mapped`), or each LLM frame's onto
        its 16 x 16 grid (:func:`litelvlm.qwen.mapped.frames_mapped_inputs`)."""
        if prepared.video is None:
            return tiles_mapped_inputs(self, prepared, clip_text)
        sentence = prepared.sentences[0]
        said = self.clip_question(sentence, video=True) if clip_text == "question" else sentence
        return frames_mapped_inputs(self, prepared, prepared.video.originals, (TILE // PATCH, TILE // PATCH),
                                    said, per_patch=1)

    def clip_question(self, sentence: str, video: bool = False) -> str:
        """The question of ``sentence`` as the LLM reads it, ``<image>`` dropped."""
        make = protocol.video_question if video else protocol.image_question
        return make(sentence).replace("<image>", "").strip()

    def seg_rows(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The rows whose input is ``[SEG]`` (``get_seg_hidden_states`` L774-779)."""
        return protocol.seg_rows(input_ids, self.seg_token_id)

    def visual_grid(self, prepared: InternVLInput) -> tuple[int, int]:
        """(16, 16): the grid of one tile's (or one frame's) tokens; several tiles (and a thumbnail) are no
        single grid of the image."""
        if len(prepared.grid_thw) != 1:
            raise LiteLVLMError(f"Sa2VA-InternVL3's {self.num_visual(prepared)} visual tokens are the grids "
                                f"of {len(prepared.grid_thw)} tiles (a thumbnail's included) or frames, no "
                                "single grid of the image; an image of one tile gives one 16 x 16 grid")
        side = TILE // PATCH // 2
        return side, side

    def tower_context(self, prepared: InternVLInput) -> InternViTTower:
        """InternViT on ``prepared``'s image tiles (:mod:`.tower`); a video's frames have no tower stage."""
        if prepared.video is not None:
            raise LiteLVLMError("the vision-tower stage runs on one image's tiles; a video's frames are not "
                                "offered")
        (_, tiles) = self.pixels(prepared.image).tower
        return InternViTTower(self.model.model, tiles.to(self.device), self.dtype)

    def vision(self, prepared):
        raise LiteLVLMError("the methods' Qwen2.5-VL variants read Qwen2.5-VL's vision tower; "
                            "Sa2VA-InternVL3 runs the methods' LLaVA form")

    # -- the sequence ---------------------------------------------------------------------------------
    def layout(self, prepared: InternVLInput, num_visual: int) -> SequenceLayout:
        """Positions 0..S-1 (1-D RoPE, ``position_ids=None``); a joined video's official positions at all N. A
        video's official prompt (its frames in separate blocks) runs at all N only."""
        n = self.num_visual(prepared)
        if not 0 < num_visual <= n:
            raise LiteLVLMError(f"num_visual must be in 1..{n}; got {num_visual}")
        if prepared.video is not None and prepared.joined_positions is None and num_visual != n:
            raise LiteLVLMError(f"a video's official prompt runs at all N; pruned: {VIDEO_PRUNING}")
        ids = prepared.input_ids if num_visual == n else self._pruned_ids(prepared, num_visual)
        given = prepared.joined_positions if num_visual == n else None
        pos = torch.arange(len(ids))[None] if given is None else given
        return SequenceLayout(image_start=self._image_start(prepared), num_visual=num_visual,
                              seq_len=len(ids), position_ids=pos.to(self.device),
                              find_seg_predictors=lambda: self.seg_rows(ids),
                              positions_are_indices=given is None)

    def join_video(self, prepared: InternVLInput) -> InternVLInput:
        """A pruned video's one block of tokens (:data:`.video.VIDEO_PRUNING`, :func:`.video.joined`)."""
        return joined(prepared)


__all__ = ["ABILITIES", "ADAPTATION", "InternVLInput", "REFUSES", "Sa2VAInternVLPipeline"]
