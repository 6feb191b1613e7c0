"""The model-family contract (``litelvlm.lvlm.family``) and the family registry
(``litelvlm.registry.families``).

The shared layer (the LLM-side methods, ``LLMContext``, the CLIP-side path) may ask a pipeline only what
the contract declares; GLaMM implements all of it; the registry finds a family from a model string
without importing torch; a family with 3-D positions indexes them on the sequence axis.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.glamm import GlammPipeline
from litelvlm.lvlm.contract import FamilyContract
from litelvlm.lvlm.family import GroundingPipeline, SequenceLayout
from litelvlm.registry.families import family_names, family_of, get_family, load_pipeline, table

SHARED = Path(__file__).resolve().parents[3] / "litelvlm" / "lvlm"


@pytest.fixture(scope="module")
def tiny_glamm_pipeline(tiny_glamm):
    return tiny_glamm


def _contract() -> set[str]:
    return {n for klass in (FamilyContract, GroundingPipeline) for n in [*vars(klass), *klass.__annotations__]
            if not n.startswith("__")}


def _required() -> list[str]:
    """The members a family must provide (the contract's abstract methods)."""
    return sorted(GroundingPipeline.__abstractmethods__)


def test_glamm_implements_the_whole_contract():
    required = _required()
    assert {"layout", "sequence_embeds", "visual_tokens", "language_model", "decode_masks"} <= set(required)
    for name in required + ["clip_selection_tokens", "clip_selection_rows", "num_visual"]:
        assert vars(GlammPipeline).get(name) is not None, f"GlammPipeline does not implement {name}"
    assert issubclass(GlammPipeline, GroundingPipeline) and GlammPipeline.family == "glamm"
    assert get_family("glamm") is GlammPipeline


def test_the_shared_layer_asks_pipelines_only_the_contract():
    """Every ``pipeline.X`` / ``pipe.X`` read in ``litelvlm/lvlm`` (the shared layer) names a contract member:
    no method reaches into one family's model (``pipeline.model...``) or prompt."""
    contract = _contract()
    seen = set()
    for path in SHARED.glob("*.py"):
        for name in re.findall(r"\b(?:pipeline|pipe)\.(\w+)", path.read_text()):
            seen.add(name)
            assert name in contract, (f"{path.name} reads pipeline.{name}, which the family contract does "
                                      "not declare")
    assert {"layout", "sequence_embeds", "language_model"} <= seen  # the scan sees the real reads


def test_family_of_reads_presets_and_checkpoint_folders(tmp_path):
    assert family_of("tiny-random") == family_of("glamm-7b-random:3") == "glamm"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"architectures": ["GLaMMForCausalLM"], "model_type": "llava"}))
    (folder / "pytorch_model.bin").write_bytes(b"")   # a folder of weights (its resolution looks for them)
    assert family_of(str(folder)) == "glamm"
    (folder / "config.json").write_text(json.dumps({"architectures": ["SomethingElse"]}))
    with pytest.raises(LiteLVLMError, match="SomethingElse.*no family reads them.*GLaMMForCausalLM"):
        family_of(str(folder))
    with pytest.raises(LiteLVLMError, match="no such folder, random preset or released checkpoint.*"
                       "tiny-random"):
        load_pipeline(str(tmp_path / "missing"))
    with pytest.raises(LiteLVLMError, match="did you mean 'glamm'"):
        get_family("glam")


def test_every_family_entry_is_a_pipeline():
    assert family_names() == sorted(table())
    for name in family_names():
        cls = get_family(name)
        assert issubclass(cls, GroundingPipeline) and cls.family == name
        assert table()[name].architectures and table()[name].presets


