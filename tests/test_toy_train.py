"""The toy CLIP's training batches: true positives, hard negatives false in their own scene, and a
truth table that masks exactly the captions true of another image."""

from __future__ import annotations

import numpy as np
import torch

from litelvlm.clip.random_init import write_clip_tokenizer
from litelvlm.toy.scenes import make_scene, one_attribute_counterfactuals, referring_expressions
from litelvlm.toy.train import BatchSampler, ToyTrainArgs, _strip, contrastive_loss, render_pixels


def test_one_attribute_counterfactuals_are_false_and_one_change_away():
    for i in range(20):
        scene = make_scene(7, i)
        for t in range(len(scene.objects)):
            expr = referring_expressions(scene, t)[0]
            cfs = one_attribute_counterfactuals(scene, expr)
            assert cfs and len(set(cfs)) == len(cfs)
            for e in cfs:
                assert not scene.is_true(e)
                changed = sum(a != b for a, b in zip((e.shape, e.colour, e.size, e.cell),
                                                     (expr.shape, expr.colour, expr.size, expr.cell)))
                assert changed == 1


def test_batch_sampler_positives_negatives_and_truth(tmp_path):
    full = [make_scene(7, i, 112) for i in range(12)]
    scenes = [_strip(s) for s in full]
    pixels = render_pixels([s.image for s in full], 56)
    a = ToyTrainArgs(batch_size=6, positives=2, hard_negatives=3)
    tok = write_clip_tokenizer(tmp_path / "tok")
    sampler = BatchSampler(scenes, pixels, tok, a)
    rng = np.random.default_rng(0)
    px, (ids, mask), owner, truth = sampler(rng)
    assert px.shape == (6, 3, 56, 56) and px.dtype == torch.float32
    n_pos = len(owner)
    assert n_pos == 12 and truth.shape == (6, n_pos * 4) and ids.shape[0] == n_pos * 4
    # every positive is true of its own image; every hard negative is false of the image it came from
    assert truth[owner, torch.arange(n_pos)].all()
    neg_owner = owner.repeat_interleave(a.hard_negatives)
    assert not truth[neg_owner, n_pos + torch.arange(n_pos * 3)].any()
    # cached tokenisation equals the tokenizer's own output
    texts = [tok.decode(r[m.bool()], skip_special_tokens=True) for r, m in zip(ids[:3], mask[:3])]
    again = tok(texts)["input_ids"]
    for r, m, want in zip(ids[:3], mask[:3], again):
        assert r[m.bool()].tolist() == want
    # the same seed gives the same batch
    px2, (ids2, _), owner2, truth2 = BatchSampler(scenes, pixels, tok, a)(np.random.default_rng(0))
    assert torch.equal(ids, ids2) and torch.equal(owner, owner2) and torch.equal(truth, truth2)
    loss = contrastive_loss(torch.randn(6, n_pos * 4), owner, truth)
    assert torch.isfinite(loss) and loss > 0


def test_sharpen_attention_init_scales_only_vision_queries_and_keys():
    from transformers import CLIPModel

    from litelvlm.clip.random_init import hf_config
    from litelvlm.toy.train import arch_of, sharpen_attention_init

    torch.manual_seed(0)
    model = CLIPModel(hf_config(arch_of(ToyTrainArgs(vision_layers=1, text_layers=1, embed_dim=16))))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sharpen_attention_init(model, 4.0)
    for n, p in model.named_parameters():
        scaled = n.startswith("vision_model.") and n.endswith(("q_proj.weight", "k_proj.weight"))
        assert torch.equal(p, before[n] * 4.0 if scaled else before[n]), n
    assert any(n.endswith("q_proj.weight") and n.startswith("vision_model.") for n in before)
