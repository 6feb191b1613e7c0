"""The released GLaMM-RefSeg checkpoint also holds GLaMM's region encoder (``model.region_encoder.*``),
which ``GlammModel`` lacks: those tensors (and only those, plus CLIP-tower keys) are dropped and counted."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.glamm import build_glamm, load_glamm_checkpoint, save_glamm_checkpoint
from litelvlm.glamm.checkpoint import convert_state_dict, split_ignored
from litelvlm.glamm.tokenizer import build_tiny_tokenizer

OFFICIAL = "mbzuai-oryx/groundingLMM e74865f207d02c8cbb54795758b855acd6bb51bb"
N_REGION_TENSORS = 43


def official_region_encoder_shapes(d: int = 8, q: int = 12, out: int = 16, roi: int = 2) -> dict[str, tuple]:
    """The state-dict names of GLaMM's region encoder, built from the module definitions, with small shapes.

    Source: OFFICIAL (same in sejong-rcv/LiteLVLM 5896153d8aa8ed4a2f862f4a27826140b2502a48):
    ``model/llava/llava_with_region_arch.py`` line 20: ``self.region_encoder = MLVLROIQueryModule(
    embed_dims=1024, out_dims=4096, num_levels=4)`` on ``LlavaMetaModel`` (GLaMM's ``self.model``, so the
    prefix is ``model.region_encoder.``). ``model/layers.py``:

    * lines 198-216 ``MLVLROIQueryModule``: ``mlvl_fuse = MLVLFuseModule(..., num_levels=4, num_fuse=5)``,
      ``roi_align = MlvlRoIExtractor(...)`` (``fuse_level=num_levels`` = 4, ``roi_layer`` RoIAlign output 14);
    * lines 127-143 ``MLVLFuseModule._init_layers``: ``input_conv`` = ModuleList of 4 ``Conv2d(1024 + 2, 1024,
      1)``; ``fuse_convs`` = 5 mmcv ``ConvModule(1024, 1024, 3, norm_cfg=dict(type='GN', num_groups=64))``:
      the conv is ``.conv`` without bias (``bias='auto'`` -> ``not with_norm``, mmcv
      ``cnn/bricks/conv_module.py`` lines 104-106, 115-124) and the norm is registered as ``.gn``
      (``build_norm_layer`` abbreviation of GroupNorm, ``cnn/bricks/norm.py`` lines 54-55, 104;
      ``add_module(self.norm_name, ...)`` conv_module.py line 147); the ReLU has no parameters;
    * lines 262-275 ``MlvlRoIExtractor.__init__``: ``pconvs`` = 4 ``Conv2d(1024, 1024, 3, padding=1)``,
      ``pos_embedd`` = Sequential(Linear(4, 256), ReLU, LayerNorm(256), Linear(256, 1024), ReLU,
      LayerNorm(1024)), ``updims`` = Linear(1024, 4096), ``flatten_linear`` = Linear(1024 * 14 * 14, 1024);
      its base ``BaseRoIExtractor`` only adds ``roi_layers`` (mmcv RoIAlign, no parameters or buffers).

    Real sizes: ``d`` = 1024 (embed), ``q`` = 256 (pos_embedd hidden), ``out`` = 4096, ``roi`` = 14.
    """
    p = "model.region_encoder."
    s: dict[str, tuple] = {}
    for lvl in range(4):
        s[f"{p}mlvl_fuse.input_conv.{lvl}.weight"] = (d, d + 2, 1, 1)
        s[f"{p}mlvl_fuse.input_conv.{lvl}.bias"] = (d,)
    for f in range(5):
        s[f"{p}mlvl_fuse.fuse_convs.{f}.conv.weight"] = (d, d, 3, 3)
        s[f"{p}mlvl_fuse.fuse_convs.{f}.gn.weight"] = (d,)
        s[f"{p}mlvl_fuse.fuse_convs.{f}.gn.bias"] = (d,)
    for lvl in range(4):
        s[f"{p}roi_align.pconvs.{lvl}.weight"] = (d, d, 3, 3)
        s[f"{p}roi_align.pconvs.{lvl}.bias"] = (d,)
    s[f"{p}roi_align.pos_embedd.0.weight"], s[f"{p}roi_align.pos_embedd.0.bias"] = (q, 4), (q,)
    s[f"{p}roi_align.pos_embedd.2.weight"], s[f"{p}roi_align.pos_embedd.2.bias"] = (q,), (q,)
    s[f"{p}roi_align.pos_embedd.3.weight"], s[f"{p}roi_align.pos_embedd.3.bias"] = (d, q), (d,)
    s[f"{p}roi_align.pos_embedd.5.weight"], s[f"{p}roi_align.pos_embedd.5.bias"] = (d,), (d,)
    s[f"{p}roi_align.updims.weight"], s[f"{p}roi_align.updims.bias"] = (out, d), (out,)
    s[f"{p}roi_align.flatten_linear.weight"] = (d, d * roi * roi)
    s[f"{p}roi_align.flatten_linear.bias"] = (d,)
    return s


def _random(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) for k, shape in shapes.items()}


@pytest.fixture(scope="module")
def native():
    tok = build_tiny_tokenizer()
    return build_glamm("tiny", seed=3, vocab_size=len(tok)), tok


@pytest.fixture(scope="module")
def plain_ckpt(native, tmp_path_factory):
    model, tok = native
    return save_glamm_checkpoint(model, tok, tmp_path_factory.mktemp("glamm_plain"), shards=2, fmt="bin")


def _add_tensors(src, dst, extra: dict[str, torch.Tensor]):
    """A copy of the 2-shard .bin checkpoint ``src`` with ``extra`` spread over its shards and its index."""
    d = shutil.copytree(src, dst)
    index = json.loads((d / "pytorch_model.bin.index.json").read_text())
    names = sorted(set(index["weight_map"].values()))
    shards = {n: torch.load(d / n, weights_only=True) for n in names}
    for i, (k, v) in enumerate(sorted(extra.items())):
        n = names[i % len(names)]
        shards[n][k] = v
        index["weight_map"][k] = n
    for n, sd in shards.items():
        torch.save(sd, d / n)
    (d / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2))
    return d


def _checkpoint_records(caplog):
    return [r for r in caplog.records if r.name == "litelvlm.glamm.checkpoint"]


def test_official_names():
    shapes = official_region_encoder_shapes()
    assert len(shapes) == N_REGION_TENSORS
    assert all(k.startswith("model.region_encoder.") for k in shapes)
    for k in ("model.region_encoder.mlvl_fuse.input_conv.3.weight",
              "model.region_encoder.mlvl_fuse.fuse_convs.4.conv.weight",
              "model.region_encoder.mlvl_fuse.fuse_convs.0.gn.bias",
              "model.region_encoder.roi_align.pconvs.0.bias",
              "model.region_encoder.roi_align.pos_embedd.5.weight",
              "model.region_encoder.roi_align.updims.weight",
              "model.region_encoder.roi_align.flatten_linear.weight"):
        assert k in shapes
    # ConvModule + GN: no conv bias
    assert "model.region_encoder.mlvl_fuse.fuse_convs.0.conv.bias" not in shapes


def test_region_encoder_ignored_and_counted(native, plain_ckpt, tmp_path, caplog):
    model, tok = native
    d = _add_tensors(plain_ckpt, tmp_path / "with_region", _random(official_region_encoder_shapes()))
    on_disk = json.loads((d / "pytorch_model.bin.index.json").read_text())["weight_map"]
    assert sum(k.startswith("model.region_encoder.") for k in on_disk) == N_REGION_TENSORS
    with caplog.at_level(logging.INFO, logger="litelvlm"):
        loaded, tok2 = load_glamm_checkpoint(d)
    assert loaded.ignored_checkpoint_tensors == {"region encoder": N_REGION_TENSORS}
    records = _checkpoint_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    msg = records[0].getMessage()
    print(msg)
    assert records[0].levelno == logging.INFO and "\n" not in msg
    assert f"ignored {N_REGION_TENSORS} " in msg and "region encoder: 43" in msg and str(d) in msg
    want = {k: v for k, v in model.state_dict().items() if not k.startswith("llava.model.vision_tower.")}
    got = loaded.state_dict()
    assert set(want) <= set(got)
    bad = [k for k, v in want.items() if not torch.equal(got[k], v)]
    assert not bad, bad[:5]
    assert tok2.get_vocab() == tok.get_vocab()


def test_plain_checkpoint_reports_nothing(plain_ckpt, caplog):
    with caplog.at_level(logging.INFO, logger="litelvlm"):
        loaded, _ = load_glamm_checkpoint(plain_ckpt)
    assert loaded.ignored_checkpoint_tensors == {}
    assert not _checkpoint_records(caplog)


def test_clip_tower_keys_ignored_too(plain_ckpt, tmp_path, caplog):
    """A checkpoint saved with GLaMM's CLIPVisionTower loaded (``model.vision_tower.vision_tower.*``, and the
    LiteLVLM variant's ``text_tower``) loads; the tower comes from ``--clip``."""
    extra = _random(official_region_encoder_shapes())
    extra.update({
        "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight": torch
        .zeros(4, 3, 2, 2),
        "model.vision_tower.vision_tower.vision_model.post_layernorm.bias": torch.zeros(4),
        "model.vision_tower.text_tower.text_model.final_layer_norm.weight": torch.zeros(4),
    })
    d = _add_tensors(plain_ckpt, tmp_path / "with_clip", extra)
    with caplog.at_level(logging.INFO, logger="litelvlm"):
        loaded, _ = load_glamm_checkpoint(d)
    assert loaded.ignored_checkpoint_tensors == {"region encoder": 43, "CLIP vision tower": 2,
                                                 "CLIP text tower": 1}
    (msg,) = [r.getMessage() for r in _checkpoint_records(caplog)]
    assert "ignored 46 " in msg


