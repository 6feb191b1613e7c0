"""The project's SAM (transformers' ``SamModel`` loaded by key mapping) equals GLaMM's own SAM network on the
same random weights: image embeddings, dense positional encoding and low-resolution masks.

GLaMM's modules are transcribed in ``tests/official_sam.py`` (sejong-rcv/LiteLVLM @5896153,
``model/SAM/modeling/*.py``), built as ``model/SAM/build_sam.py`` L66-104 builds them (``use_rel_pos``,
``LayerNorm(eps=1e-6)``, 3 multimask outputs, a depth-2 two-way transformer) at the project's small
architectures, and called as ``model/GLaMM.py`` L230-242 calls them (each ``[SEG]`` embedding the only
sparse prompt through ``text_embeds``, no mask, ``multimask_output=False``). The weights are random
(relative position tables included, which SAM initialises to zero), written with GLaMM's key names and
loaded into the project's model with the loader's own mapping (``litelvlm.lvlm.checkpoint.sam_key_to_hf``,
strict).

Tolerances: float32 1e-5 (measured: at most 1.1e-6 on image embeddings of scale 2-2.6 and 4.2e-6 on mask
logits of scale 0.4-0.5; the two implementations order their matmuls and reshapes differently);
bfloat16 0.05 (measured: at most 0.023 on the embeddings, a few bfloat16 steps at that scale).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import official_sam as off  # noqa: E402

from litelvlm.lvlm.build import build_glamm  # noqa: E402
from litelvlm.lvlm.checkpoint import sam_key_to_hf  # noqa: E402
from litelvlm.lvlm.config import get_arch  # noqa: E402
from litelvlm.lvlm.numerics import set_attention  # noqa: E402


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
            p.copy_(torch.randn_like(p) * (p[0].numel() ** -0.5 if p.ndim > 1 else 0.5))  # unit-scale activations
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
        sparse, dense = ref["prompt_encoder"](points=None, boxes=None, masks=None, text_embeds=prompts.unsqueeze(1))
        low_ref, _ = ref["mask_decoder"](image_embeddings=emb_ref, image_pe=ref["prompt_encoder"].get_dense_pe(),
                                         sparse_prompt_embeddings=sparse.to(dtype), dense_prompt_embeddings=dense,
                                         multimask_output=False)
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
