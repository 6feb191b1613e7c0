"""The family contract's shape (``litelvlm.lvlm.contract``, ``litelvlm.lvlm.family``): the few members every
family provides (abstract), what a family may override (defaults and hooks), what it declares (its name and
its abilities, one frozen object) and what no family overrides (final: ``ground`` and what it runs). Every
registered family, and every pipeline class of the package (the intermediate Qwen2.5-VL + SAM 2 class,
UniPixel's video path), is walked."""

from __future__ import annotations

import inspect
import sys

import pytest

from litelvlm.lvlm.abilities import Abilities
from litelvlm.lvlm.contract import FamilyContract
from litelvlm.lvlm.family import GroundingPipeline
from litelvlm.registry.families import family_names, get_family

#: what every family must provide (``abc.abstractmethod``)
ABSTRACT = {"language_model", "prepare_image", "with_sentences", "visual_tokens", "layout", "sequence_embeds",
            "seg_prompts", "decode_masks", "upscale_masks"}
#: what a family may override besides: defaults (from the LLM, the visual tokens, the image) and the hooks
#: ``ground_many`` calls (``run_input``, ``generated``, ``run_clip_stage``, ``run_llm_stage``,
#: ``decode_masks_many``)
OPTIONAL = {"device", "dtype", "hidden_size", "num_visual", "num_visual_tokens", "describe", "full_budget",
            "mask_shape", "keeps_everything", "visual_grid", "visual_window", "clip_selection_tokens",
            "clip_selection_rows", "tower_context", "forward_context", "lm_head", "stop_ids",
            "sample_metrics", "summarize_metrics", "run_input", "generated", "run_clip_stage",
            "run_llm_stage", "stage_modules", "encoder_modules", "decode_masks_many", "projector", "pixels"}
#: what a family declares as data: its registry name, its abilities and the type of its prepared input
DECLARED = {"family", "abilities", "prepared_type"}
#: what each pipeline holds of its own (set by its ``__init__``, or by a study: ``compiled``)
STATE = {"name", "numerics", "quantization", "layer_hooks", "seg_token_id", "max_new_tokens", "model", "clip",
         "compiled", "layer_dtype_auto"}
#: exactly what a family may override
OVERRIDABLE = ABSTRACT | OPTIONAL | DECLARED | STATE
#: what no family overrides (``typing.final``): ``ground``, ``ground_many`` and what they run (the run's
#: steps: :mod:`litelvlm.lvlm.batched`)
FINAL = {"spec", "method_error", "official_rule", "prepare", "seg_source", "final_hidden", "run_llm",
         "kept_positions", "ground", "ground_many", "context", "attention_rows", "clip_loaded"}
#: the class flags the abilities replaced: no family declares them any more
OLD_FLAGS = {"seg_reads", "family_positions", "offers_clip_side", "clip_mapped", "position_axes",
             "sentences_per_prompt", "backbone", "answers", "budget_unit", "own_metric"}


#: the contract's classes: what a family implements (the base) and what every family shares (final)
CLASSES = (FamilyContract, GroundingPipeline)


def _contract() -> dict[str, object]:
    return {n: m for klass in CLASSES for n, m in vars(klass).items()
            if not (n.startswith("__") and n.endswith("__")) and n not in ("_abc_impl",)}


def _annotations() -> set[str]:
    return {n for klass in CLASSES for n in klass.__annotations__}


def _is_final(member) -> bool:
    fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
    return bool(getattr(fn, "__final__", False))


def _final() -> set[str]:
    return {n for n, m in _contract().items() if _is_final(m)}


