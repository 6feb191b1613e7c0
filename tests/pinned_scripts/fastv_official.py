"""FastV's in-place pruning on a LLaMA decoder as FastV's own transformers copy runs it: transformers 4.31.0
(the version FastV's LLaVA pins and its ``src/transformers`` copy is, ``__version__ = "4.31.0"``); run by
``tests/pinned_env.run_pinned``. Imports the pinned packages only.

pkunlp-icler/FastV @ d165972 ``src/transformers/src/transformers/models/llama/modeling_llama.py``
(``LlamaModel.forward``): the mask of the whole sequence (L673-676), the decoder loop (L693-) whose layers
return their attentions (``output_attentions=True``: 4.31's eager ``LlamaAttention``, its only kernel), and
the in-place branch L730-760: at layer ``AGG_LAYER`` the head-averaged attention of the last token over the
image tokens ``[SYS_LENGTH, SYS_LENGTH + IMAGE_TOKEN_LENGTH)`` ranks them, the top ``ATTENTION_RANK`` are kept
with every other token, sorted, hidden states filtered, ``position_ids = keep_indexs`` and a causal mask of
the new length. The pinned ``LlamaModel`` (built from the config values, loaded with the case's tensors and
cast to the embeddings' dtype) supplies the layers, the mask and the final norm. FastV's copy changes one line
of 4.31's ``LlamaAttention.forward``: L319 ``self.rotary_emb(value_states, seq_len=1000)`` for 4.31's
``seq_len=kv_seq_len`` (the kept tokens keep their original positions, past the pruned length: stock 4.31
raises an IndexError there); :class:`FastVRotary` makes that call on each layer's own rotary module.

For each case (config, state dict, ``inputs_embeds``, ``sys_length``, ``image_length``) and each layer ``K``
of ``case["ks"]`` it hands back the ranked row (the last token's head-averaged attention over the image
tokens at layer ``K - 1``) and the kept image tokens (``topk(rank)`` sorted, minus ``sys_length``) for every
rank in ``case["ranks"]``; for each ``(K, rank)`` of ``case["loops"]`` the whole loop's ``keep_indexs`` and
normed final states.

usage: fastv_official.py CASES.pt OUT.pt
"""

import sys

import torch
from transformers import LlamaConfig, LlamaModel

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)


class FastVRotary(torch.nn.Module):
    """A layer's 4.31 ``LlamaRotaryEmbedding`` called as FastV's L319 calls it."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, seq_len=None):
        return self.inner(x, seq_len=1000)


def fastv_loop(model, inputs_embeds, sys_length, image_length, agg_layer, attention_rank):
    """L623-760 (no cache, batch 1, ``FASTV_INPLACE``): (``keep_indexs``, the normed last state, the
    layer ``agg_layer - 1`` attentions)."""
    batch_size, seq_length, _ = inputs_embeds.shape
    seq_length_with_past = seq_length
    device = inputs_embeds.device
    position_ids = torch.arange(0, seq_length, dtype=torch.long, device=device).unsqueeze(0)
    attention_mask = torch.ones((batch_size, seq_length_with_past), dtype=torch.bool, device=device)
    attention_mask = model._prepare_decoder_attention_mask(attention_mask, (batch_size, seq_length),
                                                           inputs_embeds, 0)
    hidden_states = inputs_embeds
    keep_indexs, seen, layer_outputs = None, None, None
    for idx, decoder_layer in enumerate(model.layers):
        if idx < agg_layer:
            new_attention_mask = attention_mask
        elif idx == agg_layer:
            last_layer_attention = layer_outputs[1]
            seen = last_layer_attention
            last_layer_attention_avg = torch.mean(last_layer_attention, dim=1)[0]
            last_layer_attention_avg_last_tok = last_layer_attention_avg[-1]
            last_layer_attention_avg_last_tok_image = last_layer_attention_avg_last_tok[
                sys_length:sys_length + image_length]
            top_attention_rank_index = last_layer_attention_avg_last_tok_image.topk(
                attention_rank).indices + sys_length
            keep_indexs = torch.cat((torch.arange(sys_length, device=device), top_attention_rank_index,
                                     torch.arange(sys_length + image_length, seq_length_with_past,
                                                  device=device)))
            keep_indexs = keep_indexs.sort().values
            new_seq_length = keep_indexs.shape[0]
            hidden_states = hidden_states[:, keep_indexs, :]
            position_ids = keep_indexs.unsqueeze(0)
            new_attention_mask = model._prepare_decoder_attention_mask(None, (batch_size, new_seq_length),
                                                                       inputs_embeds, 0)
        layer_outputs = decoder_layer(hidden_states, attention_mask=new_attention_mask,
                                      position_ids=position_ids, past_key_value=None,
                                      output_attentions=True, use_cache=False)
        hidden_states = layer_outputs[0]
    return keep_indexs, model.norm(hidden_states), seen


def main(cases, out) -> None:
    results = []
    for case in torch.load(cases, weights_only=False):
        model = LlamaModel(LlamaConfig(**case["config"])).eval()
        missing, unexpected = model.load_state_dict(case["state"], strict=False)
        if unexpected or any(not k.endswith("rotary_emb.inv_freq") for k in missing):
            raise RuntimeError(f"not the same module tree: missing {missing}, unexpected {unexpected}")
        x = case["x"]
        model = model.to(x.dtype)
        for layer in model.layers:
            layer.self_attn.rotary_emb = FastVRotary(layer.self_attn.rotary_emb)
        s, n = case["sys_length"], case["image_length"]
        rows, kept, loops = {}, {}, {}
        with torch.no_grad():
            for k in case["ks"]:
                # the first ``k`` layers of the loop (nothing pruned before ``AGG_LAYER`` = k): its attentions
                _, _, attentions = fastv_loop(model, x, s, n, k, n)
                row = torch.mean(attentions, dim=1)[0][-1][s:s + n]
                rows[k] = row
                kept[k] = {r: row.topk(r).indices.sort().values for r in case["ranks"]}
            for k, rank in case["loops"]:
                keep, final, _ = fastv_loop(model, x, s, n, k, rank)
                loops[(k, rank)] = (keep, final)
        results.append({"rows": rows, "kept": kept, "loops": loops})
    save(out, results)


if __name__ == "__main__":
    main(*sys.argv[1:])
