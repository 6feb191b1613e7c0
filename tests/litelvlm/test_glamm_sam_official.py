"""The project's SAM (transformers' ``SamModel`` loaded by key mapping) equals GLaMM's own SAM network on the
same random weights: image embeddings, dense positional encoding and low-resolution masks.

GLaMM's modules are transcribed in ``tests/official_sam.py`` (sejong-rcv/LiteLVLM @5896153,
``model/SAM/modeling/*.py``), built as ``model/SAM/build_sam.py`` L66-104 builds them (``use_rel_pos``,
``LayerNorm(eps=1e-6)``, 3 multimask outputs, a depth-2 two-way transformer) at the project's small
architectures, and called as ``model/GLaMM.py`` L230-242 calls them (each ``[SEG]`` embedding the only
sparse prompt through ``text_embeds``, no mask, ``multimask_output=False``). The weights are random
(relative position tables included, which SAM initialises to zero), written with GLaMM's key names and
loaded into the project's model with the loader's own mapping (``litelvlm.glamm.checkpoint.sam_key_to_hf``,
strict).

Tolerances: float32 1e-5 (measured: at most 1.1e-6 on image embeddings of scale 2-2.6 and 4.2e-6 on mask
logits of scale 0.4-0.5; the two implementations order their matmuls and reshapes differently);
bfloat16 0.05 (measured: at most 0.023 on the embeddings, a few bfloat16 steps at that scale).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import pytest
import torch

from litelvlm.glamm.build import build_glamm  # noqa: E402
from litelvlm.glamm.checkpoint import sam_key_to_hf  # noqa: E402
from litelvlm.glamm.config import get_arch  # noqa: E402
from litelvlm.lvlm.numerics import set_attention  # noqa: E402
from tests import official_sam as off  # noqa: E402


def official_sam(a) -> torch.nn.ModuleDict:
    """GLaMM's ``Sam`` parts at architecture ``a`` (``build_sam.py`` L66-104 with ``a``'s sizes)."""
    grid = a.sam_image_size // a.sam_patch
    return torch.nn.ModuleDict({
        "image_encoder": off.ImageEncoderViT(
            depth=a.sam_layers, embed_dim=a.sam_hidden, img_size=a.sam_image_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=a.sam_heads, patch_size=a.sam_patch,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=a.sam_global_attn, window_size=a.sam_window,
            out_chans=a.prompt_dim),
        "prompt_encoder": off.PromptEncoder(
            embed_dim=a.prompt_dim, image_embedding_size=(grid, grid),
            input_image_size=(a.sam_image_size, a.sam_image_size), mask_in_chans=a.sam_mask_input_channels),
        "mask_decoder": off.MaskDecoder(
            num_multimask_outputs=3,
            transformer=off.TwoWayTransformer(depth=2, embedding_dim=a.prompt_dim, mlp_dim=a.sam_decoder_mlp,
                                              num_heads=a.sam_decoder_heads),
            transformer_dim=a.prompt_dim, iou_head_depth=3, iou_head_hidden_dim=a.prompt_dim),
    })


def _pair(arch, dtype, attn):
    """(GLaMM's SAM, the project's GlammModel) with the same random weights."""
    torch.manual_seed(0)
    ref = official_sam(arch)
    with torch.no_grad():
        for p in ref.parameters():  # every tensor random (SAM zero-initialises its relative positions)
            # unit-scale activations
            p.copy_(torch.randn_like(p) * (p[0].numel() ** -0.5 if p.ndim > 1 else 0.5))
        ref["prompt_encoder"].pe_layer.positional_encoding_gaussian_matrix.normal_()
    ref = ref.eval().to(dtype)
    model = build_glamm(arch, dtype=dtype)
    sd = {}
    for k, v in ref.state_dict().items():
        hf = sam_key_to_hf(k)
        assert hf is not None, f"no mapping for GLaMM key {k}"
        sd[hf] = v
    missing, unexpected = model.sam.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    # the only SamModel tensors not in GLaMM's checkpoint: the shared positional embedding copies and buffers
    assert all("shared_image_embedding" in k or "positional_embedding" in k for k in missing), missing
    model.sam.shared_image_embedding.positional_embedding.copy_(
        ref["prompt_encoder"].pe_layer.positional_encoding_gaussian_matrix)
    set_attention(attn, model.sam)
    return ref, model.eval()


ARCHS = {
    "tiny": lambda: get_arch("tiny"),
    # a window that does not divide the 16x16 grid: padded windows, as ViT-H's 14 on its 64x64 grid
    "tiny-padded-window": lambda: replace(get_arch("tiny"), sam_window=5, sam_layers=3, sam_global_attn=(1,)),
    # 8 blocks, 4 global, a 32x32 grid in windows of 7 (padded), 2 heads of 64
    "scaled-padded-window": lambda: replace(get_arch("scaled"), sam_window=7),
}


def _compare(arch_name, dtype, attn, atol, rtol):
    arch = ARCHS[arch_name]()
    ref, model = _pair(arch, dtype, attn)
    g = torch.Generator().manual_seed(1)
    image = torch.randn(1, 3, arch.sam_image_size, arch.sam_image_size, generator=g).to(dtype)
    prompts = torch.randn(3, arch.prompt_dim, generator=g).to(dtype)
    with torch.no_grad():
        emb_ref = ref["image_encoder"](image)
        emb = model.sam.get_image_embeddings(image)
        torch.testing.assert_close(emb, emb_ref, atol=atol, rtol=rtol)
        pe_ref = ref["prompt_encoder"].get_dense_pe()
        pe = model.sam.get_image_wide_positional_embeddings()
        torch.testing.assert_close(pe.to(dtype), pe_ref.to(dtype), atol=atol, rtol=rtol)
        # GLaMM.py L232-241: one call per image with every [SEG] embedding as a batch of sparse prompts
        sparse, dense = ref["prompt_encoder"](points=None, boxes=None, masks=None,
                                              text_embeds=prompts.unsqueeze(1))
        low_ref, _ = ref["mask_decoder"](image_embeddings=emb_ref,
                                         image_pe=ref["prompt_encoder"].get_dense_pe(),
                                         sparse_prompt_embeddings=sparse.to(dtype),
                                         dense_prompt_embeddings=dense, multimask_output=False)
        low = model.decode_masks(emb_ref, prompts)
    torch.testing.assert_close(low, low_ref, atol=atol, rtol=rtol)
    assert low_ref.abs().max() > 0.2  # masks of unit scale: the comparison is not vacuous
    return low


@pytest.mark.parametrize("arch_name", ["tiny", "tiny-padded-window",
                                       pytest.param("scaled-padded-window", marks=pytest.mark.slow)])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_sam_equals_glamms_sam_float32(arch_name, attn):
    low = _compare(arch_name, torch.float32, attn, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(low).all() and low.shape[:2] == (3, 1)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_sam_equals_glamms_sam_bfloat16(attn):
    _compare("tiny", torch.bfloat16, attn, atol=5e-2, rtol=5e-2)


# -- through the checkpoint loader, on images, to the post-processed masks -----------------------------------
#: Bounds, relative to the largest reference value (measured: tiny-padded-window arch / the slow test's
#: ViT-H-structured arch, on COCO 000000000009 and a 517x333 noise image, eager and SDPA). float32: image
#: embeddings <= 6e-7 / 2.3e-6 (matmul order); positional encoding and sparse/dense prompts equal; logits
#: from the same embeddings <= 6e-7 / 9e-7, and end to end <= 1e-6 / 1.5e-6; mask pixels flipped 0 / 2e-6.
#: The decoder bound is tight on purpose: with transformers' default mask-decoder LayerNorm eps (1e-6;
#: SAM's two-way blocks use nn.LayerNorm's 1e-5) that difference was 9e-6 / 4.9e-6.
F32 = {"emb": 1e-5, "decoder": 2e-6, "low": 1e-5, "flips": 1e-5}
#: bfloat16: the official modules round at other places than transformers' (whose eager softmax runs in
#: float32; SDPA fuses): embeddings <= 0.012 / 0.014 (a few bfloat16 steps; one is 0.0039 relative),
#: logits from the same embeddings <= 0.016 / 0.015, end to end <= 0.023 / 0.018, flipped pixels <= 0.11% /
#: 0.34%.
BF16 = {"emb": 0.03, "decoder": 0.03, "low": 0.04, "flips": 1e-2}


def _checkpoint_pair(arch, path):
    """GLaMM's SAM with random weights, written under the released checkpoint's names
    (``model.grounding_encoder.*``, beside a random LLM's tensors) and read back by
    ``load_glamm_checkpoint``."""
    from litelvlm.glamm import load_glamm_checkpoint, save_glamm_checkpoint
    from litelvlm.glamm.checkpoint import SAM_PREFIX
    from litelvlm.glamm.checkpoint_writer import glamm_state_dict
    from litelvlm.glamm.tokenizer import build_tiny_tokenizer

    torch.manual_seed(0)
    ref = official_sam(arch)  # torch's default init for matrices: unit-scale activations and logits
    with torch.no_grad():  # norms, biases, embeddings, absolute and relative positions (zeros in SAM) random
        for name, p in ref.named_parameters():
            if p.ndim == 1 or "pos" in name:
                p.copy_((1.0 if p.ndim == 1 and name.endswith("weight") else 0.0) + 0.3 * torch.randn_like(p))
    tok = build_tiny_tokenizer()
    native = build_glamm(arch, vocab_size=len(tok))
    written = glamm_state_dict(native)
    official = {SAM_PREFIX + k: v for k, v in ref.state_dict().items()}
    # the writer's SAM keys are GLaMM's
    assert {k for k in written if k.startswith(SAM_PREFIX)} == set(official)
    save_glamm_checkpoint(native, tok, path, shards=1)
    torch.save({**{k: v for k, v in written.items() if k not in official}, **official},
               path / "pytorch_model.bin")
    model, _ = load_glamm_checkpoint(path)
    return ref.eval(), model


def _images(coco128):
    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (333, 517, 3), dtype=np.uint8)
    return [Image.open(coco128 / "images" / "COCO_train2014_000000000009.jpg").convert("RGB"),
            Image.fromarray(noise)]


def _end_to_end(ref, model, image, arch, dtype, bounds):
    """GLaMM's chain (its preprocessing, SAM, ``model/GLaMM.py`` L230-247, ``postprocess_masks``) against the
    project's (``sam_inputs``, the loaded ``SamModel``, ``decode_masks``, ``postprocess_masks``)."""
    import numpy as np

    from litelvlm.glamm.sam_preprocess import postprocess_masks, sam_inputs
    from tests.litelvlm.glamm.test_sam_preprocess import (
        official_grounding_enc_image,
        official_postprocess_masks,
    )

    size, orig = arch.sam_image_size, (image.height, image.width)
    x_ref, resize = official_grounding_enc_image(np.asarray(image), size)
    x, reshaped = sam_inputs(image, size)
    assert tuple(resize) == reshaped
    prompts = torch.randn(3, arch.prompt_dim, generator=torch.Generator().manual_seed(2)).to(dtype)
    seen = {}
    hook = model.sam.mask_decoder.register_forward_pre_hook(lambda m, a, kw: seen.update(kw),
                                                            with_kwargs=True)
    with torch.no_grad():
        emb_ref = ref["image_encoder"](x_ref.reshape(1, 3, size, size).to(dtype))
        sparse, dense = ref["prompt_encoder"](points=None, boxes=None, masks=None,
                                              text_embeds=prompts.unsqueeze(1))
        sparse = sparse.to(prompts.dtype)
        pe = ref["prompt_encoder"].get_dense_pe()
        low_ref, _ = ref["mask_decoder"](image_embeddings=emb_ref, image_pe=pe,
                                         sparse_prompt_embeddings=sparse,
                                         dense_prompt_embeddings=dense, multimask_output=False)
        masks_ref = official_postprocess_masks(low_ref, resize, orig, size)[:, 0]
        emb = model.sam.get_image_embeddings(x.to(dtype))
        low_same_emb = model.decode_masks(emb_ref, prompts)
        low = model.decode_masks(emb, prompts)
    hook.remove()
    masks = postprocess_masks(low, reshaped, orig, size)
    def close(x, x_ref, what):
        torch.testing.assert_close(x.float(), x_ref.float(), atol=bounds[what] * x_ref.abs().max().item(),
                                   rtol=0)

    close(emb, emb_ref, "emb")
    assert torch.equal(seen["sparse_prompt_embeddings"][0], sparse)  # (S, 1, C): each [SEG] its only prompt
    assert torch.equal(seen["dense_prompt_embeddings"].expand_as(dense), dense)  # the no-mask embedding
    torch.testing.assert_close(seen["image_positional_embeddings"], pe, atol=1e-6, rtol=0)
    close(low_same_emb, low_ref, "decoder")
    close(low, low_ref, "low")
    close(masks, masks_ref, "low")
    flips = ((masks > 0) != (masks_ref > 0)).float().mean().item()
    assert flips <= bounds["flips"], flips
    assert masks.shape == (3, *orig) and low_ref.abs().max() > 0.1  # unit-scale logits: not vacuous


@pytest.fixture(scope="module")
def loaded_pair(tmp_path_factory):
    """(arch, GLaMM's SAM, the GlammModel loaded from its checkpoint), float32, built once."""
    arch = ARCHS["tiny-padded-window"]()
    return (arch, *_checkpoint_pair(arch, tmp_path_factory.mktemp("glamm_sam")))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loaded_checkpoint_equals_glamms_sam_on_images(coco128, loaded_pair, dtype):
    pytest.importorskip("torchvision")  # the official preprocessing transcription resizes with it
    import copy

    arch, ref, model = loaded_pair
    ref, model = copy.deepcopy(ref).to(dtype), copy.deepcopy(model).to(dtype)
    for attn in ("eager", "sdpa"):
        set_attention(attn, model.sam)
        for image in _images(coco128):
            _end_to_end(ref, model, image, arch, dtype, F32 if dtype == torch.float32 else BF16)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loaded_checkpoint_vit_h_structure(coco128, tmp_path, dtype):
    """ViT-H's SAM structure at a narrower width (full-size SAM ViT-H takes ~95 s per image-encoder forward
    on 2 CPU cores): 1024 px, patch 16, a 64x64 grid in windows of 14 (padded to 70), global attention at
    blocks 1 and 3, relative positions, the full-size mask decoder (256 wide, 8 heads, MLP 2048)."""
    pytest.importorskip("torchvision")
    sam = {k: v for k, v in vars(get_arch("glamm-7b")).items() if k.startswith("sam_") or k == "prompt_dim"}
    sam.update(sam_hidden=128, sam_layers=4, sam_heads=2, sam_global_attn=(1, 3))
    arch = replace(get_arch("tiny"), **sam)
    ref, model = _checkpoint_pair(arch, tmp_path)
    ref, model = ref.to(dtype), model.to(dtype)
    for attn in ("eager", "sdpa"):
        set_attention(attn, model.sam)
        for image in _images(coco128):
            _end_to_end(ref, model, image, arch, dtype, F32 if dtype == torch.float32 else BF16)


def test_official_sam_settings_in_the_model():
    """SAM's two-way blocks use ``nn.LayerNorm`` at eps 1e-5 (OFFICIAL ``model/SAM/modeling/transformer.py``
    lines 134-144, 60); ``set_attention`` reaches the image encoder's attention, which transformers' SamModel
    chooses when built (``set_attn_implementation`` alone switches only the mask decoder)."""
    from transformers.models.sam.modeling_sam import SamVisionAttention, SamVisionSdpaAttention

    model = build_glamm("tiny")
    norms = [m for m in model.sam.mask_decoder.transformer.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 9 and {m.eps for m in norms} == {1e-5}
    for attn, cls in (("eager", SamVisionAttention), ("sdpa", SamVisionSdpaAttention),
                      ("eager", SamVisionAttention)):
        set_attention(attn, model.sam)
        assert {type(layer.attn) for layer in model.sam.vision_encoder.layers} == {cls}
        assert model.sam.mask_decoder.config._attn_implementation == attn
