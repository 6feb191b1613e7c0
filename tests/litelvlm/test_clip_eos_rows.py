"""[EOS] attention rows captured during the text forward equal the recomputed ones, in input order."""

from __future__ import annotations

import torch

TEXTS = ["a red square on the left", "dog", "the second cup from the right of the table", "two"]


def test_captured_rows_equal_recomputed_bit_for_bit_in_one_batch(tiny_hf_clip):
    # as the sink study calls it
    captured = tiny_hf_clip.encode_text(TEXTS, batch_size=len(TEXTS), eos_rows=True)
    plain = tiny_hf_clip.encode_text(TEXTS, batch_size=len(TEXTS))
    assert captured.eos_rows is not None and len(captured.eos_rows) == plain.num_layers
    for b in range(plain.num_layers):
        assert torch.equal(captured.eos_attention(b), plain.eos_attention(b))
    assert torch.equal(captured.text_embeds, plain.text_embeds)


def test_captured_rows_follow_the_input_order_across_batches(tiny_hf_clip):
    captured = tiny_hf_clip.encode_text(TEXTS, batch_size=2, eos_rows=True)  # two length-sorted batches
    plain = tiny_hf_clip.encode_text(TEXTS, batch_size=2)
    for b in range(plain.num_layers):  # each batch's rows span its own width: float rounding only
        torch.testing.assert_close(captured.eos_attention(b), plain.eos_attention(b), rtol=1e-6, atol=1e-7)


def test_open_clip_falls_back_to_recomputation(tiny_open_clip_dir):
    from litelvlm.clip import load_clip

    clip = load_clip(f"local-dir:{tiny_open_clip_dir}", "open_clip")
    t = clip.encode_text(["a dog"], eos_rows=True)
    assert t.eos_rows is None and t.eos_attention(0).shape[:2] == (1, clip.text_heads)
