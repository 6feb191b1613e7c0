"""IVC-Prune's Qwen2.5-VL prefill under the release IVC-Prune's bundled transformers modifies (4.51.3), on a
written random folder; run by ``tests/pinned_env.run_pinned``. Imports the pinned packages and this folder's
helpers only.

FireRedTeam/IVC-Prune @03afd9c ``transformers/src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py`` is
4.51.3's file with statements added: its ``Qwen2_5_VLRotaryEmbedding`` (L585-600), decoder layers, attention
classes (up to an ``output_value_states`` return) and ``get_rope_index`` are the release's, run here as the
pinned modules (eager attention: flash attention does not run on CPUs). Transcribed (as
``tests/litelvlm/methods/test_ivc_prune_qwen_official.py`` does for this project's environment): the value
states layer ``K-1`` hands out (L1103-1104, L866-873, L887-889, L895-918, L948-949), L1355-1390
(``calculate_avg_similarity_for_subset_einsum``) and ``IVCP_forward_flashattention``'s prefill L1436-1612 (the
selection L1487-1551, with the target count as a parameter, and the cut L1554-1561 before layer ``K``; the
layers run with an additive causal mask over the rows they hold, as flash attention's ``causal``).

usage: ivc_prune_qwen_official.py MODEL_DIR CASES.pt OUT.pt
"""

import sys

import torch
from official_qwen_rules import official_fill, official_lists, official_value_states  # this folder
from qwen2_5_vl_pinned import decoder, load

from results import save


@torch.no_grad()
def official_ivcp_forward(lm, inputs_embeds, position_ids, IVCP_k, start, length, target=None):
    """The prefill L1436-1612 on the pinned decoder (eager, additive causal mask over the rows held):
    (keep_indexs, the final normed states, the critical value states, the per-axis tables, the lists)."""
    seq = inputs_embeds.shape[1]
    device = inputs_embeds.device
    cache_position = torch.arange(0, seq, device=device)
    causal_mask = torch.full((seq, seq), torch.finfo(inputs_embeds.dtype).min,
                             device=device).triu(1)[None, None]
    hidden_states = inputs_embeds
    position_embeddings = lm.rotary_emb(hidden_states, position_ids)  # L1459
    seq_length_with_past = seq
    critical_value_states = lists = None
    keep_indexs = cache_position
    current_attention_mask, current_position_embeddings = causal_mask, position_embeddings
    for layer_idx, decoder_layer in enumerate(lm.layers):
        if layer_idx == IVCP_k:
            head_dim = lm.config.hidden_size // lm.config.num_attention_heads
            lists = official_lists(critical_value_states, position_embeddings, start, length,
                                   seq_length_with_past, head_dim, device)
            keep_indexs = official_fill(lists, start, length, seq_length_with_past, device, target)
            hidden_states = hidden_states[:, keep_indexs, :]
            position_ids = position_ids[:, :, keep_indexs]
            cos, sin = position_embeddings
            current_position_embeddings = cos[:, :, keep_indexs, :], sin[:, :, keep_indexs, :]
            current_attention_mask = causal_mask[:, :, keep_indexs][:, :, :, keep_indexs]
        if layer_idx == IVCP_k - 1:
            critical_value_states = official_value_states(decoder_layer, hidden_states)
        out = decoder_layer(hidden_states, attention_mask=current_attention_mask, position_ids=position_ids,
                            position_embeddings=current_position_embeddings)
        hidden_states = out[0]
    return dict(keep=keep_indexs, final=lm.norm(hidden_states), values=critical_value_states,
                tables=position_embeddings, lists=lists)


def main(folder, cases, out) -> None:
    spec = torch.load(cases, weights_only=False)
    model, info = load(folder, spec["dtype"], "eager")
    lm = decoder(model)
    with torch.no_grad():  # the tests' spread of the value similarities
        for layer in lm.layers:
            layer.self_attn.v_proj.weight.mul_(spec["value_scale"])
    results = []
    for case in spec["cases"]:
        position_ids, _ = model.get_rope_index(case["input_ids"][None], None, case["video_grid_thw"],
                                               case["second_per_grid_ts"])
        runs = [official_ivcp_forward(lm, case["embeds"], position_ids, case["layer"], case["image_start"],
                                      case["num_visual"], target) for target in case["targets"]]
        results.append({"position_ids": position_ids, "runs": runs})
    save(out, results, missing_keys=info["missing_keys"])


if __name__ == "__main__":
    main(*sys.argv[1:])
