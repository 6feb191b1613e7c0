"""Every pruning method, one module each in this package, and the registry that names them.

:data:`TABLE` maps a name to its :class:`Entry`: a typed reference to the :class:`~litelvlm.method.Method`
(:class:`~litelvlm.lazy.Lazy`: the module of this package and the attribute that declares it, imported
only when the method is asked for, so listing the names loads no torch), its one-line description and its
command-line options (:mod:`litelvlm.methods.options`, typed and light, so every command builds every method's
flags before torch loads). ``get_method(name)`` imports the method and gives it its name, description and
options. Whatever its stage (inside CLIP's vision tower, at CLIP's output, at the LLM input or inside the
LLM), a method is one module here; its variant for another backbone (its official Qwen2.5-VL code, or this
project's adaptation) is the module ``<name>_qwen`` beside it and one entry of :data:`VARIANTS`;
``get_method(name, backbone)`` returns it where it exists (a family's ``spec(name)`` asks with the family's
:attr:`~litelvlm.lvlm.family.GroundingPipeline.backbone`), and the method itself everywhere else.
``tests/project/test_typed_wiring.py`` imports every entry.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from typing import NamedTuple

from ..errors import LiteLVLMError
from ..lazy import Lazy
from ..method import Method, Option
from .options import (
    DIVPRUNE_RANDOM_DEEP_OPTIONS,
    FASTV_OPTIONS,
    LLM_ATTENTION_OPTIONS,
    RANDOM_DEEP_OPTIONS,
    V2DROP_OPTIONS,
)

#: the unpruned baseline (the one method with ``baseline=True``): every N visual tokens, raster order; the
#: studies form their ratios against it
BASELINE = "none"


class Entry(NamedTuple):
    """A registered method: where its :class:`~litelvlm.method.Method` is declared (a module of this package
    and its attribute, imported on first use), what it does (one line), and its command-line options (a
    variant's entry names none: the method's own apply)."""

    method: Lazy[Method]
    description: str
    options: tuple[Option, ...] = ()


#: name -> where its Method is declared, what it does, its options
TABLE: dict[str, Entry] = {
    BASELINE: Entry(Lazy("litelvlm.methods.none", "NONE"),
                    "no pruning: all N visual tokens (the unpruned baseline)"),
    "litelvlm": Entry(Lazy("litelvlm.methods.litelvlm", "LITELVLM"),
                      "LiteLVLM: lowest CLIP similarity to the text [EOS] + context tokens"),
    "litelvlm-ctx": Entry(Lazy("litelvlm.methods.litelvlm", "LITELVLM_CTX"),
                          "LiteLVLM‡ (context-heavy, this project's reading of the paper; not in the "
                          "official code): 50% of K to context tokens first"),
    "litelvlm-context": Entry(Lazy("litelvlm.methods.context_only", "LITELVLM_CONTEXT"),
                              "LiteLVLM's context ranking alone (‡ this project's ablation; not in the "
                              "official code): the K tokens of highest context score, no text"),
    "clip_topsim": Entry(Lazy("litelvlm.methods.topsim", "CLIP_TOPSIM"),
                         "highest CLIP similarity to the text [EOS] (not reversed) + context tokens"),
    "random": Entry(Lazy("litelvlm.methods.random_sel", "RANDOM"),
                    "K tokens drawn uniformly without replacement (seeded), raster order"),
    "random-deep": Entry(Lazy("litelvlm.methods.random_deep", "RANDOM_DEEP"),
                         "random deep pruning (this project's reading of the information-horizon paper; no "
                         "official code): K visual tokens drawn uniformly (seeded) remain from LLM layer L "
                         "(20 of 32), the layers before it see all N (kept tokens keep their RoPE "
                         "positions)",
                         options=RANDOM_DEEP_OPTIONS),
    "divprune+random-deep": Entry(Lazy("litelvlm.methods.divprune_random_deep", "DIVPRUNE_RANDOM_DEEP"),
                                  "DivPrune then random deep pruning (this project's reading of the "
                                  "information-horizon paper; no official code): DivPrune keeps 50% of N at "
                                  "the LLM input, K of them drawn uniformly (seeded) remain from LLM layer L "
                                  "(20 of 32)",
                                  options=DIVPRUNE_RANDOM_DEEP_OPTIONS),
    "downsample": Entry(Lazy("litelvlm.methods.downsample", "DOWNSAMPLE"),
                        "downsampling (this project's reading of VTC-Bench, which resizes the image): the "
                        "grid of visual tokens average-pooled to K at the LLM input, each pooled token at "
                        "its window's centre position"),
    "vispruner": Entry(Lazy("litelvlm.methods.vispruner", "VISPRUNER"),
                       "VisPruner: [CLS]-attention important tokens + diverse tokens"),
    "visionzip": Entry(Lazy("litelvlm.methods.visionzip", "VISIONZIP"),
                       "VisionZip: dominant [CLS]-attention tokens + merged contextual tokens"),
    "prumerge": Entry(Lazy("litelvlm.methods.prumerge", "PRUMERGE"),
                      "PruMerge: [CLS]-attention IQR outliers + key-similarity merge (adaptive K; fixed K: "
                      "top K-1)"),
    "prumerge+": Entry(Lazy("litelvlm.methods.prumerge", "PRUMERGE_PLUS"),
                       "PruMerge+: PruMerge + spatially uniform samples (adaptive K; fixed K: top 1/4 + "
                       "even samples)"),
    "tome": Entry(Lazy("litelvlm.methods.tome", "TOME"),
                  "ToMe: bipartite soft matching + size-weighted merging in the CLIP blocks"),
    "hiprune": Entry(Lazy("litelvlm.methods.hiprune", "HIPRUNE"),
                     "HiPrune: anchor tokens (object-layer attention) with their 4 neighbours, then "
                     "register tokens (feature-layer attention), raster order"),
    "flowcut": Entry(Lazy("litelvlm.methods.flowcut", "FLOWCUT"),
                     "FlowCut: inside the CLIP vision tower, prune by the information flow to [CLS] "
                     "(relation + semantic attention x value L1 norm, accumulated over blocks) on an "
                     "entropy-adaptive schedule, the tower finishing on the K kept patches"),
    "divprune": Entry(Lazy("litelvlm.methods.divprune", "DIVPRUNE"),
                      "DivPrune: greedy max-min cosine-diverse visual tokens, measured on the LLM input "
                      "embeddings (projector outputs), applied at the LLM input"),
    "cdpruner": Entry(Lazy("litelvlm.methods.cdpruner", "CDPRUNER"),
                      "CDPruner: greedy MAP of a conditional DPP (cosine of the LLM input embeddings "
                      "weighted by the CLIP text relevance), applied at the LLM input, raster order"),
    "ivc-prune": Entry(Lazy("litelvlm.methods.ivc_prune", "IVC_PRUNE"),
                       "IVC-Prune: from LLM layer 16 of 32, the implicit visual coordinate tokens (largest "
                       "mean RoPE cos / sin), then seeds and foreground by value similarity to the question "
                       "(kept tokens keep their RoPE positions; official K: official_budget)"),
    "fastv": Entry(Lazy("litelvlm.methods.fastv", "FASTV"),
                   "FastV: drop visual tokens by the last token's attention at LLM layer K-1 (kept tokens "
                   "keep their RoPE positions)",
                   options=FASTV_OPTIONS),
    "dart": Entry(Lazy("litelvlm.methods.dart", "DART"),
                  "DART: after LLM layer K-1, keep pivot tokens (largest key L1 norm) and the visual tokens "
                  "least similar to them (kept tokens keep their RoPE positions)"),
    "sparsevlm": Entry(Lazy("litelvlm.methods.sparsevlm", "SPARSEVLM"),
                       "SparseVLM (v1.5): text raters' attention drops visual tokens after LLM layers "
                       "2/6/15 with the official per-budget counts; 30% of the dropped recycled as DPC-KNN "
                       "cluster means; positions renumbered"),
    "v2drop": Entry(Lazy("litelvlm.methods.v2drop", "V2DROP"),
                    "V2Drop: before LLM layers 3/17/22 drop the visual tokens whose hidden state changed "
                    "least through the previous layer (L2 norm), keeping the official shares (0.5/0.5/0) but "
                    "at least K, K after the last drop; no attention weights; kept tokens keep their RoPE "
                    "positions",
                    options=V2DROP_OPTIONS),
    "vscan": Entry(Lazy("litelvlm.methods.vscan", "VSCAN"),
                   "VScan: global ([CLS] attention, feature block) and local (block 5, per 6x6 window) "
                   "scans with token merging at the LLM input, then the last token's attention keeps K/2 "
                   "after LLM layer 16 (K = the average over layers: 3K/2 tokens enter); positions "
                   "renumbered"),
    "llm-attention": Entry(Lazy("litelvlm.methods.llm_attention", "LLM_ATTENTION"),
                           "oracle: rank visual tokens by the attention they receive in the LLM (from the "
                           "last token, all text tokens or the [SEG]-predicting tokens, at one layer)",
                           options=LLM_ATTENTION_OPTIONS),
    "saliency": Entry(Lazy("litelvlm.methods.saliency", "SALIENCY"),
                      "oracle: rank visual tokens by captum gradient saliency of the predicted mask logits "
                      "w.r.t. the visual tokens (a full forward and backward of the unpruned model)"),
}

#: (name, backbone) -> where the variant's Method is declared, what it does on that backbone: the method on a
#: family whose backbone is not the one its table row describes (LLaVA-1.5's CLIP and Llama); each
#: description says whether it follows the method's official code for that backbone or is this project's
#: adaptation; the variant takes the method's options
_STAND_IN = ("this project's adaptation (no official Qwen2.5-VL code read): the attention each merged token "
             "receives in the tower's last full-attention block stands for the [CLS] attention, its keys "
             "averaged over each 2x2 merge unit for CLIP's keys")
#: the backbone of the variants below (``Abilities.backbone`` of the Qwen2.5-VL families)
_QWEN = "qwen2.5-vl"
VARIANTS: dict[tuple[str, str], Entry] = {
    ("ivc-prune", _QWEN): Entry(Lazy("litelvlm.methods.ivc_prune_qwen", "IVC_PRUNE_QWEN"),
                                "IVC-Prune, its official Qwen2.5-VL code: from LLM layer 16 of 28 (22 of "
                                "36), the implicit visual coordinate tokens (largest mean M-RoPE cos / sin "
                                "over the 3 axes), seeds, then value similarity to the question and seeds up "
                                "to K (kept tokens keep their 3-D positions; official K: N/2)"),
    ("visionzip", _QWEN): Entry(Lazy("litelvlm.methods.visionzip_qwen", "VISIONZIP"),
                                "VisionZip on Qwen2.5-VL's merged tokens, " + _STAND_IN + ": dominant tokens "
                                "by it + contextual tokens merged by the keys, at the LLM input"),
    ("vispruner", _QWEN): Entry(Lazy("litelvlm.methods.vispruner_qwen", "VISPRUNER"),
                                "VisPruner on Qwen2.5-VL's merged tokens, " + _STAND_IN + ": important "
                                "tokens by it + diverse tokens, at the LLM input"),
    ("prumerge", _QWEN): Entry(Lazy("litelvlm.methods.prumerge_qwen", "PRUMERGE"),
                               "PruMerge on Qwen2.5-VL's merged tokens, " + _STAND_IN + ": IQR outliers "
                               "(fixed K: top K-1) merged by key similarity + one extra token"),
    ("prumerge+", _QWEN): Entry(Lazy("litelvlm.methods.prumerge_qwen", "PRUMERGE_PLUS"),
                                "PruMerge+ on Qwen2.5-VL's merged tokens, " + _STAND_IN + ": PruMerge + "
                                "spatially uniform samples, merged + one extra token"),
    ("sparsevlm", _QWEN): Entry(Lazy("litelvlm.methods.sparsevlm_qwen", "SPARSEVLM_QWEN"),
                                "SparseVLM on Qwen2.5-VL, this project's adaptation (no official Qwen code): "
                                "the official stages and recycling, the pruned sequence renumbered 0..S'-1 "
                                "on all three M-RoPE axes (recycled tokens too)"),
    ("tome", _QWEN): Entry(Lazy("litelvlm.methods.tome_qwen", "TOME_QWEN"),
                           "ToMe on Qwen2.5-VL, this project's adaptation (no official Qwen code): bipartite "
                           "soft matching on the last vision block's keys per merged token, size-weighted "
                           "merging of the N merged tokens at the LLM input, rounds of up to half until K "
                           "remain"),
    ("vscan", _QWEN): Entry(Lazy("litelvlm.methods.vscan_qwen", "VSCAN_QWEN"),
                            "VScan's official Qwen2.5-VL code: local (first full-attention block, <= ceil "
                            "per 4x4 window) and global (last block) scans of the tower's attention with "
                            "token merging at the LLM input, then the last token's attention (no RoPE) keeps "
                            "int(0.67 V) after LLM layer 14 of 28; kept tokens keep their M-RoPE ids (K = "
                            "the average over layers)"),
    ("hiprune", _QWEN): Entry(Lazy("litelvlm.methods.hiprune_qwen", "HIPRUNE_QWEN"),
                              "HiPrune, its official Qwen2.5-VL code: anchors (object-layer 16 of 32 "
                              "attention of the vision tower) with their 4 neighbours, then registers (last "
                              "block) among the merged tokens; LLM order, original M-RoPE positions"),
    ("v2drop", _QWEN): Entry(Lazy("litelvlm.methods.v2drop_qwen", "V2DROP_QWEN"),
                             "V2Drop, its official Qwen2-VL code's schedule: before LLM layers 3/16/22 of 28 "
                             "(this project's adaptation: the same relative depth elsewhere) drop the "
                             "least-varying visual tokens, keeping 0.25/0.05/0 of them but at least K; kept "
                             "tokens keep their M-RoPE ids"),
    ("cdpruner", _QWEN): Entry(Lazy("litelvlm.methods.cdpruner_qwen", "CDPRUNER_QWEN"),
                               "CDPruner on Qwen2.5-VL (this project's adaptation): CDPruner's conditional "
                               "DPP over the merged tokens, relevance in the LLM's input space (cosine with "
                               "the mean instruction-token embedding, as OpenVINO's Qwen port scores it), "
                               "raster order"),
}

_LOADED: dict[tuple[str, str], Method] = {}


def is_baseline(name: str) -> bool:
    """Whether ``name`` is the unpruned baseline's (read from the table alone, before any method module loads;
    a loaded method answers ``Method.baseline``)."""
    return name == BASELINE


def method_names() -> list[str]:
    """Every registered name, sorted (imports nothing)."""
    return sorted(TABLE)


def describe(name: str) -> str:
    """The one-line description of ``name`` (imports nothing)."""
    return TABLE[_known(name)].description


def _known(name: str) -> str:
    if name not in TABLE:
        close = difflib.get_close_matches(name, TABLE, n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise LiteLVLMError(f"unknown method {name!r}{hint}; known methods: {', '.join(method_names())}")
    return name


def get_method(name: str, backbone: str | None = None) -> Method:
    """The :class:`Method` registered as ``name`` (its module imported on first use); with ``backbone``, its
    variant for that backbone where :data:`VARIANTS` has one. An unknown name is an error that suggests the
    closest names and lists the known ones."""
    key = (_known(name), backbone or "")
    if key[1] and key not in VARIANTS:
        key = (name, "")
    if key not in _LOADED:
        entry = VARIANTS[key] if key[1] else TABLE[name]
        method = entry.method.get()
        if not isinstance(method, Method):
            raise TypeError(f"{entry.method} is not a litelvlm.method.Method")
        _LOADED[key] = replace(method, name=name, description=entry.description, backbone=key[1],
                               options=TABLE[name].options)
    return _LOADED[key]


def method_option_list() -> list[Option]:
    """Every method option of the registry (imports nothing), one per command-line ``dest``, in table
    order."""
    out: dict[str, Option] = {}
    for entry in TABLE.values():
        for opt in entry.options:
            out.setdefault(opt.dest, opt)
    return list(out.values())


def method_options(args, methods: list[str], backbone: str | None = None) -> dict[str, dict]:
    """{method: its keyword options from ``args``} for every method of ``methods`` (as it runs on
    ``backbone``): what a study passes to ``ground(..., **options)`` or ``Method.schedule`` without naming any
    option."""
    return {m: get_method(m, backbone).options_from(args) for m in methods}


def variant_names(backbone: str) -> list[str]:
    """The methods with a variant of their own for ``backbone`` (imports nothing), sorted."""
    return sorted(name for name, bb in VARIANTS if bb == backbone)


def ranking_methods() -> list[str]:
    """The methods that keep tokens by one score per visual token (``Method.ranks``; imports every module),
    sorted."""
    return [n for n in method_names() if get_method(n).ranks]


def mapped_methods() -> list[str]:
    """The CLIP-side methods that run on a family mapping CLIP's scores onto its own tokens
    (``Method.scores_only``; imports every module), sorted."""
    return [n for n in method_names() if get_method(n).scores_only]


def available_methods(kind: str | None = None) -> list[str]:
    """Registered names (optionally only those of ``kind``, ``clip`` or ``llm``: imports their modules),
    sorted."""
    if kind is None:
        return method_names()
    if kind not in ("clip", "llm"):
        raise LiteLVLMError(f"kind must be clip or llm; got {kind!r}")
    return [n for n in method_names() if get_method(n).acts_on_clip is (kind == "clip")]
