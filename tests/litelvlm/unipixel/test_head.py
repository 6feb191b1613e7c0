"""UniPixel's mask head on transformers' SAM 2 equals UniPixel's own code, and its checkpoints round-trip.

The official side is ``tests/official_unipixel_sam2.py``, transcribed from PolyU-ChenLab/UniPixel @5c8e941:
its SAM 2 (built as ``qwen2_5_vl.py`` L64-70 builds it from ``sam2/configs/sam2.1_hiera_b+.yaml``, at the
tiny preset's trunk and neck sizes and 128-pixel input) runs ``init_state``, ``add_new_hidden_state``,
``propagate_in_video`` on a one-frame input for each seg token (``qwen2_5_vl.py`` L352-366), on frames
from its ``get_sam2_transform`` (cast to the model's dtype, ``infer_seg.py`` L187). The project's side is
loaded from a random tiny UniPixel checkpoint through ``load_unipixel`` (the key mapping); the transcription
takes the same file's ``sam2.*`` and ``seg_head.*`` tensors under UniPixel's own names.

The random weights make SAM 2's outputs nearly independent of the prompt, so each case steers the two
models alike to cover both branches: the IoU head's bias picks which of the three masks wins, and the
object-score head's bias decides whether the object is present (absent: every logit is -1024).

Tolerances (logits of scale 8-12): float32 2e-5 (measured at most 1.9e-6: transformers' and SAM 2's
modules order their operations differently); bfloat16 0.125, two bfloat16 steps at that scale (measured
0.0625 with UniPixel's float32 resize of the Hiera's positional embedding: transformers' channel LayerNorm
rounds differently from SAM 2's ``LayerNorm2d`` in bfloat16; the adapter uses transformers' model code as it
is, which resizes that embedding in bfloat16, so the image features also differ at bfloat16 rounding). Masks
must agree wherever the reference logit is farther than the tolerance from 0. Pixels are bitwise equal;
seg-head prompts within 2e-6 (the same operations on fewer rows).

The last tests run UniPixel's real ``sam2`` package, read from ``../shared/official/UniPixel.git`` (the
``official`` fixture; they skip only when ``../shared`` is absent; hydra and iopath stubbed), against the
transcription and the adapter, and regenerate ``tests/golden/official_unipixel_sam2.json``.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from litelvlm.errors import LiteLVLMError  # noqa: E402
from litelvlm.models.model_spec import RANDOM_CLIPS, RANDOM_QWENS, ModelSpec  # noqa: E402
from litelvlm.qwen.checkpoint import released_state_dict  # noqa: E402
from litelvlm.registry.families import card, is_small  # noqa: E402
from litelvlm.sam2.keys import sam2_from_hf, tracking_shapes  # noqa: E402
from litelvlm.sam2.prompt import Sam2Prompt  # noqa: E402
from litelvlm.unipixel.checkpoint import (  # noqa: E402
    build_unipixel,
    load_unipixel,
    save_random_unipixel,
    unipixel_folder,
    unipixel_tensors,
)
from litelvlm.unipixel.config import PRESETS, SAM2_SIZES, get_preset, sam2_config  # noqa: E402
from litelvlm.unipixel.keys import extra_shapes  # noqa: E402
from litelvlm.unipixel.protocol import seg_rows  # noqa: E402
from tests import official_unipixel_sam2 as off  # noqa: E402

GOLDEN = Path(__file__).parents[2] / "golden" / "official_unipixel_sam2.json"
TOL = {torch.float32: 2e-5, torch.bfloat16: 0.125}
TINY = get_preset("tiny")
#: tracking tensors whose shapes follow mem_dim, which the transcription (built without memory modules) sizes
#: as hidden_dim: frame 0 never reads them
MEM_SIZED = {"maskmem_tpos_enc", "no_obj_embed_spatial", "obj_ptr_tpos_proj.weight", "obj_ptr_tpos_proj.bias"}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return save_random_unipixel(tmp_path_factory.mktemp("unipixel") / "tiny", "tiny", seed=0)


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_unipixel(str(tiny_dir), processor=False)


@pytest.fixture(scope="module")
def file_tensors(tiny_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(tiny_dir / "model.safetensors"))


def official_sam2(file_tensors: dict[str, torch.Tensor]) -> off.SAM2FrameZero:
    """UniPixel's SAM 2 at the tiny sizes with the checkpoint's ``sam2.*`` tensors (UniPixel's names)."""
    s = SAM2_SIZES["tiny"]
    model = off.build_sam2(s.embed_dim, s.num_heads, s.stages, s.global_att_blocks, s.window_pos_embed_bkg,
                           s.window_spec, s.d_model, TINY.image_size).eval()
    own = model.state_dict()
    sd = {k[len("sam2."):]: v for k, v in file_tensors.items() if k.startswith("sam2.")}
    take = {k: v for k, v in sd.items() if k in own and v.shape == own[k].shape}
    assert set(own) - set(take) == MEM_SIZED, set(own) - set(take)
    assert set(sd) - set(take) == set(tracking_shapes(s)) - set(own) | MEM_SIZED
    model.load_state_dict(take, strict=False)
    return model


@pytest.fixture(scope="module")
def sam2_pair(tiny, file_tensors):
    """(our SAM 2, the official one) in a dtype, each dtype's pair built once per module; every caller gets
    fresh copies to change."""
    made: dict = {}

    def get(dtype: torch.dtype) -> tuple[Sam2Prompt, off.SAM2FrameZero]:
        if dtype not in made:
            made[dtype] = copy.deepcopy(tiny.sam2).to(dtype), official_sam2(file_tensors).to(dtype)
        return copy.deepcopy(made[dtype][0]), copy.deepcopy(made[dtype][1])

    return get


def steer(ours: Sam2Prompt, ref: off.SAM2FrameZero, best: int, present: bool) -> None:
    """The same bias change in both: mask ``best`` of the three wins the IoU vote; the object score is
    positive (``present``) or far below 0."""
    with torch.no_grad():
        for bias in (ours.model.mask_decoder.iou_prediction_head.proj_out.bias,
                     ref.sam_mask_decoder.iou_prediction_head.layers[2].bias):
            bias[1 + best] += 8.0
        for bias in (ours.model.mask_decoder.pred_obj_score_head.proj_out.bias,
                     ref.sam_mask_decoder.pred_obj_score_head.layers[2].bias):
            bias += 5.0 if present else -20.0


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return (np.random.RandomState(seed).rand(h, w, 3) * 255).astype("uint8")


def _compare(want: torch.Tensor, got: torch.Tensor, dtype: torch.dtype) -> None:
    tol = TOL[dtype]
    assert want.shape == got.shape and want.dtype == got.dtype == dtype
    assert (want.float() - got.float()).abs().max().item() <= tol
    sure = want.float().abs() > tol
    assert torch.equal((want > 0)[sure], (got > 0)[sure])


CASES = [  # (H, W), seg tokens, winning mask, object present
    ((37, 53), 1, 0, True), ((101, 67), 2, 1, True), ((333, 200), 3, 2, True), ((32, 32), 2, 2, True),
    ((13, 500), 1, 1, False), ((64, 96), 3, 0, False),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("size, n_seg, best, present", CASES)
def test_frame_zero_masks_match_unipixel(sam2_pair, dtype, size, n_seg, best, present):
    ours, ref = sam2_pair(dtype)
    steer(ours, ref, best, present)
    (h, w), img = size, _image(*size, seed=size[0])
    frames = off.get_sam2_transform(TINY.image_size)(torch.from_numpy(img)[None]).to(dtype)
    pixels = ours.preprocess(img)
    assert torch.equal(pixels, frames)
    tokens = torch.randn(n_seg, TINY.hidden_tokens, ours.hidden_dim,
                         generator=torch.Generator().manual_seed(n_seg))
    tokens = (tokens * 3).to(dtype)
    want = off.predict_masks(ref, [frames], [(h, w)], [t[None] for t in tokens])
    got = ours.decode(ours.encode_image(pixels), tokens, (h, w))
    assert got.low_res.shape == (n_seg, 1, TINY.image_size // 4, TINY.image_size // 4)
    assert got.logits.shape == (n_seg, h, w) and got.masks.dtype == torch.bool
    assert got.iou.argmax(-1).tolist() == [best] * n_seg
    assert ((got.object_score > 0) == present).all()
    _compare(torch.cat([m[0] for m in want]), got.logits, dtype)
    # sam2_base.py L363-368: every low-resolution logit NO_OBJ_SCORE (the bfloat16 resize rounds)
    if not present:
        assert (got.low_res == -1024).all() and not got.masks.any()
        assert all((m < -1000).all() for m in want) and (got.logits < -1000).all()
    else:
        assert got.masks.any() or (got.logits <= 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_image_features_match_unipixel(sam2_pair, dtype):
    """``encode_image`` = ``forward_image`` + ``no_mem_embed`` on the coarsest map (sam2_base.py L464-472,
    L631-637): float rounding in float32; in bfloat16 within bfloat16 rounding, since transformers resizes the
    Hiera's background positional embedding in bfloat16 where UniPixel resizes it in float32 (a deviation
    kept: the model code is used as it is)."""
    ours, ref = sam2_pair(dtype)
    frames = off.get_sam2_transform(TINY.image_size)(torch.from_numpy(_image(45, 71, 3))[None]).to(dtype)
    got = ours.encode_image(frames)
    with torch.no_grad():
        out = ref.forward_image(frames)
    want = [*out["backbone_fpn"][:2], out["backbone_fpn"][2] + ref.no_mem_embed[0, 0][None, :, None, None]]
    for a, b in zip(want, got):
        assert a.shape == b.shape
        if dtype == torch.bfloat16:
            # measured at most 0.0205 on features of scale 1-2 (a few bfloat16 steps through the Hiera)
            assert torch.allclose(a.float(), b.float(), rtol=2 ** -4, atol=2 ** -4), (
                a.float() - b.float()).abs().max()
        else:
            assert (a - b).abs().max().item() < 1e-5


def test_seg_head_and_rows_match_unipixel(tiny, file_tensors, sam2_pair):
    """The seg head (qwen2_5_vl.py L74-76, L300-301) on the rows predicting ``<|seg|>`` (L343-350), then the
    whole mask path from the final norm's input."""
    seg = tiny.seg_token_id
    llm = tiny.qwen.config.text_config.hidden_size
    head = off.build_seg_head(llm, tiny.sam2.hidden_dim, TINY.hidden_tokens)
    head.load_state_dict(
        {k[len("seg_head."):]: v for k, v in file_tensors.items() if k.startswith("seg_head.")})
    ids = torch.tensor([seg, 5, 9, seg, 7, seg, seg, 3, 11, seg, 2])  # a <|seg|> first: no row predicts it
    state = torch.randn(1, len(ids), llm, generator=torch.Generator().manual_seed(0)) * 4
    with torch.no_grad():
        want = off.seg_tokens_of(head, state, ids[None], seg, TINY.hidden_tokens, next_token_is_seg=True)
        rows = seg_rows(ids, seg)
        got = tiny.seg_head(state[0, rows])
        last = tiny.seg_head(state[0, -1:])
    assert rows.tolist() == [2, 4, 5, 8]
    assert got.shape == (4, TINY.hidden_tokens, tiny.sam2.hidden_dim)
    # the same operations; on fewer rows the matmul may round differently (measured: at most 6e-7)
    assert (torch.cat(want[:-1]) - got).abs().max() <= 2e-6 and (want[-1] - last).abs().max() <= 2e-6
    assert seg_rows(torch.tensor([1, 2, 3]), seg).numel() == 0
    ref = sam2_pair(torch.float32)[1]
    img = _image(90, 61, 1)
    frames = off.get_sam2_transform(TINY.image_size)(torch.from_numpy(img)[None])
    want_masks = off.predict_masks(ref, [frames], [(90, 61)], want)
    sam2 = tiny.sam2
    got_masks = sam2.decode(sam2.encode_image(sam2.preprocess(img)), torch.cat([got, last]), (90, 61))
    _compare(torch.cat([m[0] for m in want_masks]), got_masks.logits, torch.float32)


def test_checkpoint_round_trip(tiny, tiny_dir, file_tensors):
    """Written in the released layout, loaded back: every tensor the modules hold equals the file's and a
    fresh build's; the rest of the file is the tracking and prompt-encoding tensors, by name and shape."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    assert {p.name for p in tiny_dir.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json",
                                                    "tokenizer_config.json", "preprocessor_config.json",
                                                    "chat_template.json", "generation_config.json"}
    assert isinstance(tiny.qwen, Qwen2_5_VLForConditionalGeneration)
    assert type(tiny.seg_head).__name__ == "SegHead" and isinstance(tiny.sam2, Sam2Prompt)
    qwen, head, sam2, extras = build_unipixel("tiny", seed=0)
    fresh = released_state_dict(qwen) | unipixel_tensors(head, sam2, extras)
    assert set(fresh) == set(file_tensors)
    assert all(torch.equal(fresh[k], file_tensors[k]) for k in fresh)
    held = released_state_dict(tiny.qwen) | unipixel_tensors(tiny.seg_head, tiny.sam2, {})
    assert set(held) | set(extras) == set(file_tensors)
    assert all(torch.equal(held[k], file_tensors[k]) for k in held)
    assert not torch.equal(fresh["seg_head.1.weight"], unipixel_tensors(*build_unipixel("tiny", seed=1)[1:])[
        "seg_head.1.weight"])
    cfg = json.loads((tiny_dir / "config.json").read_text())
    assert cfg["model_type"] == "pixel_qwen2_5_vl" and cfg["architectures"] == [
        "PixelQwen2_5_VLForConditionalGeneration"]
    assert (cfg["sam2_image_size"], cfg["sam2_hidden_tokens"], cfg["sam2_batch_mode"]) == (128, 2, False)
    assert [cfg[f"{t}_token_id"] for t in ("ref", "seg", "mem")] == [406, 407,
                                                                     408] and tiny.seg_token_id == 407


def test_model_string_and_processor(monkeypatch, tmp_path):
    from transformers import AutoTokenizer

    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    m = load_unipixel("unipixel-tiny-random:2")
    folder = unipixel_folder("unipixel-tiny-random:2")
    assert folder == tmp_path / "cache" / "random-models" / "unipixel-tiny-seed2"
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert [tok.convert_tokens_to_ids(t) for t in ("<|ref|>", "<|seg|>", "<|mem|>")] == [406, 407, 408]
    assert m.processor.tokenizer.convert_tokens_to_ids("<|seg|>") == m.seg_token_id == 407
    assert m.processor.image_processor.do_resize is False  # builder.py L23
    assert tok("a <|seg|>")["input_ids"][-1] == 407
    spec = ModelSpec.parse("unipixel-7b-random:12")
    assert (card("unipixel").preset(spec), spec.random_seed(), spec.is_random,
            spec.random_qwen) == ("7b", 12, True, None)
    assert is_small("unipixel-tiny-random") and not is_small("unipixel-3b-random")
    assert not set(card("unipixel").presets) & (set(RANDOM_CLIPS) | set(card("glamm").presets)
                                                | set(RANDOM_QWENS))


def test_sharded_checkpoint_loads(tmp_path):
    folder = save_random_unipixel(tmp_path / "sharded", "tiny", seed=4, max_shard_bytes=300_000)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) >= 3 and "sam2.no_mem_embed" in index["weight_map"]
    m = load_unipixel(str(folder), processor=False)
    want = unipixel_tensors(*build_unipixel("tiny", seed=4)[1:])
    got = unipixel_tensors(m.seg_head, m.sam2, {})
    assert all(torch.equal(got[k], want[k]) for k in got)


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """A copy of ``src`` whose weights (and config) ``edit(tensors, config)`` changed."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    sd = load_file(str(dst / "model.safetensors"))
    cfg = json.loads((dst / "config.json").read_text())
    edit(sd, cfg)
    save_file(sd, str(dst / "model.safetensors"), metadata={"format": "pt"})
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


BAD = {
    "unknown": (lambda sd, cfg: sd.update({"sam2.extra_head.weight": torch.zeros(2)}),
                r"unknown tensor\(s\): sam2\.extra_head\.weight \(model\.safetensors\)"),
    "missing":
    (lambda sd, cfg: sd.pop("seg_head.3.bias"), r"the seg head\): missing tensor\(s\): seg_head\.3\.bias"),
    "missing image path":
    (lambda sd, cfg: sd.pop("sam2.no_mem_embed"), r"missing tensor\(s\): sam2\.no_mem_embed"),
    "shape": (lambda sd, cfg: sd.update({"ref_proj.1.weight": torch.zeros(3, 3)}),
              r"wrong shape\(s\): ref_proj\.1\.weight \(3, 3\) in model\.safetensors, expected \(64, 192\)"),
    "stray prefix": (lambda sd, cfg: sd.update({"adapter.weight": torch.zeros(2)}),
                     r"unknown tensor\(s\): adapter\.weight \(model\.safetensors\)"),
    "qwen": (lambda sd, cfg: sd.pop("model.norm.weight"), r"Qwen2\.5-VL tensors do not match.*norm"),
    "sam2 config": (lambda sd, cfg: cfg.update(sam2_config="configs/sam2.1_hiera_l"),
                    r"sam2_config 'configs/sam2.1_hiera_l' is not a SAM 2 this project builds; known: "
                    r"configs/sam2.1_hiera_b\+, litelvlm/sam2_tiny"),
    "no seg token": (lambda sd, cfg: cfg.pop("seg_token_id"), r"lacks UniPixel's setting 'seg_token_id'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_checkpoints_are_refused_by_name(tiny_dir, tmp_path, case):
    edit, message = BAD[case]
    folder = _rewrite(tiny_dir, tmp_path / "bad", edit)
    with pytest.raises(LiteLVLMError, match=message):
        load_unipixel(str(folder), processor=False)


def test_bad_folders_are_refused(tmp_path, tiny_dir):
    with pytest.raises(LiteLVLMError, match=r"no such folder, random preset or released "
                       r"checkpoint.*unipixel-3b-random"):
        load_unipixel(str(tmp_path / "nowhere"))
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["Qwen2_5_VLForConditionalGeneration"]}))
    with pytest.raises(LiteLVLMError,
                       match=r"declares architectures \['Qwen2_5_VLForConditionalGeneration'\]; no family "
                             r"reads them \(known: .*PixelQwen2_5_VL"):
        load_unipixel(str(tmp_path))
    import shutil

    shutil.copytree(tiny_dir, tmp_path / "corrupt")
    (tmp_path / "corrupt" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(LiteLVLMError, match=r"could not read checkpoint file .*corrupt/model.safetensors"):
        load_unipixel(str(tmp_path / "corrupt"))
    (tmp_path / "corrupt" / "model.safetensors").unlink()
    with pytest.raises(LiteLVLMError, match=r"corrupt': the folder holds no weights"):
        load_unipixel(str(tmp_path / "corrupt"))
    with pytest.raises(LiteLVLMError, match=r"unknown UniPixel preset 'unipixel-3b'; known: 3b, 7b, tiny"):
        get_preset("unipixel-3b")


def test_released_presets_and_key_tables():
    """3B and 7B: the launch scripts' settings; the SAM 2.1 b+ tensors (names and shapes) and the
    prompt-encoding modules equal what UniPixel's own code builds
    (``tests/golden/official_unipixel_sam2.json``)."""
    golden = json.loads(GOLDEN.read_text())
    for name, qwen, llm in (("3b", "3b", 2048), ("7b", "7b", 3584)):
        p = PRESETS[name]
        assert (p.qwen, p.sam2, p.sam2_config, p.image_size, p.hidden_tokens, p.batch_mode) == (
            qwen, "sam2.1_hiera_b+", "configs/sam2.1_hiera_b+", 768, 2, False)
        assert p.token_ids() == {"ref_token_id": 151665, "seg_token_id": 151666, "mem_token_id": 151667}
        assert extra_shapes(256, llm, 5120) == {k: tuple(v) for k, v in golden[f"extras_{name}"].items()}
    from transformers import Sam2Model

    with torch.device("meta"):
        model = Sam2Model(sam2_config("sam2.1_hiera_b+", 768))
    ours = {k: tuple(v.shape) for k, v in sam2_from_hf(model.state_dict()).items()}
    ours.update(tracking_shapes(SAM2_SIZES["sam2.1_hiera_b+"]))
    assert ours == {k: tuple(v) for k, v in golden["sam2"].items()}
    params = sum(int(np.prod(s)) for k, s in ours.items() if not k.endswith("gaussian_matrix"))  # a buffer
    assert params == golden["sam2_parameters"] == 80_850_178  # SAM 2.1 hiera b+: "80.8M" (SAM 2's README)


def test_package_import_is_light():
    code = ("import sys, litelvlm.unipixel as u; assert 'torch' not in sys.modules, 'torch'; "
            "print(sorted(u.PRESETS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['3b', '7b', 'tiny']"


# -- against UniPixel's own code (../shared/official/UniPixel.git) -------------------------------------------
@pytest.fixture(scope="module")
def real_unipixel(official):
    repo = official.extract("UniPixel.git", "sam2")   # a folder holding UniPixel's sam2 package
    sys.path.insert(0, str(Path(__file__).parents[2] / "golden"))
    import make_official_unipixel_sam2 as make

    s = SAM2_SIZES["tiny"]
    tiny_sizes = {
        "image_encoder.trunk.embed_dim": s.embed_dim, "image_encoder.trunk.num_heads": s.num_heads,
        "image_encoder.trunk.stages": list(s.stages),
        "image_encoder.trunk.global_att_blocks": list(s.global_att_blocks),
        "image_encoder.trunk.window_pos_embed_bkg_spatial_size": list(s.window_pos_embed_bkg),
        "image_encoder.trunk.window_spec": list(s.window_spec), "image_encoder.neck.d_model": s.d_model,
        "image_encoder.neck.backbone_channel_list": list(s.dims[::-1]),
        "image_encoder.neck.position_encoding.num_pos_feats": s.d_model, "num_maskmem": s.num_maskmem,
        "memory_attention.d_model": s.d_model, "memory_attention.num_layers": s.mem_layers,
        "memory_attention.layer.d_model": s.d_model, "memory_attention.layer.dim_feedforward": s.mem_ff,
        "memory_attention.layer.self_attention.embedding_dim": s.d_model,
        "memory_attention.layer.cross_attention.embedding_dim": s.d_model,
        "memory_attention.layer.cross_attention.kv_in_dim": s.mem_dim, "memory_encoder.out_dim": s.mem_dim,
        "memory_encoder.in_dim": s.d_model,
        "memory_encoder.mask_downsampler.embed_dim": s.mask_downsampler_embed,
        "memory_encoder.fuser.layer.dim": s.d_model,
        "memory_encoder.position_encoding.num_pos_feats": s.mem_dim}
    return repo, make, make.build_official_sam2(repo, TINY.image_size, tiny_sizes)


@pytest.mark.parametrize("case", [0, *(pytest.param(i, marks=pytest.mark.slow) for i in (1, 2, 3))])
def test_real_unipixel_sam2_matches_transcription_and_adapter(real_unipixel, tiny, file_tensors, case):
    """UniPixel's real ``SAM2VideoPredictor`` (every ``sam2.*`` tensor of the file loaded strictly, the
    tracking ones included) gives the transcription's logits bitwise, and the adapter's within the tolerance.
    One case in the default suite, the other three (each winning mask) in the slow one."""
    _, _, real = real_unipixel
    real = real.eval()
    real.load_state_dict({k[len("sam2."):]: v for k, v in file_tensors.items() if k.startswith("sam2.")},
                         strict=True)
    for size, n_seg, best, present in CASES[case:case + 1]:
        ours, ref, model = copy.deepcopy(tiny.sam2), official_sam2(file_tensors), copy.deepcopy(real)
        steer(ours, ref, best, present)
        with torch.no_grad():
            model.sam_mask_decoder.iou_prediction_head.layers[2].bias[1 + best] += 8.0
            model.sam_mask_decoder.pred_obj_score_head.layers[2].bias += 5.0 if present else -20.0
        img = _image(*size, seed=size[0])
        frames = off.get_sam2_transform(TINY.image_size)(torch.from_numpy(img)[None])
        gen = torch.Generator().manual_seed(case)
        tokens = torch.randn(n_seg, TINY.hidden_tokens, ours.hidden_dim, generator=gen) * 3
        want = off.predict_masks(model, [frames], [size], [t[None] for t in tokens])
        mid = off.predict_masks(ref, [frames], [size], [t[None] for t in tokens])
        assert all(torch.equal(a, b) for a, b in zip(want, mid))
        got = ours.decode(ours.encode_image(ours.preprocess(img)), tokens, size)
        _compare(torch.cat([m[0] for m in want]), got.logits, torch.float32)


def test_golden_keys_regenerate(real_unipixel, tmp_path, monkeypatch):
    repo, make, _ = real_unipixel
    monkeypatch.setattr(make, "OUT", tmp_path / "keys.json")
    make.main(repo)
    assert (tmp_path / "keys.json").read_text() == GOLDEN.read_text()
