"""The efficiency study across families: each family's cost description (its card's ``cost``), reached only
through the registry, and the fourth family (Sa2VA) counted and timed through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

from analysis.efficiency.arch import arch_names, arch_of_model, get_arch
from litelvlm.cli import main
from litelvlm.cost import CostArch, FamilyCost, cost_of_arch, family_cost
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method, method_names
from litelvlm.registry.families import cards, get_family

ROOT = Path(__file__).resolve().parents[2]


def test_every_family_card_points_at_its_cost_description():
    for card in cards():
        cost = family_cost(card)
        assert isinstance(cost, FamilyCost), card.name
        assert cost.family == card.name and cost.archs, card.name
        assert set(cost.full_size) <= set(cost.archs)
        for preset in card.presets.values():  # every random preset: counted under one arch, or declared not
            counted = cost.arch_of_preset(preset) in cost.archs
            assert counted != (preset in cost.uncounted), (card.name, preset)
        assert all(why for why in cost.uncounted.values())
    names = arch_names()
    assert len(names) == len(set(names)), "an --arch name belongs to one family"
    assert cost_of_arch("tiny").family == "glamm" and cost_of_arch("sa2va-tiny").family == "sa2va"
    with pytest.raises(LiteLVLMError, match="unknown --arch 'nope'; choose one of .*sa2va-tiny"):
        cost_of_arch("nope")


@pytest.mark.parametrize("family", [card.name for card in cards()])
def test_a_method_the_family_refuses_is_refused_in_the_familys_words(family):
    """``efficiency`` refuses a method the family cannot run with the family's own reason (the words
    ``eval-grounding``, ``eval-video`` and ``validate`` print); a family whose count offers fewer methods
    than it runs (VideoGLaMM's per-frame rows) says so in words true of the method's stage."""
    cost, cls = family_cost(next(c for c in cards() if c.name == family)), get_family(family)
    for method in method_names():
        own = cls.method_error(cls.__new__(cls), method)
        errors = cost.method_errors([method])
        if own is not None:
            assert errors == [own], (family, method)
        elif errors:  # the family runs it, the count does not: said so
            assert f"eval-video runs {method}" in errors[0], (family, method)
        for why in errors:
            stage = get_method(method).stage.name
            assert f"stage {stage!r}" in why or own is not None, (family, method, why)
            if stage == "vision-tower":
                assert "LLM" not in why, (family, method, why)


def test_the_study_reaches_a_family_only_through_the_registry():
    """No module of ``analysis/efficiency`` imports a family's package (``litelvlm.<family>``)."""
    families = {card.name for card in cards()}
    for path in sorted((ROOT / "analysis" / "efficiency").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                parts = name.split(".")
                assert not (parts[0] == "litelvlm" and len(parts) > 1
                            and parts[1] in families), f"{path}: {name}"


def test_model_strings_map_to_their_presets_arch():
    assert arch_of_model("tiny-random:0") == "tiny"
    assert arch_of_model("unipixel-tiny-random") == "unipixel-tiny"
    assert arch_of_model("videoglamm-tiny-random:0") == "videoglamm-tiny"
    assert arch_of_model("sa2va-tiny-random:3") == "sa2va-tiny"
    assert arch_of_model("sa2va-qwen2_5-vl-3b-random") == "sa2va-3b"


def test_sa2va_arch_is_its_pipelines_view_of_the_study_image():
    """N and the prompt length the cost declares are what ``Sa2VAPipeline`` gives the study's photo and
    sentence."""
    import torch

    from litelvlm.cost.clip import SENTENCE, synthetic_image
    from litelvlm.sa2va.cost import COST

    arch = get_arch("sa2va-tiny")
    assert isinstance(arch, CostArch) and arch.family == "sa2va" and arch.llm.llm_layers == 4
    pipe = COST.build(arch, "cpu", torch.float32)
    prepared = pipe.with_sentences(pipe.prepare_image(synthetic_image()), [SENTENCE])
    n = pipe.num_visual(prepared)
    assert n == arch.num_patches == arch.to_dict()["merged_grid"][0] * arch.to_dict()["merged_grid"][1]
    assert prepared.input_ids.numel() - n == arch.text_tokens
    assert int(torch.nonzero(prepared.mm_token_type_ids > 0).flatten()[0]) == arch.prefix_tokens


def test_efficiency_runs_on_sa2va_counted_and_timed(tmp_path):
    """``--model sa2va-tiny-random``: FLOPs on meta (every part a row's e2e sums) and the parts timed on the
    CPU."""
    base = ["efficiency", "--model", "sa2va-tiny-random", "--methods", "none", "litelvlm", "fastv",
            "divprune", "--budgets", "64", "16", "--attn", "sdpa", "--no-figures"]
    assert main([*base, "--flops-only", "--out", str(tmp_path / "flops")]) == 0
    df = pd.read_csv(tmp_path / "flops" / "efficiency.csv")
    assert set(df["arch"]) == {"sa2va-tiny"} and list(df["method"]) == ["none", "litelvlm", "litelvlm",
                                                                        "fastv",
                                                                         "fastv", "divprune", "divprune"]
    parts = ["vision_tflops", "selector_tflops", "projector_tflops", "sam_tflops", "clip_tflops",
             "text_tflops"]
    assert (df[parts].sum(axis=1) + df["llm_tflops_measured"]).round(15).equals(df["e2e_tflops"].round(15))
    # FastV adds its scoring (as on UniPixel); the others are exact
    assert df["llm_flops_rel_diff"].abs().max() < 0.02
    assert (df.loc[df["method"] != "fastv", "llm_flops_rel_diff"].abs() < 1e-9).all()
    # the paired CLIP's forward, charged
    assert (df.loc[df["method"] == "litelvlm", "clip_tflops"] > 0).all()
    assert (df.loc[df["method"] == "fastv", "prune_layer"] == 2).all()
    assert main(
        [*base, "--threads", "1", "--warmup", "0", "--repeats", "1", "--out", str(tmp_path / "cpu")]) == 0
    t = pd.read_csv(tmp_path / "cpu" / "efficiency.csv")
    assert (t["e2e_ms"] > 0).all() and (t["vision_ms"] > 0).all() and t["dtype"].eq("float32").all()


@pytest.mark.parametrize("arch_name", ["tiny", "unipixel-tiny", "sa2va-tiny"])
def test_a_selection_on_the_llms_inputs_is_counted_once(arch_name):
    """A method selecting on the LLM's input embeddings (DivPrune, CDPruner) is charged its selection as
    ``selector_tflops``; its prefill's measured count is its token plan's analytic one, so the end-to-end sum
    holds the selection once (CDPruner's ran again inside the counted prefill)."""
    import torch

    from analysis.efficiency.count import flops_rows
    from litelvlm.cost.tokens import selects_on_llm_input

    arch = get_arch(arch_name)
    methods = [m for m in method_names() if selects_on_llm_input(arch.spec(m)) and not get_method(m).oracle
               and not cost_of_arch(arch_name).method_errors([m])]
    assert {"divprune", "cdpruner"} <= set(methods), methods
    df = flops_rows(arch, [(m, 16) for m in methods], ["sdpa"], torch.float32)
    assert (df.set_index("method").loc[["divprune", "cdpruner"], "selector_tflops"] > 0).all()
    assert df["llm_flops_rel_diff"].abs().lt(1e-12).all(), df[["method", "llm_flops_rel_diff"]]


def test_one_token_count_has_one_counted_prefill():
    """Every row whose plan is one stage of K visual tokens (nothing pruned inside the LLM) counts the prefill
    of a CLIP-side method at that K: the same FLOPs and the same activation bytes on ``meta`` (DivPrune and
    downsample, whose selections cannot run there, and SparseVLM or ViTCoP at K = N, took a stand-in whose
    bytes differed)."""
    import torch

    from analysis.efficiency.count import flops_rows

    arch, cost = get_arch("tiny"), cost_of_arch("tiny")
    methods = [m for m in method_names() if not get_method(m).oracle and not cost.method_errors([m])]
    pairs = [(m, k) for m in methods for k in (arch.num_patches, 16)]
    # the one-stage rows alone are counted (their plans, read without counting)
    one = flops_rows(arch, [p for p in pairs if len(cost.plan(arch, p, None).stages) == 1], ["sdpa"],
                     torch.float32)
    assert (one["prune_layer"].eq(0) & one["n_tokens_first_layers"].eq(one["n_tokens"])).all()
    assert {"divprune", "downsample", "sparsevlm", "vitcop", "litelvlm"} <= set(one["method"])
    cols = ["llm_tflops_measured", "llm_act_mb_meta"]
    spread = one.groupby("n_tokens")[cols].nunique()
    assert (spread == 1).all().all(), one.sort_values("n_tokens")[["method", "budget", "n_tokens", *cols]]


def test_model_and_arch_are_one_choice(tmp_path):
    assert main(["efficiency", "--arch", "tiny", "--model", "tiny-random", "--out", str(tmp_path / "x")]) == 2
    assert main(["efficiency", "--arch", "nope", "--flops-only", "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_sa2va_full_size_counts_on_meta(tmp_path):
    """``--model sa2va-qwen2_5-vl-3b-random --flops-only``: the released 3B's sizes counted on ``meta`` (no
    weights); the measured LLM FLOPs equal the analytic count of the token plan (FastV adds its scoring)."""
    assert main(["efficiency", "--model", "sa2va-qwen2_5-vl-3b-random", "--flops-only", "--methods", "none",
                 "litelvlm", "fastv", "--budgets", "64", "--attn", "eager", "--no-figures",
                 "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "efficiency.csv")
    assert set(df["arch"]) == {"sa2va-3b"} and df.loc[df["method"] == "none", "budget"].tolist() == [540]
    assert (df.loc[df["method"] != "fastv", "llm_flops_rel_diff"].abs() < 1e-9).all()
    assert df["llm_flops_rel_diff"].abs().max() < 0.02 and (df["e2e_tflops"]
                                                            > df["llm_tflops_measured"]).all()