def test_the_registry_imports_no_torch():
    code = ("import sys; from litelvlm.registry.families import family_of, family_names; "
            "assert family_of('tiny-random') == 'glamm' and family_of('unipixel-tiny-random:1') == "
            "'unipixel' and family_of('sa2va-tiny-random:0') == 'sa2va' and family_names() == ['glamm', "
            "'sa2va', 'unipixel', 'videoglamm']; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_load_pipeline_is_the_family_loader(tiny_glamm_pipeline):
    pipe = load_pipeline("tiny-random:0")
    assert type(pipe) is GlammPipeline and pipe.describe()["arch"] == tiny_glamm_pipeline.describe()["arch"]


def test_layout_positions_serve_1d_and_3d_rope():
    """Kept rows keep their positions on the LAST axis: (1, S) for 1-D RoPE (GLaMM), (3, 1, S) for M-RoPE."""
    keep = torch.tensor([0, 2, 5])
    one = SequenceLayout(0, 4, 8, torch.arange(8)[None], lambda: torch.tensor([7]))
    assert one.positions(keep).tolist() == [[0, 2, 5]]
    three = SequenceLayout(0, 4, 8,
                           torch.stack([torch.arange(8), torch.arange(8) * 2, torch.arange(8) * 3])[:, None],
                           lambda: torch.tensor([7]))
    assert three.positions(keep).shape == (3, 1, 3) and three.positions(keep)[2, 0].tolist() == [0, 6, 15]
    assert one.seg_predictors.tolist() == [7] and one.seg_predictors is one.seg_predictors  # found once
    indices = SequenceLayout(0, 4, 8, torch.arange(8)[None], lambda: torch.tensor([7]),
                             positions_are_indices=True)
    assert torch.equal(indices.positions(keep), one.positions(keep))


def test_glamm_layout_is_its_prompt(tiny_glamm_pipeline):
    """The layout GLaMM gives the shared layer: N tokens replace the one placeholder, positions 0..S-1,
    the [SEG] predictors one row before each [SEG] (checked against the sequence the pipeline embeds)."""
    from PIL import Image

    from litelvlm.glamm.prompts import image_offset

    pipe = tiny_glamm_pipeline
    prep = pipe.prepare(Image.new("RGB", (40, 30), (90, 20, 200)), ["a", "the b"])
    n = pipe.num_visual(prep)
    for k in (1, 7, n):
        lay = pipe.layout(prep, k)
        emb = pipe.sequence_embeds(prep, pipe.visual_tokens(prep)[:k])
        assert emb.shape[:2] == (1, lay.seq_len) and lay.image_start == image_offset(prep.input_ids)
        assert torch.equal(lay.position_ids, torch.arange(lay.seq_len)[None]) and lay.positions_are_indices
        ids = torch.cat(
            [prep.input_ids[:lay.image_start], torch.full((k,), -1), prep.input_ids[lay.image_start + 1:]])
        assert torch.equal(ids[lay.seg_predictors + 1], torch.full((2,), pipe.seg_token_id))
    batch = pipe.sequence_embeds(prep, pipe.visual_tokens(prep)[None].expand(3, -1, -1))
    assert batch.shape[0] == 3 and torch.equal(batch[2],
                                               pipe.sequence_embeds(prep, pipe.visual_tokens(prep))[0])


class TransposedGlamm(GlammPipeline):
    """A second family for this test: GLaMM whose visual tokens enter the LLM in column-major order (CLIP's
    grid transposed), as a family whose tokens are not CLIP's raster patches: CLIP-side selections are mapped
    onto its order in ``clip_selection_tokens``, LLM-side ones index its own tokens."""

    family = "glamm-transposed"
    #: pipelines of this family built so far (the studies' test checks that they loaded this family)
    built = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        type(self).built += 1

    def order(self, prepared) -> torch.Tensor:
        rows, cols = prepared.vision.grid
        return torch.arange(rows * cols).view(rows, cols).t().flatten()

    def visual_tokens(self, prepared) -> torch.Tensor:
        return super().visual_tokens(prepared)[self.order(prepared)]

    def clip_selection_tokens(self, prepared, sel, full=None) -> torch.Tensor:
        if sel.features is not None or full is None:  # merged or gathered CLIP features: no order involved
            return super().clip_selection_tokens(prepared, sel, None)
        position = torch.argsort(self.order(prepared))  # CLIP raster index -> this family's token position
        return full[position[sel.indices].to(full.device)]

    def clip_selection_rows(self, prepared, sel) -> torch.Tensor:
        position = torch.argsort(self.order(prepared))
        idx = sel.indices.cpu()
        return torch.where(idx >= 0, position[idx.clamp(min=0)], idx)


def _transposed_card(presets: tuple[str, ...]):
    """The card of the test family :class:`TransposedGlamm` (random presets ``presets``): GLaMM's, with its
    own name, pipeline, presets and architecture (its protocol is GLaMM's)."""
    import dataclasses

    from litelvlm.models.family_card import Lazy
    from litelvlm.registry.families import card

    return dataclasses.replace(card("glamm"), name="glamm-transposed", display_name="Transposed GLaMM",
                               description="GLaMM with its visual tokens in column-major order (a test "
                               "family)", pipeline=Lazy(__name__, "TransposedGlamm"),
                               presets=dict.fromkeys(presets, "tiny"),
                               architectures=("TransposedGlammForTest",), default_model="transposed-random:0",
                               cost=None, cost_archs={}, released_presets=())


def test_every_method_runs_on_a_second_family(tiny_glamm_pipeline, monkeypatch):
    """A family added as the contract says (a pipeline subclassing GroundingPipeline, one table entry) runs
    every method unchanged; its unpruned run is GLaMM's on the reordered tokens, and a CLIP-side selection
    reaches the LLM as the same tokens in the same order through the family's map."""
    from PIL import Image

    import litelvlm.registry.families as families
    from litelvlm.methods import get_method, method_names

    monkeypatch.setitem(families.table(), "glamm-transposed", _transposed_card(("transposed-random",)))
    assert families.get_family("glamm-transposed") is TransposedGlamm
    glamm = tiny_glamm_pipeline
    fam = TransposedGlamm(glamm.model, glamm.tokenizer, glamm.clip)
    prep = fam.prepare(Image.new("RGB", (52, 38), (30, 160, 90)), ["the left one", "a thing"])
    n, order = fam.num_visual(prep), fam.order(prep)
    with torch.no_grad():
        ours = fam.ground(prep, "none")
        ref = glamm.ground(prep, "none", visual_embeds=glamm.visual_tokens(prep)[order])
        assert torch.equal(ours.seg_hidden, ref.seg_hidden) and torch.equal(ours.masks, ref.masks)
        for k in (n, 9):
            mapped = fam.ground(prep, "litelvlm", k, visual_embeds=fam.visual_tokens(prep))
            direct = glamm.ground(prep, "litelvlm", k, visual_embeds=glamm.visual_tokens(prep))
            # CLIP's grid, as the selector gave it
            assert torch.equal(mapped.kept_indices, direct.kept_indices)
            assert torch.equal(mapped.seg_hidden, direct.seg_hidden)
        ran = []
        for name in method_names():
            for k in ((n,) if name == "saliency" or get_method(name).baseline else (n, 9)):
                out = fam.ground(prep, name, k, **({"n_steps": 2} if name == "saliency" else {}))
                assert out.masks.shape == ours.masks.shape and torch.isfinite(out.mask_logits).all()
                assert int(out.kept_indices.max()) < n + 1
                ran.append(name)
    assert set(ran) == set(method_names())


def test_the_shared_llm_layer_runs_multi_axis_rope():
    """The shared layer's layer-by-layer run and attention rows on a decoder with 3-D M-RoPE positions
    (transformers' own Qwen2.5-VL text decoder, random weights): the full sequence, a kept subset with its
    original (3, 1, S') positions, and the attention rows of two queries match the model's own forward."""
    from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLTextConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLTextModel

    from litelvlm.llm.context import attention_rows_at, run_layers

    torch.manual_seed(0)
    cfg = Qwen2_5_VLTextConfig(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, bos_token_id=0, eos_token_id=1,
                               rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                               attn_implementation="eager")
    lm = Qwen2_5_VLTextModel(cfg).eval()
    s = 12
    embeds = torch.randn(1, s, 64)
    t = torch.arange(s)
    pos = torch.stack([t, t, t])  # text rows: one position on every axis; a 2x3 image at rows 3..8
    pos[:, 3:9] = torch.tensor([[3] * 6, [3, 3, 3, 4, 4, 4], [3, 4, 5, 3, 4, 5]])
    pos[:, 9:] = torch.arange(6, 9)
    pos = pos[:, None]
    layout = SequenceLayout(3, 6, s, pos, lambda: torch.tensor([s - 1]))
    keep = torch.tensor([0, 1, 2, 4, 6, 8, 9, 10, 11])

    def model(x, p):
        ones = torch.ones(x.shape[:2], dtype=torch.long)
        return lm(inputs_embeds=x, position_ids=p, attention_mask=ones, use_cache=False,
                  output_attentions=True, output_hidden_states=True)

    with torch.no_grad():
        ref = model(embeds, pos)
        assert torch.equal(lm.norm(run_layers(lm, embeds, pos)), ref.last_hidden_state)
        kept = model(embeds[:, keep], layout.positions(keep))
        assert torch.equal(lm.norm(run_layers(lm, embeds[:, keep], layout.positions(keep))),
                           kept.last_hidden_state)
        rows = attention_rows_at(lm, 1, ref.hidden_states[1], pos, torch.tensor([s - 1, 5]))
        torch.testing.assert_close(rows, ref.attentions[1][0][:, [s - 1, 5]], atol=1e-6, rtol=0)


@pytest.mark.parametrize("command", ["eval-grounding", "importance", "validate"])
def test_the_studies_run_a_second_family_found_by_its_checkpoint(command, coco128, tmp_path, monkeypatch,
                                                                 capsys):
    """A checkpoint folder whose ``config.json`` declares the test family's architecture: the studies load it
    through the family table (``load_pipeline``) and run it unchanged."""
    import shutil

    import litelvlm.registry.families as families
    from litelvlm.cli import main
    from litelvlm.glamm.random_model import random_model_dir

    folder = tmp_path / "transposed-ckpt"
    shutil.copytree(random_model_dir("tiny", 0), folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "architectures": ["TransposedGlammForTest"]}))
    monkeypatch.setitem(families.table(), "glamm-transposed", _transposed_card(()))
    before = TransposedGlamm.built
    extra = {"eval-grounding": ["--methods", "litelvlm,fastv,none", "--budgets", "32", "--limit-images", "1"],
             "importance": ["--signals", "attention", "--limit-images", "1", "--max-sentences", "2"],
             "validate": ["--methods", "litelvlm,fastv", "--budgets", "64"]}[command]
    rc = main([command, "--refer-dir", str(coco128), "--model", str(folder), "--clip", "tiny336-random:0",
               "--dtype", "float32", "--threads", "1", "--out", str(tmp_path / "out"), *extra])
    assert rc == 0, capsys.readouterr().err
    assert TransposedGlamm.built == before + 1  # the study ran the family the checkpoint names
    assert any((tmp_path / "out").glob("*.parquet"))
