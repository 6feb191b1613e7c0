"""``ground_many``: several prompts through the LLM in one padded forward give ``ground``'s masks, each input
pruned by its own selection (K, N and the sequence length differing per input), on GLaMM, UniPixel and Sa2VA;
the runs that cannot share a forward are named and run one by one. ``ground`` is ``ground_many`` of one prompt
(one implementation, :mod:`litelvlm.lvlm.batched`): each step of a run written once, the run's state one typed
record, every hook a family may supply declared on the contract, and the callers naming one way in."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.batched import batch_error
from litelvlm.lvlm.family import GroundingPipeline
from tests.fixtures.images import batch_prompts

SENTENCES = [["the red thing on the left"], ["a dog"], ["the big cat near the window"]]


def _same_as_one_by_one(pipe, preps, method, budget):
    with torch.no_grad():
        one = [pipe.ground(p, method, budget) for p in preps]
    with torch.no_grad():
        batch = pipe.ground_many(preps, method, budget)
    assert len(batch) == len(one)
    for o, b in zip(one, batch, strict=True):
        assert b.masks.shape == o.masks.shape
        assert torch.equal(b.masks, o.masks)                          # identical masks in float32
        torch.testing.assert_close(b.mask_logits, o.mask_logits, rtol=1e-4, atol=1e-4)
        assert torch.equal(b.kept_indices, o.kept_indices)
        assert (b.seq_len, b.budget, b.prune_layer, b.position_rule) == (o.seq_len, o.budget, o.prune_layer,
                                                                          o.position_rule)
        assert torch.equal(b.seg_positions.cpu(), o.seg_positions.cpu())
    assert torch.cat([o.mask_logits.flatten() for o in one]).std() > 0   # the logits compared are no constant
    return one


@pytest.fixture(scope="module")
def glamm_preps(tiny_glamm):
    # GLaMM's official prompt holds several expressions: the third prompt has two [SEG]s, the sequences differ
    return batch_prompts(tiny_glamm, [SENTENCES[0], SENTENCES[1], [SENTENCES[2][0], "a man"]])


# the default suite compares GLaMM's batched rows in tests/analysis/test_grounding_batch_size.py
@pytest.mark.slow
@pytest.mark.parametrize("method", ["litelvlm", "divprune"])
def test_glamm_batch_equals_one_by_one(tiny_glamm, glamm_preps, method):
    one = _same_as_one_by_one(tiny_glamm, glamm_preps, method, 8)
    assert len({o.seq_len for o in one}) == 3                           # padded: three sequence lengths
    assert one[2].masks.shape[0] == 2
    masks = torch.cat([o.masks.flatten() for o in one])
    # the masks compared hold pixels both ways
    assert masks.any() and not masks.all()


@pytest.mark.slow
@pytest.mark.parametrize("method,budget", [("none", None), ("random", 8), ("cdpruner", 16), ("visionzip", 16),
                                           ("litelvlm", 64)])
def test_glamm_batch_equals_one_by_one_more_methods(tiny_glamm, glamm_preps, method, budget):
    _same_as_one_by_one(tiny_glamm, glamm_preps, method, budget)


@pytest.mark.slow
def test_unipixel_batch_equals_one_by_one_with_n_per_image(tiny_unipixel_pipe):
    preps = batch_prompts(tiny_unipixel_pipe, SENTENCES)
    assert len({tiny_unipixel_pipe.num_visual(p) for p in preps}) > 1  # N differs per image
    _same_as_one_by_one(tiny_unipixel_pipe, preps, "litelvlm", 8)


@pytest.mark.slow
@pytest.mark.parametrize("method,budget", [("none", None), ("divprune", 8), ("hiprune", 8), ("random", 4)])
def test_unipixel_batch_equals_one_by_one_more_methods(tiny_unipixel_pipe, method, budget):
    _same_as_one_by_one(tiny_unipixel_pipe, batch_prompts(tiny_unipixel_pipe, SENTENCES), method, budget)


@pytest.fixture(scope="module")
def tiny_sa2va_pipe():
    from litelvlm.sa2va.pipeline import Sa2VAPipeline

    return Sa2VAPipeline.from_model_string("sa2va-tiny-random:0")


@pytest.fixture(scope="module")
def sa2va_preps(tiny_sa2va_pipe):
    return batch_prompts(tiny_sa2va_pipe, SENTENCES)


def test_sa2va_batch_equals_one_by_one(tiny_sa2va_pipe, sa2va_preps):
    _same_as_one_by_one(tiny_sa2va_pipe, sa2va_preps, "divprune", 8)


@pytest.mark.slow
@pytest.mark.parametrize("method,budget", [("none", None), ("litelvlm", 8), ("cdpruner", 4)])
def test_sa2va_batch_equals_one_by_one_more_methods(tiny_sa2va_pipe, sa2va_preps, method, budget):
    _same_as_one_by_one(tiny_sa2va_pipe, sa2va_preps, method, budget)


def test_methods_pruning_inside_the_llm_and_oracles_run_one_by_one(tiny_sa2va_pipe, sa2va_preps):
    pipe = tiny_sa2va_pipe
    assert batch_error(pipe, "litelvlm") is None and batch_error(pipe, "none") is None
    assert "inside the LLM" in batch_error(pipe, "fastv")
    assert "inside the LLM" in batch_error(pipe, "sparsevlm")
    assert "oracle" in batch_error(pipe, "llm-attention")
    assert "decodes" in batch_error(pipe, "litelvlm", "generate")
    with pytest.raises(LiteLVLMError, match=r"flowcut reads the \[CLS\] token's attention in the vision"):
        pipe.ground_many([None], "flowcut", 8)   # the family's refusal, before any input is read
    assert pipe.ground_many([], "litelvlm", 8) == []
    # a method that cannot share a forward: ground_many runs each prompt as ground does
    preps = sa2va_preps[:2]
    with torch.no_grad():
        one = [pipe.ground(p, "fastv", 8, layer=1) for p in preps]
        many = pipe.ground_many(preps, "fastv", 8, layer=1)
    for o, m in zip(one, many, strict=True):
        assert torch.equal(o.mask_logits, m.mask_logits) and (o.seq_len, o.prune_layer) == (m.seq_len, 1)


def _fake_lm(attn: str, layer_weights: int = 16, device: str = "cpu"):
    from types import SimpleNamespace

    config = SimpleNamespace(_attn_implementation=attn, num_attention_heads=4)
    layer = torch.nn.Linear(layer_weights, 1, bias=False, device="meta" if device != "cpu" else "cpu")
    return SimpleNamespace(config=config, dtype=torch.float32, layers=[layer])


def test_sub_batches_keep_each_forward_within_the_budget_and_cover_the_batch():
    from litelvlm.lvlm.batched import cache_bytes, sub_batches
    from litelvlm.machine.memory import eager_attention_bytes

    lm = _fake_lm("eager")
    lengths = [50, 300, 40, 41, 290, 10, 7]

    def need(chunk):
        return eager_attention_bytes(len(chunk), 4, max(chunk), max(chunk), torch.float32)

    budget = need([300, 300])
    parts = sub_batches(lm, lengths, budget)
    # consecutive, all
    assert [i for p in parts for i in range(len(lengths))[p]] == list(range(len(lengths)))
    assert len(parts) > 1 and any(p.stop - p.start > 1 for p in parts)
    for p, nxt in zip(parts, [*parts[1:], None], strict=True):
        assert p.stop - p.start == 1 or need(lengths[p]) <= budget
        # greedy: the next sequence would not have fitted
        if nxt is not None:
            assert need(lengths[p.start:nxt.start + 1]) > budget
    assert [p.stop - p.start for p in sub_batches(lm, lengths, 1)] == [1] * len(lengths)   # at least one each
    assert sub_batches(lm, lengths, None) == [slice(0, len(lengths))]
    # a CPU's eager kernel
    assert sub_batches(lm, lengths, "auto") == sub_batches(lm, lengths, cache_bytes())
    assert sub_batches(_fake_lm("sdpa"), lengths, 1) == [slice(0, len(lengths))]           # no S x S scores
    whole = [slice(0, len(lengths))]
    assert sub_batches(_fake_lm("eager", device="meta"), lengths) == whole                # not a CPU
    # a layer's weights past it
    big = _fake_lm("eager", layer_weights=cache_bytes() // 4 + 1)
    assert sub_batches(big, lengths) == whole and sub_batches(big, lengths, budget) == parts
    assert cache_bytes() >= 2**20


def test_glamm_decoder_over_several_images_equals_one_call_per_image(tiny_glamm, glamm_preps):
    pipe = tiny_glamm
    gen = torch.Generator().manual_seed(0)
    c = pipe.model.arch.prompt_dim
    prompts = [torch.randn(n, c, generator=gen) for n in (1, 3, 2)]   # odd prompt counts per image
    with torch.no_grad():
        one = [pipe.decode_masks(p, q) for p, q in zip(glamm_preps, prompts, strict=True)]
        many = pipe.decode_masks_many(glamm_preps, prompts)
    assert [m.shape for m in many] == [o.shape for o in one]
    for o, m in zip(one, many, strict=True):
        torch.testing.assert_close(m, o, rtol=1e-5, atol=1e-5)
        assert torch.equal(m > 0, o > 0)
    assert torch.cat([o.flatten() for o in one]).std() > 0


def test_glamm_sub_batches_not_dividing_the_prompts_equal_one_by_one(tiny_glamm, glamm_preps):
    from litelvlm.lvlm.batched import sub_batches

    # 5 prompts
    preps = [*glamm_preps, *batch_prompts(tiny_glamm, [["a cup"], ["the left one"], ["two birds"]])[:2]]
    with torch.no_grad():
        one = [tiny_glamm.ground(p, "litelvlm", 8) for p in preps]
        lengths = [o.seq_len for o in one]
        budget = 2 * max(lengths) ** 2 * 4 * 4 * 3                  # about two sequences' eager scores
        assert len(sub_batches(tiny_glamm.language_model, lengths, budget)) > 1
        for kw in ({"sub_batch_bytes": budget}, {"sub_batch_bytes": None}):
            batch = tiny_glamm.ground_many(preps[:3], "litelvlm", 8, **kw) + \
                tiny_glamm.ground_many(preps[3:], "litelvlm", 8, **kw)   # B = 3 over 5 prompts
            for o, b in zip(one, batch, strict=True):
                assert torch.equal(b.masks, o.masks) and b.seq_len == o.seq_len
                torch.testing.assert_close(b.mask_logits, o.mask_logits, rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(b.seg_hidden, o.seg_hidden, rtol=1e-5, atol=1e-5)


# -- one implementation: ``ground`` is ``ground_many`` of one prompt -----------------------------------------
ROOT = Path(__file__).resolve().parents[3]
LVLM = ROOT / "litelvlm" / "lvlm"
#: the modules that ground several prompts at once (``eval-grounding`` / ``eval-video --batch-size``)
CALLERS = [ROOT / "analysis" / "common" / "grounding" / "grounding_scoring.py",
           ROOT / "litelvlm" / "video" / "pipeline_runner.py",
           ROOT / "litelvlm" / "videoglamm" / "video_runner.py"]


def _trees(paths) -> dict[str, ast.Module]:
    return {p.name: ast.parse(p.read_text()) for p in paths}


def _called(node: ast.AST) -> list[str]:
    """The names every call under ``node`` calls (``f(...)``: f; ``x.f(...)``: f)."""
    calls = [n.func for n in ast.walk(node) if isinstance(n, ast.Call)]
    return [f.id if isinstance(f, ast.Name) else f.attr for f in calls
            if isinstance(f, ast.Name | ast.Attribute)]


def test_ground_is_ground_many_of_one_prompt_by_construction():
    """``ground``'s body calls ``ground_many`` with a one-element list and nothing else, and takes its first
    output: the two cannot differ."""
    tree = ast.parse((LVLM / "family.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "GroundingPipeline")
    body = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    ground = body["ground"]
    assert _called(ground) == ["ground_many"]
    call = next(n for n in ast.walk(ground) if isinstance(n, ast.Call))
    assert isinstance(call.args[0], ast.List) and len(call.args[0].elts) == 1
    assert any(isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and n.slice.value == 0
               for n in ast.walk(ground))
    assert "ground_many" in body and getattr(GroundingPipeline.ground_many, "__final__", True)


def test_each_step_of_a_run_is_written_once():
    """In the family contract's package, the budget is counted, the family's input hook run, the position rule
    resolved, the method's stage stepped and a ``GroundingOutput`` assembled at one place each (no second
    ``ground`` under other names)."""
    calls = [c for tree in _trees(sorted(LVLM.glob("*.py"))).values() for c in _called(tree)]
    budget_counts = sum(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "of"
                        and isinstance(n.func.value, ast.Name) and n.func.value.id == "Budget"
                        for tree in _trees(sorted(LVLM.glob("*.py"))).values() for n in ast.walk(tree))
    assert budget_counts == 1
    for step in ("run_input", "position_error", "stage_inputs", "GroundingOutput"):
        assert calls.count(step) == 1, (step, calls.count(step))
    defined = {n.name for tree in _trees(sorted(LVLM.glob("*.py"))).values() for n in ast.walk(tree)
               if isinstance(n, ast.FunctionDef)}
    assert not {"ground_batch", "_position_rule", "_run", "_masks"} & defined


def test_a_runs_state_is_a_typed_record():
    """The state a run carries from step to step is one dataclass
    (:class:`~litelvlm.lvlm.sequence.GroundingRun`), not dicts keyed by strings."""
    from litelvlm.lvlm.sequence import GroundingRun

    assert dataclasses.is_dataclass(GroundingRun)
    fields = {f.name for f in dataclasses.fields(GroundingRun)}
    assert {"prepared", "budget", "selection", "seg_hidden"} <= fields
    for name, tree in _trees([LVLM / "batched.py", LVLM / "family.py", LVLM / "generate.py"]).items():
        keyed = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Subscript)
                 and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str)]
        assert not keyed, f"{name}: string-keyed state at lines {keyed}"


def _hook_names() -> set[str]:
    """Every function any family's pipeline class defines (the contract's included)."""
    from litelvlm.registry.families import family_names, get_family

    classes, todo = set(), [GroundingPipeline, *(get_family(name) for name in family_names())]
    while todo:
        cls = todo.pop()
        classes.add(cls)
        todo += [c for c in cls.__subclasses__() if c not in classes]
    return {n for cls in classes for n, v in vars(cls).items() if callable(v) and not n.startswith("__")}


def test_no_hook_is_looked_up_by_name():
    """No ``getattr`` / ``hasattr`` of a pipeline's function by its name in the contract's package and the
    callers: every hook a family may supply is declared on the contract with its default and called as
    such."""
    hooks = _hook_names()
    assert {"decode_masks", "decode_masks_many", "run_input", "generated"} <= hooks
    found = []
    for name, tree in _trees([*sorted(LVLM.glob("*.py")), *CALLERS]).items():
        for n in ast.walk(tree):
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                    and n.func.id in ("getattr", "hasattr") and len(n.args) > 1
                    and isinstance(n.args[1], ast.Constant) and n.args[1].value in hooks):
                found.append(f"{name}:{n.lineno} {n.args[1].value}")
    assert not found


def test_callers_name_one_way_in():
    """The studies and the video runners ground several prompts through ``ground_many`` alone: no other
    batched path is named, and no function picks between ``ground`` and ``ground_many``."""
    for name, tree in _trees(CALLERS).items():
        assert "ground_many" in _called(tree), name
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert "ground_batch" not in names, name
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            assert not {"ground", "ground_many"} <= set(_called(fn)), f"{name}: {fn.name} picks a path"
    for folder in ("litelvlm", "analysis", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            assert "ground_batch" not in path.read_text(), path


def test_decode_masks_many_defaults_to_one_call_per_input(tiny_sa2va_pipe, sa2va_preps):
    """The contract declares ``decode_masks_many``; its default is ``decode_masks`` per input (Sa2VA's), and
    GLaMM keeps its one-call override (compared with the loop above)."""
    from litelvlm.glamm import GlammPipeline

    pipe = tiny_sa2va_pipe
    assert type(pipe).decode_masks_many is GroundingPipeline.decode_masks_many
    assert GlammPipeline.decode_masks_many is not GroundingPipeline.decode_masks_many
    preps = sa2va_preps[:2]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        prompts = [pipe.seg_prompts(torch.randn(n, pipe.hidden_size, generator=gen)) for n in (1, 2)]
        many = pipe.decode_masks_many(preps, prompts)
        loop = [pipe.decode_masks(p, q) for p, q in zip(preps, prompts, strict=True)]
    assert len(many) == 2 and all(torch.equal(m, o) for m, o in zip(many, loop, strict=True))
    assert [m.shape[0] for m in many] == [1, 2] and torch.cat([m.flatten() for m in many]).std() > 0


def test_ground_equals_ground_many_of_one_on_sa2va(tiny_sa2va_pipe, sa2va_preps):
    pipe, prep = tiny_sa2va_pipe, sa2va_preps[0]
    with torch.no_grad():
        one, (many,) = pipe.ground(prep, "litelvlm", 8), pipe.ground_many([prep], "litelvlm", 8)
    assert torch.equal(one.mask_logits, many.mask_logits) and torch.equal(one.kept_indices, many.kept_indices)
    assert (one.seq_len, one.budget, one.position_rule) == (many.seq_len, many.budget, many.position_rule)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny-random:0", "sa2va-tiny-random:0", "unipixel-tiny-random:0",
                                   "videoglamm-tiny-random:0"])
def test_ground_equals_ground_many_of_one_for_every_family(model):
    """Every family's tiny preset, a few methods (the baseline, a CLIP-side one, one pruning inside the LLM):
    ``ground`` and ``ground_many`` of that one prompt give the same output."""
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(model)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    given = [image] * 2 if model.startswith("videoglamm") else Image.fromarray(image)
    prep = pipe.with_sentences(pipe.prepare_image(given, seed=0), ["a dog"])
    with torch.no_grad():
        for method, budget in (("none", None), ("litelvlm", 16), ("fastv", 16)):
            one, (many,) = pipe.ground(prep, method, budget), pipe.ground_many([prep], method, budget)
            assert torch.equal(one.mask_logits, many.mask_logits), (model, method)
            assert torch.equal(one.kept_indices, many.kept_indices) and one.seq_len == many.seq_len
