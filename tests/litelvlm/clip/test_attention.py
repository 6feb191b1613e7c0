"""CLIP's 4.x eager attention (``litelvlm.clip.attention``) against a transcription of transformers v4.28.1's
``CLIPAttention.forward``, and its selection by the numerics (``litelvlm.lvlm.numerics.set_attention``).

The transcription: huggingface/transformers v4.28.1 ``src/transformers/models/clip/modeling_clip.py``
L260-336 (``CLIPAttention.forward``; the shape checks left out), with the masks of L717-723 (the text
tower's ``_build_causal_attention_mask`` L755-762 and ``_expand_mask`` L49-60). 4.31.0, 4.37.2 and 4.41.0
(the official pins of the LLaVA-based methods and of VideoGLaMM) hold the same statements.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModel
from transformers.models.clip.modeling_clip import CLIPAttention, eager_attention_forward

from litelvlm.clip.attention import NAME, clip_attention, register
from litelvlm.lvlm.numerics import set_attention


def official_forward(self, hidden_states, attention_mask=None, causal_attention_mask=None,
                     output_attentions=False):
    """transformers v4.28.1 ``modeling_clip.py`` L260-336, ``CLIPAttention.forward`` (the shape checks left
    out)."""
    bsz, tgt_len, embed_dim = hidden_states.size()

    def _shape(tensor, seq_len, bsz):   # L257-258
        return tensor.view(bsz, seq_len, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    query_states = self.q_proj(hidden_states) * self.scale                                   # L272
    key_states = _shape(self.k_proj(hidden_states), -1, bsz)
    value_states = _shape(self.v_proj(hidden_states), -1, bsz)
    proj_shape = (bsz * self.num_heads, -1, self.head_dim)
    query_states = _shape(query_states, tgt_len, bsz).view(*proj_shape)
    key_states = key_states.view(*proj_shape)
    value_states = value_states.view(*proj_shape)
    src_len = key_states.size(1)
    attn_weights = torch.bmm(query_states, key_states.transpose(1, 2))                       # L282
    if causal_attention_mask is not None:                                                    # L291-298
        attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, src_len) + causal_attention_mask
        attn_weights = attn_weights.view(bsz * self.num_heads, tgt_len, src_len)
    if attention_mask is not None:                                                           # L300-306
        attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, src_len) + attention_mask
        attn_weights = attn_weights.view(bsz * self.num_heads, tgt_len, src_len)
    attn_weights = nn.functional.softmax(attn_weights, dim=-1)                               # L308
    attn_weights_reshaped = attn_weights.view(bsz, self.num_heads, tgt_len, src_len) if output_attentions \
        else None
    attn_probs = nn.functional.dropout(attn_weights, p=self.dropout, training=self.training)  # L320
    attn_output = torch.bmm(attn_probs, value_states)
    attn_output = attn_output.view(bsz, self.num_heads, tgt_len, self.head_dim)              # L330-332
    attn_output = attn_output.transpose(1, 2)
    attn_output = attn_output.reshape(bsz, tgt_len, embed_dim)
    attn_output = self.out_proj(attn_output)
    return attn_output, attn_weights_reshaped


def official_masks(padding: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The text tower's ``causal_attention_mask`` (L755-762) and expanded ``attention_mask`` (L49-60)."""
    bsz, seq_len = padding.shape
    causal = torch.empty(bsz, seq_len, seq_len, dtype=dtype)
    causal.fill_(torch.tensor(torch.finfo(dtype).min))
    causal = causal.triu_(1).unsqueeze(1)
    expanded = padding[:, None, None, :].expand(bsz, 1, seq_len, seq_len).to(dtype)
    inverted = 1.0 - expanded
    return causal, inverted.masked_fill(inverted.to(torch.bool), torch.finfo(dtype).min)


def _attention(width: int, heads: int, dtype: torch.dtype, seed: int = 0) -> CLIPAttention:
    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=width, num_attention_heads=heads, attn_implementation=register())
    module = CLIPAttention(config).eval()
    module.q_proj.weight.data.mul_(4.0)   # peaked rows, as CLIP's
    return module.to(dtype)


def _ours(module, x, mask=None):
    """transformers 5's ``CLIPAttention.forward`` running :func:`clip_attention` (the registered name)."""
    assert module.config._attn_implementation == NAME
    return module(x, attention_mask=mask)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("tokens", [1, 7, 50, 577])