@pytest.mark.parametrize("foreign", ["model.foo.weight", "model.vision_tower.foo.weight",
                                     "model.region_encoderx.weight"])
def test_foreign_key_still_named(plain_ckpt, tmp_path, foreign):
    extra = _random(official_region_encoder_shapes())
    extra[foreign] = torch.zeros(3)
    d = _add_tensors(plain_ckpt, tmp_path / "foreign", extra)
    with pytest.raises(LiteLVLMError, match=r"unexpected key\(s\).*" + foreign.replace(".", r"\.")) as e:
        load_glamm_checkpoint(d)
    assert "region_encoder." not in str(e.value)


def test_split_ignored_only_takes_the_prefixes():
    sd = {"model.region_encoder.roi_align.updims.bias": torch.zeros(1),
          "model.region_encoder_x": torch.zeros(1), "model.norm.weight": torch.zeros(1)}
    kept, ignored = split_ignored(sd)
    assert set(kept) == {"model.region_encoder_x", "model.norm.weight"} and ignored == {"region encoder": 1}
    assert set(convert_state_dict({k: sd[k] for k in ("model.region_encoder.roi_align.updims.bias",
                                                      "model.norm.weight")})) == {
        "llava.model.language_model.norm.weight"}


def test_glamm_refseg_folder_with_slow_tokenizer_gives_native_masks(shared_data, tmp_path):
    """The real checkpoint's shape: slow tokenizer folder (tokenizer.model, added_tokens.json, no
    tokenizer.json), region-encoder keys in the shards; loads and gives the natively built masks."""
    from PIL import Image

    from litelvlm.clip import load_clip
    from litelvlm.glamm import GlammPipeline
    from litelvlm.glamm.tokenizer import load_tokenizer

    slow = shared_data / "glamm_refseg_tokenizer"
    tok = load_tokenizer(slow)
    model = build_glamm("tiny", seed=5, vocab_size=len(tok))
    plain = save_glamm_checkpoint(model, tok, tmp_path / "plain", shards=2, fmt="bin")
    for f in plain.glob("tokenizer*"):
        f.unlink()
    for f in ("special_tokens_map.json", "added_tokens.json", "chat_template.jinja"):
        (plain / f).unlink(missing_ok=True)
    for f in slow.iterdir():
        shutil.copy(f, plain / f.name)
    ck = _add_tensors(plain, tmp_path / "ck", _random(official_region_encoder_shapes()))
    assert not (ck / "tokenizer.json").exists() and (ck / "tokenizer.model").exists()
    clip = load_clip("tiny336-random:0", "hf")
    loaded = GlammPipeline.from_model_string(str(ck), clip="tiny336-random:0")
    assert loaded.dtype == torch.bfloat16  # a checkpoint runs in bfloat16 by default, as GLaMM's evaluation
    loaded = GlammPipeline.from_model_string(str(ck), clip="tiny336-random:0", dtype=torch.float32)
    assert loaded.model.ignored_checkpoint_tensors == {"region encoder": 43}
    native = GlammPipeline(model, tok, clip)
    image = Image.new("RGB", (80, 60), (20, 120, 200))
    sents = ["the man in red", "dog on the left"]
    pa, pb = native.prepare(image, sents), loaded.prepare(image, sents)
    assert torch.equal(pa.input_ids, pb.input_ids) and int((pb.input_ids == 32004).sum()) == 2
    for method, budget in [("none", None), ("litelvlm", 64)]:
        oa, ob = native.ground(pa, method, budget), loaded.ground(pb, method, budget)
        assert torch.equal(oa.masks, ob.masks) and torch.equal(oa.mask_logits, ob.mask_logits)
