"""A family card refers to its pieces (pipeline class, video path, cost description, question templates,
official sampler, merged-grid protocol) by one typed lazy reference, :class:`litelvlm.lazy.Lazy` (which the
cards import from :mod:`litelvlm.models.family_card`), imported in one function,
:func:`litelvlm.lazy.resolve`: no other code turns a card's ``"module:attribute"`` string into an import."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from litelvlm.models.family_card import PIECES, FamilyCard, Lazy
from litelvlm.registry.families import REGISTERED, cards

ROOT = Path(__file__).resolve().parents[3]
#: every ``import_module`` call of the library and the studies, (file, function): the card pieces' one place,
#: and the registries that are no card's (GLaMM's lazy exports; the methods' entries and the subcommands are
#: Lazy references)
IMPORTS = {("litelvlm/lazy.py", "resolve"): "card pieces, registered cards, methods, subcommands",
           ("litelvlm/lazy.py", "__getattr__"): "a package's lazy exports (lazy_exports: GLaMM's, "
                                                "Qwen2.5-VL's, UniPixel's, the explorer's, the video study)",
           ("analysis/common/runs/command.py", "run"): "a study's heavy function, after its checks",
           ("litelvlm/machine/optional.py", "optional_import"): "an optional package (an extra), by name"}


def _import_module_calls() -> set[tuple[str, str]]:
    """(file, innermost function) of every ``import_module`` call in ``litelvlm/`` and ``analysis/``."""
    found = set()

    class Calls(ast.NodeVisitor):
        def __init__(self, rel: str) -> None:
            self.rel, self.where = rel, ["<module>"]

        def visit_FunctionDef(self, node: ast.AST) -> None:
            self.where.append(node.name)
            self.generic_visit(node)
            self.where.pop()

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Call(self, node: ast.Call) -> None:
            if getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
                found.add((self.rel, self.where[-1]))
            self.generic_visit(node)

    for path in sorted([*(ROOT / "litelvlm").rglob("*.py"), *(ROOT / "analysis").rglob("*.py")]):
        if "import_module" in (text := path.read_text(encoding="utf-8")):
            Calls(path.relative_to(ROOT).as_posix()).visit(ast.parse(text))
    return found


def test_one_function_imports_a_cards_pieces():
    calls = _import_module_calls()
    assert calls <= set(IMPORTS), sorted(calls - set(IMPORTS))
    assert ("litelvlm/lazy.py", "resolve") in calls


def test_every_card_piece_is_a_lazy_reference():
    for card in cards():
        for piece in PIECES:
            value = getattr(card, piece)
            assert value is None or isinstance(value, Lazy), (card.name, piece, value)
        assert isinstance(card.pipeline, Lazy)
    old = FamilyCard(name="x", display_name="X", description="", pipeline="pkg.mod:Cls", presets={},
                     architectures=(), default_model="x-random", paper_model="", merged_grid="pkg.proto")
    # a card written as text
    assert (old.pipeline, old.merged_grid) == (Lazy("pkg.mod", "Cls"), Lazy("pkg.proto"))
    assert str(old.pipeline) == "pkg.mod:Cls" and str(old.merged_grid) == "pkg.proto"


def test_the_public_readers_import_pieces_through_resolve(monkeypatch):
    """Every reader of a card's pieces (the pipeline class, the video path, the cost description, the
    questions, the official sampler, the merged-grid protocol) imports them through
    :func:`litelvlm.lazy.resolve` alone."""
    from analysis.common.grounding.grounding_runs import official_turns
    from analysis.common.measures.clip_reversal import family_questions
    from analysis.common.measures.merged_grid import grid_protocol
    from analysis.video.figure_set import video_eval_note
    from litelvlm.cost import family_cost
    from litelvlm.registry.families import card_of, get_family, video_eval

    targets = {p.module for c in cards() for p in (getattr(c, n) for n in PIECES) if p is not None}
    seen: list[tuple[str, str]] = []
    real = importlib.import_module

    def recording(name, package=None):
        if name in targets:
            caller = sys._getframe(1).f_code
            seen.append((Path(caller.co_filename).name, caller.co_name))
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", recording)
    family_questions.cache_clear()
    for card in cards():
        get_family(card.name), family_cost(card), video_eval_note(card)
        if card.video_eval is not None:
            video_eval(card.default_model)
        if card.questions is not None:
            assert family_questions(card.name)
        if card.merged_grid is not None:
            assert grid_protocol(card.name).resized_size
        if card.official_sample is not None:
            records = [SimpleNamespace(order=i, sentence=s) for i, s in enumerate(["a", "b"])]
            assert official_turns(SimpleNamespace(family=card.name), records, 0, 9, 3)[0]
    assert seen and set(seen) == {("lazy.py", "resolve")}, seen
    assert card_of(cards()[0].default_model) is cards()[0]
    assert len(REGISTERED) == len(cards())


@pytest.mark.parametrize("piece", PIECES)
def test_each_piece_is_declared_by_some_card(piece):
    assert any(getattr(c, piece) is not None for c in cards()), piece