@pytest.mark.parametrize("width,heads", [(48, 4), (128, 2)], ids=["head12", "head64"])
def test_equals_4_28_1_in_bf16_and_fp16(dtype, tokens, width, heads):
    """The vision tower's attention (no mask): output and probabilities bit for bit, odd lengths."""
    module = _attention(width, heads, dtype)
    x = torch.randn(2, tokens, width, generator=torch.Generator().manual_seed(tokens)).to(dtype)
    with torch.no_grad():
        out, weights = _ours(module, x)
        ref, ref_weights = official_forward(module, x, output_attentions=True)
    assert torch.equal(out, ref) and torch.equal(weights, ref_weights)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_equals_4_28_1_with_the_text_towers_masks(dtype):
    """Causal and right padding (lengths 13, 9, 1 of 13): transformers 5 passes one eager mask, 4.28.1 adds
    the causal and padding masks one after the other; the same output and probabilities."""
    module = _attention(32, 2, dtype)
    lengths = (13, 9, 1)
    padding = torch.stack([(torch.arange(13) < n).long() for n in lengths])
    x = torch.randn(3, 13, 32, generator=torch.Generator().manual_seed(1)).to(dtype)
    causal, expanded = official_masks(padding, dtype)
    one = torch.where(torch.tril(torch.ones(13, 13, dtype=torch.bool)) & padding[:, None, None, :].bool(),
                      torch.zeros((), dtype=dtype), torch.tensor(torch.finfo(dtype).min, dtype=dtype))
    with torch.no_grad():
        out, weights = _ours(module, x, one)
        ref, ref_weights = official_forward(module, x, expanded, causal, output_attentions=True)
    assert torch.equal(out, ref) and torch.equal(weights, ref_weights)


@pytest.mark.parametrize("width,heads", [(32, 2), (128, 2)], ids=["head16", "head64"])
def test_float32_equals_transformers_5s_eager_at_power_of_4_head_sizes(width, heads):
    """Float32 where d^-0.5 is a power of two (the tiny presets' head size 16, CLIP ViT-L's 64): the official
    order computes what transformers 5's eager kernel does, bit for bit (float32 results unchanged)."""
    module = _attention(width, heads, torch.float32)
    x = torch.randn(1, 50, width, generator=torch.Generator().manual_seed(2))
    shape = (1, 50, heads, width // heads)
    q, k, v = (p(x).view(shape).transpose(1, 2) for p in (module.q_proj, module.k_proj, module.v_proj))
    with torch.no_grad():
        ours = clip_attention(module, q, k, v, None, module.scale)
        theirs = eager_attention_forward(module, q, k, v, None, module.scale)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])


def test_set_attention_selects_it_for_clip_under_the_official_numerics():
    """``--attn eager``: the official CLIP kernel (``clip_softmax="official"``) or transformers 5's eager
    (``float32``, this project's earlier computation); ``sdpa``: SDPA (a CLIP inside another model, GLaMM's
    LLaVA: ``test_numerics.py``)."""
    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                                              image_size=28, patch_size=14))
    text = CLIPTextModel(CLIPTextConfig(hidden_size=32, num_attention_heads=2, num_hidden_layers=1))
    for attn, softmax, expected in (("eager", "official", NAME), ("eager", "float32", "eager"),
                                    ("sdpa", "official", "sdpa"), ("eager", "official", NAME),
                                    ("sdpa", "float32", "sdpa")):
        set_attention(attn, vision, text, clip_softmax=softmax)
        assert vision.config._attn_implementation == expected == text.config._attn_implementation


def test_the_text_tower_runs_4_28_1s_masks_under_the_name():
    """A padded text batch through ``CLIPTextModel`` under :data:`NAME` equals the model under transformers
    5's eager in float32 up to float rounding (bit for bit where the CPU's matrix kernels sum in the same
    order: AVX-512; within 1e-6 on AVX2 alone), and the masks reach the kernel: without them the padded rows
    differ by far more."""
    torch.manual_seed(0)
    model = CLIPTextModel(CLIPTextConfig(hidden_size=32, num_attention_heads=2, num_hidden_layers=2,
                                         intermediate_size=64)).eval()
    ids = torch.randint(1, 99, (2, 9))
    mask = torch.tensor([[1] * 9, [1] * 4 + [0] * 5])
    with torch.no_grad():
        set_attention("eager", model, clip_softmax="float32")
        eager = model(input_ids=ids, attention_mask=mask).last_hidden_state
        set_attention("eager", model, clip_softmax="official")
        ours = model(input_ids=ids, attention_mask=mask).last_hidden_state
        unmasked = model(input_ids=ids).last_hidden_state
    torch.testing.assert_close(ours, eager, rtol=0, atol=1e-5)
    assert (unmasked - eager).abs().max() > 1e-2
