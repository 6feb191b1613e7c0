"""What a model family implements (:class:`FamilyContract`): the members every family provides
(``abc.abstractmethod``: its input, its LLM sequence, its mask head), what it declares as data (``family``,
``abilities``, ``prepared_type``) and holds as state, and the defaults it may override (``device``,
``num_visual``, ``mask_shape``, ...). A family's pipeline subclasses
:class:`~litelvlm.lvlm.family.GroundingPipeline`, which adds ``ground_many``, the hooks it calls (each with
its default) and what no family overrides."""

from __future__ import annotations

import abc
import contextlib
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import LiteLVLMError
from ..pruning import Selection
from .abilities import Abilities
from .prepared import Prepared
from .sequence import GroundingOutput, SequenceLayout
from .visual_view import visual_grid, visual_window


class FamilyContract(abc.ABC):
    """What a family's pipeline implements, declares and may override (see the module); the base of
    :class:`~litelvlm.lvlm.family.GroundingPipeline`."""

    #: the family's name in :mod:`litelvlm.registry.families`
    family: ClassVar[str] = ""
    #: what the family offers the methods and the studies
    abilities: ClassVar[Abilities] = Abilities()

    name: str = ""
    numerics: Any = None
    #: how the LLM's weights were quantized (``QuantReport``), None when they were not
    quantization: Any = None
    #: hooks that run layers in float32 (``layer_dtype="float32"``), empty otherwise
    layer_hooks: list | tuple = ()
    #: the id of the family's [SEG] token (set when it loads its tokenizer)
    seg_token_id: int = -1
    #: ``answer="generate"``: the most new tokens a generated answer may have (the family's official limit)
    max_new_tokens: int = 0
    #: the type of the family's prepared input (``prepare_image``'s and ``with_sentences``')
    prepared_type: ClassVar[type[Prepared]] = Prepared
    #: the family's loaded model (None where it has no model object of its own)
    model: Any = None
    #: the CLIP whose traces the CLIP-side methods read (its own patches' or a paired one; None: none)
    clip: Any = None
    #: the compiled prefill paths a study installed (``validate --prefill compiled``), None otherwise
    compiled: Any = None
    #: why ``layer_dtype="auto"`` chose what it chose on this machine (None: it was not asked)
    layer_dtype_auto: dict | None = None

    # -- what every family provides --------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def language_model(self):
        """The LLM's decoder stack (``layers``, ``norm``, ``rotary_emb``, ``config``, ``embed_tokens``)."""

    @abc.abstractmethod
    def prepare_image(self, image, seed: int = 0) -> Prepared:
        """The per-image work (vision forwards, the mask decoder's image embedding), reused by every method
        and budget; ``image`` may be what :meth:`pixels` made of it."""

    def pixels(self, image):
        """The CPU part of ``prepare_image`` (resizing, normalising) for a loader thread to run ahead: CPU
        tensors only, nothing on the device; ``prepare_image`` of it equals ``prepare_image(image)``. This
        default hands the image back (``prepare_image`` does all of it)."""
        return image

    @abc.abstractmethod
    def with_sentences(self, prepared: Prepared, sentences: list[str], turns=None, **options):
        """``prepared`` with the prompt for ``sentences`` (one [SEG] each) and the CLIP text trace."""

    @abc.abstractmethod
    def visual_tokens(self, prepared: Prepared) -> torch.Tensor:
        """(N, h) the visual tokens in the LLM's input space, in the family's sequence order."""

    @abc.abstractmethod
    def layout(self, prepared: Prepared, num_visual: int) -> SequenceLayout:
        """The sequence of ``prepared``'s prompt with ``num_visual`` visual tokens."""

    @abc.abstractmethod
    def sequence_embeds(self, prepared: Prepared, visual: torch.Tensor) -> torch.Tensor:
        """(B, S, h) input embeddings: the prompt's text embeddings with ``visual`` ((K, h) or (B, K, h)) at
        the image's place."""

    @abc.abstractmethod
    def seg_prompts(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        """The mask decoder's prompts from the final hidden states predicting each [SEG]."""

    @abc.abstractmethod
    def decode_masks(self, prepared: Prepared, prompts: torch.Tensor) -> torch.Tensor:
        """(S, 1, h, w) low-resolution mask logits for the prompts ((S, T, h, w) for a video's T frames)."""

    @abc.abstractmethod
    def upscale_masks(self, prepared: Prepared, low: torch.Tensor) -> torch.Tensor:
        """(S, *mask_shape) float32 mask logits at the original size, (S, H, W) or a video's (S, T, H, W)
        (masks are ``logits > 0``)."""

    # -- defaults a family may override ----------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the LLM's input embeddings live."""
        return self.language_model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the LLM's input embeddings."""
        return self.language_model.embed_tokens.weight.dtype

    @property
    def hidden_size(self) -> int:
        """Width of the LLM's hidden states (and of the visual tokens it receives)."""
        return int(self.language_model.config.hidden_size)

    def describe(self) -> dict:
        """JSON-able description (result configs)."""
        return {"model": self.name, "family": self.family}

    @property
    def num_visual_tokens(self) -> int | None:
        """N for every input when the family's grid is fixed (GLaMM: 576), None when N depends on the image
        (then the studies ask :meth:`num_visual` per prepared input)."""
        return None

    def num_visual(self, prepared: Prepared) -> int:
        """N: the visual tokens the LLM receives for this input, unpruned."""
        return int(self.visual_tokens(prepared).shape[0])

    def full_budget(self, prepared: Prepared) -> int:
        """The budget keeping everything (the baseline's) in the abilities' ``budget_unit``: N, or a frame's
        CLIP patches; ``ground`` counts a budget against it."""
        return self.num_visual(prepared)

    def mask_shape(self, prepared: Prepared) -> tuple[int, ...]:
        """One [SEG]'s mask: (H, W) of an image; (T, H, W) of a video's T frames."""
        return tuple(int(v) for v in prepared.image_size)

    def keeps_everything(self, prepared: Prepared, out: GroundingOutput) -> bool:
        """Whether ``out``'s run gave the LLM every visual token unchanged and in order (nothing pruned)."""
        return bool(torch.equal(out.kept_indices.cpu(), torch.arange(self.num_visual(prepared))))

    def visual_grid(self, prepared: Prepared) -> tuple[int, int]:
        """(rows, cols) of ``prepared``'s N visual tokens in the sequence's order (row-major), read from the
        layout's positions (M-RoPE) or the square of N (1-D RoPE);
        :func:`litelvlm.lvlm.visual_view.visual_grid`."""
        return visual_grid(self, prepared)

    def visual_window(self, image) -> np.ndarray:
        """The part of ``image`` the visual tokens cover, an RGB array (CLIP's crop window for a family of
        CLIP patches, else the whole image); :func:`litelvlm.lvlm.visual_view.visual_window`."""
        return visual_window(self, image)

    def projector(self):
        """The module mapping CLIP features to the LLM's visual tokens (``project``, ``projector``: GLaMM's
        MLP), whose input layer integrated gradients integrate; None where the family has none."""
        return None

    def clip_selection_tokens(self, prepared: Prepared, sel: Selection,
                              full: torch.Tensor | None = None) -> torch.Tensor:
        """(K, h) the LLM inputs of a CLIP-side selection: ``sel.indices`` index CLIP's patch grid (raster
        order), ``sel.features`` are merged CLIP features; ``full`` are the family's (N, h) visual tokens to
        gather from (None: computed here). A family whose visual tokens are not CLIP's patches maps the grid
        onto its tokens here; the LLM-side methods index the family's own tokens and need no map."""
        raise LiteLVLMError(f"the {self.family} family hands no CLIP-side selection to its LLM")

    def forward_context(self) -> contextlib.AbstractContextManager:
        """The context every LLM forward of ``ground`` runs in (VideoGLaMM: its eager attention's reused
        scratch memory, the same values); none by default."""
        return contextlib.nullcontext()

    def tower_context(self, prepared: Prepared):
        """The vision tower on ``prepared`` (a :class:`~litelvlm.pruning.tower.TowerContext`), where
        ``abilities.tower_stage``."""
        raise LiteLVLMError(f"the {self.family} family offers no vision-tower stage")

    def clip_selection_rows(self, prepared: Prepared, sel: Selection) -> torch.Tensor:
        """(K,) the family's visual-token index that each LLM input of a CLIP-side selection stands for, in
        :meth:`clip_selection_tokens`'s order; negative where an input is no single patch (a [CLS], a merged
        extra token). ``ground(positions="keep")`` gives the inputs those tokens' original positions."""
        raise LiteLVLMError(f"the {self.family} family hands no CLIP-side selection to its LLM")

    @property
    def lm_head(self):
        """The LLM's output projection (a family whose abilities' ``answers`` offer ``generate``)."""
        raise LiteLVLMError(f"the {self.family} family's prompts offer no generated answer")

    @property
    def stop_ids(self) -> set[int]:
        """The token ids that end a generated answer (a family whose abilities' ``answers`` offer
        ``generate``)."""
        raise LiteLVLMError(f"the {self.family} family's prompts offer no generated answer")

    def stage_modules(self) -> dict[str, list]:
        """{stage: modules (or (owner, attribute) steps) whose calls are it} for :mod:`litelvlm.cost.stages`:
        ``vision``, ``mask``, ``other`` (outside the stages); default none (their time is ``other``)."""
        return {}

    def encoder_modules(self) -> list:
        """The image encoders whose ``forward`` runs at fixed input shapes per image (a vision tower, a paired
        CLIP's, SAM's image encoder; an ``encoders.Indexed`` one with its index tensors), captured under
        ``--encoders`` (:mod:`litelvlm.lvlm.encoders`); default none."""
        return []

    def sample_metrics(self, pred, gt, box) -> dict:
        """The family's own per-sample columns (prefixed with the abilities' ``own_metric``) for a boolean (H,
        W) prediction ``pred``, the target ``gt`` and the referent's COCO box (x, y, w, h) or None; {} when it
        has none."""
        return {}

    @classmethod
    def summarize_metrics(cls, rows) -> dict:
        """The family's own summary columns over one (method, budget)'s rows of :meth:`sample_metrics`."""
        return {}