def _pipelines() -> list[type]:
    """Every registered family's pipeline and every pipeline class the package defines (loaded families'
    modules)."""
    # (UniPixel's video path: a pipeline class of its own)
    import litelvlm.unipixel.video_pipeline  # noqa: F401

    found = {get_family(name) for name in family_names()}
    todo = list(GroundingPipeline.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("litelvlm."):
            found.add(cls)
    return sorted(found, key=lambda c: c.__qualname__)


def overridden(cls: type) -> set[str]:
    """The contract's members that ``cls`` (or a class between it and the contract) defines again."""
    contract = set(_contract()) | _annotations()
    out = set()
    for klass in cls.__mro__[:cls.__mro__.index(GroundingPipeline)]:
        out |= contract & set(vars(klass))
    return out


def violations(cls: type) -> set[str]:
    """What ``cls`` overrides that the contract does not let a family override (the final members, or a member
    the lists above do not name)."""
    return overridden(cls) - OVERRIDABLE


def test_the_contract_is_exactly_its_parts():
    """Every member of the contract is abstract, optional, declared, state or final, and no two at once; the
    abstract ones are the ABC's; every member a family may not override is marked ``@final``."""
    members = set(_contract()) | _annotations()
    assert GroundingPipeline.__abstractmethods__ == frozenset(ABSTRACT)
    assert not FINAL & OVERRIDABLE
    assert {n for n in members if n.startswith("_")} <= FINAL
    assert members == OVERRIDABLE | FINAL, (f"unlisted: {sorted(members - OVERRIDABLE - FINAL)}; "
                                            f"listed but absent: {sorted((OVERRIDABLE | FINAL) - members)}")
    if sys.version_info >= (3, 11):  # typing.final marks what it decorates from Python 3.11 on
        assert _final() == FINAL
    with pytest.raises(TypeError, match="abstract"):
        GroundingPipeline()


def test_no_family_overrides_what_the_contract_marks_final():
    pipelines = _pipelines()
    names = {c.__name__ for c in pipelines}
    assert {"GlammPipeline", "UniPixelPipeline", "VideoGLaMMPipeline", "Sa2VAPipeline", "QwenSam2Pipeline",
            "UniPixelVideoPipeline"} <= names
    for cls in pipelines:
        assert not violations(cls), f"{cls.__qualname__} overrides {sorted(violations(cls))}"
        assert "ground" not in overridden(cls)
        assert isinstance(cls.abilities, Abilities), cls
        assert not OLD_FLAGS & {n for k in cls.__mro__
                                for n in vars(k)}, f"{cls.__qualname__} declares an old flag"
        if not inspect.isabstract(cls):
            own = cls.__mro__[:cls.__mro__.index(GroundingPipeline)]
            assert cls.family and set(ABSTRACT) <= {n for k in own for n in vars(k)}


def test_the_walk_sees_an_override_of_ground():
    """The check is not vacuous: a family redefining ``ground`` (or another final member) is caught."""
    from litelvlm.glamm import GlammPipeline

    class Overriding(GlammPipeline):
        def ground(self, prepared, method="none", budget=None, **options):
            return super().ground(prepared, method, budget, **options)

        def method_error(self, method):
            return None

    assert violations(Overriding) == {"ground", "method_error"}
    assert violations(GlammPipeline) == set()


def test_abilities_refusals_name_method_flags_or_methods():
    """An ability's refusal names a ``Method`` flag or a registered method; the refusal reaches
    ``method_error`` asked of the class (what the studies ask before any weights load)."""
    import dataclasses

    from litelvlm.method import Method
    from litelvlm.methods import method_names

    flags = {f.name for f in dataclasses.fields(Method) if f.type in ("bool", bool)}
    for cls in _pipelines():
        for key, why in cls.abilities.refuses.items():
            assert key in flags or key in method_names(), (cls, key)
            assert why
    from litelvlm.sa2va.video import video_method_error
    from litelvlm.unipixel.video_pipeline import UniPixelVideoPipeline

    video = get_family("videoglamm")
    assert "reads one image's CLIP trace" in video.method_error(video, "cdpruner")
    assert video.method_error(video, "fastv") is None
    assert "window scan" in UniPixelVideoPipeline.method_error(UniPixelVideoPipeline, "vscan")
    unipixel = get_family("unipixel")
    assert unipixel.method_error(unipixel, "vscan") is None                  # the image path runs it
    sa2va = get_family("sa2va")
    assert sa2va.method_error(sa2va, "hiprune") is None
    assert "vision tower over one image's grid" in video_method_error(sa2va, "hiprune")  # not on a video
    with pytest.raises(ValueError, match="budget_unit"):
        Abilities(budget_unit="token")
