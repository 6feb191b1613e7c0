"""Every pruning method, one module each in this package, and the registry that names them.

A method's module declares everything about it in one ``Method(...)``: where it acts, how it selects, its
name, its one-line description and its command-line options (``name=``, ``description=``, ``options=``); a
variant for another backbone (its official Qwen2.5-VL code, or this project's adaptation) is the module
``<name>_qwen`` beside it, declaring the same name with ``backbone=``. :data:`TABLE` and :data:`VARIANTS` are
read from those declarations without importing the modules (:mod:`litelvlm.methods.declarations`), so listing
the names and building every method's flags loads no torch; ``get_method(name)`` imports the method on
first use, and ``get_method(name, backbone)`` returns its variant where one exists (a family's
``spec(name)`` asks with the family's :attr:`~litelvlm.lvlm.family.GroundingPipeline.backbone`), the method
itself everywhere else.
``tests/project/test_typed_wiring.py`` imports every entry.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from typing import NamedTuple

from ..errors import LiteLVLMError
from ..lazy import Lazy
from ..method import Method, Option
from .declarations import Declaration, read_declarations

#: the unpruned baseline (the one method with ``baseline=True``): every N visual tokens, raster order; the
#: studies form their ratios against it
BASELINE = "none"


class Entry(NamedTuple):
    """A registered method: where its :class:`~litelvlm.method.Method` is declared (a module of this package
    and its attribute, imported on first use), what it does (one line), its command-line options (a variant
    takes its method's) and its stage's name."""

    method: Lazy[Method]
    description: str
    options: tuple[Option, ...] = ()
    stage: str = ""


def _entry(d: Declaration) -> Entry:
    return Entry(Lazy(d.module, d.attribute), d.description, d.options, d.stage)


def _table() -> tuple[dict[str, Entry], dict[tuple[str, str], Entry]]:
    table, variants = {}, {}
    for d in read_declarations():
        key = (d.name, d.backbone)
        if (d.name in table if not d.backbone else key in variants):
            where = f" on {d.backbone}" if d.backbone else ""
            raise LiteLVLMError(f"method {d.name!r}{where} is declared twice (the second in {d.module})")
        if d.backbone:
            variants[key] = _entry(d)
        else:
            table[d.name] = _entry(d)
    for (name, backbone), e in variants.items():
        if name not in table:
            raise LiteLVLMError(f"{e.method.module} declares a {backbone} variant of {name!r}, which no "
                                "module declares")
        variants[name, backbone] = e._replace(options=table[name].options)
    return dict(sorted(table.items(), key=lambda kv: (kv[0] != BASELINE, kv[0]))), variants


#: ``TABLE``: name -> where its Method is declared, what it does, its options, its stage (read from the
#: declarations). ``VARIANTS``: (name, backbone) -> the variant's entry: the method on a family whose backbone
#: is not the one its own declaration describes (LLaVA-1.5's CLIP and Llama); each description says whether it
#: follows the method's official code for that backbone or is this project's adaptation; the variant takes the
#: method's options
TABLE, VARIANTS = _table()

#: The paper's comparison on RefCOCO/+/g: LiteLVLM and 8 published pruning methods. Which 8 the paper's table
#: holds is this project's reading of the paper (no released file lists them): ``litelvlm plan``'s default
#: methods, and the first colours of the figures' style grid.
PAPER_COMPARISON: tuple[str, ...] = ("litelvlm", "fastv", "sparsevlm", "prumerge+", "visionzip", "vispruner",
                                     "divprune", "cdpruner", "dart")

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
        # the entry names what it loads, as its module declares (tests/litelvlm/test_methods_package.py)
        _LOADED[key] = replace(method, name=name, description=entry.description, backbone=key[1],
                               options=entry.options)
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
    """Registered names (optionally only those of ``kind``, ``clip`` or ``llm``, read from their declared
    stage: imports nothing), sorted."""
    if kind is None:
        return method_names()
    if kind not in ("clip", "llm"):
        raise LiteLVLMError(f"kind must be clip or llm; got {kind!r}")
    return [n for n in method_names() if (TABLE[n].stage == "clip") is (kind == "clip")]
