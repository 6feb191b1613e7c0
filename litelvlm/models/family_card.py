"""A model family's card: everything the suite knows of a family before its code loads, in one frozen object.

Each family package holds one ``card.py`` with ``CARD = FamilyCard(...)`` (light: no torch), and
:mod:`litelvlm.registry.families` registers it with one line. The command line, the studies and the figures
ask the card (its name, display name, presets, model strings, the paper's model, what it reads, its video
path, its cost description) and never name a family. The pipeline itself answers the rest through
:class:`litelvlm.lvlm.family.GroundingPipeline`. This module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any

from ..errors import LiteLVLMError
from ..lazy import Lazy  # the cards name their pieces with it (``from ..family_card import Lazy``)
from .model_spec import ModelSpec

#: what a family's ``prepare_image`` takes: a PIL image, or a list of frames
INPUTS = ("image", "video")

def _lazy(value: Lazy | str | None) -> Lazy | None:
    """A piece as a :class:`Lazy`; a ``"module:attribute"`` string (a card written before them) is read as
    one."""
    return value if value is None or isinstance(value, Lazy) else Lazy.named(str(value))


#: the card's fields that are :class:`Lazy` pieces
PIECES = ("pipeline", "video_eval", "cost", "questions", "official_sample", "merged_grid")


@dataclass(frozen=True)
class FamilyCard:
    """One family, as the suite sees it. ``presets`` maps each random model-string name (``<name>-random``) to
    the preset it builds; ``architectures`` are the ``config.json`` ``architectures`` its checkpoints declare;
    ``default_model`` is the documented offline model string (random weights); ``paper_model`` says in words
    which released weights the paper (or the family's authors) report; ``paper_preset`` is the preset of the
    paper's architecture (its figures appear only beside rows of it), None when the paper reports none for
    this family. ``pipeline``, ``video_eval``, ``cost``, ``questions``, ``official_sample`` and
    ``merged_grid`` are :class:`Lazy` references (:data:`PIECES`), imported on first use."""

    name: str
    display_name: str
    description: str
    # a litelvlm.lvlm.family.GroundingPipeline subclass (heavy modules are named, not imported)
    pipeline: Lazy[type]
    presets: Mapping[str, str]
    architectures: tuple[str, ...]
    default_model: str
    paper_model: str
    input: str = "image"
    #: whether the family's official evaluation turns an image by its EXIF orientation tag when it reads it
    exif_transpose: bool = True
    #: the attention kernel of its official code under the official protocol (``--attn`` unset): ``eager``
    #: (LiteLVLM's GLaMM stack, VideoGLaMM's Phi-3) or ``sdpa`` (the kernel available everywhere that computes
    #: what the official ``flash_attention_2`` of the Qwen2.5-VL families computes)
    official_attn: str = "eager"
    #: its video path for ``eval-video`` (a :class:`litelvlm.video.runner.VideoEval`); None: none
    video_eval: Lazy[Any] | None = None    # a litelvlm.video.runner.VideoEval
    #: its cost description for the efficiency study; None: the study does not count it
    cost: Lazy[Any] | None = None    # a litelvlm.cost.FamilyCost
    #: the efficiency study's ``--arch`` names of the family -> the preset each builds (read before torch
    #: loads; the cost description's ``archs``)
    cost_archs: Mapping[str, str] = field(default_factory=dict)
    paper_preset: str | None = None
    #: the seed a preset's model string takes when it names none (default 0): ``<name>-random`` -> seed
    default_seeds: Mapping[str, int] = field(default_factory=dict)
    #: its referring-segmentation question templates (a list of ``{class_name}`` templates) that the
    #: CLIP studies' ``--text-template <family>`` wraps a sentence in; None: it has none
    questions: Lazy[Sequence[str]] | None = None
    #: its official multi-expression protocol's sampler (``(sentences, seed, image_id,
    #: max_sentences) -> sample`` with ``indices`` and ``turns``) that ``eval-grounding --protocol official``
    #: and the one-image studies use on a family holding several expressions per prompt; None: it has none
    official_sample: Lazy[Callable[..., Any]] | None = None
    #: its image protocol module when the family maps an external CLIP's scores onto a merged Qwen2.5-VL grid
    #: (its abilities' ``clip_side="mapped"``): ``resized_size(height, width)`` (the protocol's resize, whose
    #: merged grid it is) and ``question(expression)`` (its prompt's question), read by the reversal's
    #: ``--grid <family>`` and ``--space llm``; None: it has none
    merged_grid: Lazy[ModuleType] | None = None
    #: presets whose architecture exists with trained weights (a folder this project wrote for any other is
    #: random)
    released_presets: tuple[str, ...] = ()
    #: presets small enough to run fastest on one thread
    small_presets: tuple[str, ...] = ("tiny",)
    #: the resizes its processor offers for the LLM's image (``--image-resize``; the first is the official
    #: one), empty when its processor resizes nothing of its own
    image_resizes: tuple[str, ...] = ()
    #: its random presets can be built in memory with no checkpoint folder written
    #: (:func:`litelvlm.models.random_weights.no_write`, ``validate --no-write``)
    builds_in_memory: bool = False
    #: preset -> N, the visual tokens its model gives every input (per frame for a video), read before
    #: anything loads to refuse a budget above it; a preset absent: N depends on the input (checked later)
    num_visual: Mapping[str, int] = field(default_factory=dict)
    #: the hub ids of the family's released checkpoints (``--model ID`` downloads one, or names how to)
    hub_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ValueError(f"input must be one of {', '.join(INPUTS)}; got {self.input!r}")
        for piece in PIECES:
            object.__setattr__(self, piece, _lazy(getattr(self, piece)))
        object.__setattr__(self, "presets", MappingProxyType(dict(self.presets)))
        object.__setattr__(self, "default_seeds", MappingProxyType(dict(self.default_seeds)))
        object.__setattr__(self, "cost_archs", MappingProxyType(dict(self.cost_archs)))
        object.__setattr__(self, "num_visual", MappingProxyType(dict(self.num_visual)))

    @property
    def model_help(self) -> str:
        """How a ``--model`` help names this family's default and the paper's model."""
        return (f"default: {self.default_model}, random weights that run offline; the paper's model is "
                f"{self.paper_model}")

    @property
    def preset_strings(self) -> list[str]:
        """Every random model string of the family, as a help or an error lists them
        (``<name>-random[:SEED]``)."""
        return [f"{name}[:SEED]" for name in self.presets]

    def preset(self, model: str | ModelSpec) -> str | None:
        """The random preset ``model`` builds (a model string or a parsed one), None when it names none of
        this family's."""
        spec = ModelSpec.of(model)
        return self.presets.get(spec.name)

    def seed(self, model: str | ModelSpec) -> int:
        """The seed of a random model string: its ``:SEED``, else the preset's :attr:`default_seeds` entry,
        else 0."""
        spec = ModelSpec.of(model)
        return spec.random_seed(self.default_seeds.get(spec.name, 0))

    def fixed_num_visual(self, model: str | ModelSpec) -> int | None:
        """N of ``model`` when the card knows it before loading (a random preset of :attr:`num_visual`, or a
        released checkpoint's hub id: the paper preset's N); None otherwise."""
        spec = ModelSpec.of(model)
        preset = self.preset(spec)
        if preset is None and spec.folder in self.hub_ids:
            preset = self.paper_preset or (self.released_presets[0] if self.released_presets else None)
        return self.num_visual.get(preset) if preset is not None else None

    def is_small(self, model: str | ModelSpec) -> bool:
        """Whether ``model`` is one of the family's small random presets (fastest on one thread)."""
        return self.preset(model) in self.small_presets

    def random_preset(self, model: str | ModelSpec) -> str:
        """The preset ``model`` builds; a string that names none is an error listing the family's presets."""
        preset = self.preset(model)
        if preset is None:
            raise LiteLVLMError(f"model {str(getattr(model, 'text', model))!r} is no random "
                                f"{self.display_name} preset ({', '.join(self.preset_strings)})")
        return preset
