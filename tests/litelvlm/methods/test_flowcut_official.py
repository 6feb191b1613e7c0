"""FlowCut against its official LLaVA code, run on random weights: every budget K = 1..N.

Official code: TungChintao/FlowCut @ a2ecd247cb3c605773ec317a0c246425b47abdbe (the PyPI package ``flowcut``
1.0.2 holds the same files), folder ``flowcut/``, transcribed verbatim below (trailing spaces dropped) and
executed:

* ``utils_flowcut.py`` L1-42 (``compute_score``, ``adaptive_prune_ratio``), whole;
* ``modeling_clip_flowcut.py`` L1-9 and L12-299 (``CLIPAttention_forward``, ``CLIPEncoderLayer_forward``,
  ``CLIPEncoder_forward``, ``CLIPVisionTransformer_forward``, ``apply_flowcut_config``): its L10 imports
  transformers 4.x's ``CLIPVisionTransformer`` (never used; transformers 5 folds it into ``CLIPVisionModel``,
  whose attributes the official forward reads), its L11 imports ``utils_flowcut`` (executed into the same
  namespace instead);
* ``clip_encoder.py`` L1-22 (``CLIPVisionTower_FlowCut.forward``), whole;
* ``main.py`` L36-42: ``target_tokens = target_num + 1`` (``pad`` images, ``select_feature='patch'``) and
  ``apply_flowcut_config``; L44-50 patch the CLIP classes, done here per module instance
  (``types.MethodType``).

The transcription is checked against the files of that commit in ``../shared/official/FlowCut`` (the
``official`` fixture, ``tests/official_code.py``).

Beside the official functions: transformers 4.37.2's ``CLIPAttention._shape`` (``src/transformers/models/clip/
modeling_clip.py`` L246-247), which the official attention calls and transformers 5 dropped, and LLaVA's
``CLIPVisionTower.feature_select`` for ``select_layer=-2``, ``select_feature='patch'`` (as vendored by
Theia-4869/VisPruner @ aefa01adc7c7ce6334e880c88225e90cede760d1,
``llava/model/multimodal_encoder/clip_encoder.py`` L36-43). The towers are transformers ``CLIPVisionModel``s
with random weights and odd image sizes (small grids keep every budget cheap); ours runs the same tower
through the vision-tower stage (``ClipTower``) from the same embeddings.
"""

from __future__ import annotations

import linecache
import types

import pytest
import torch

from litelvlm.methods import get_method
from litelvlm.pruning.tower import ClipTower

#: ``utils_flowcut.py``, L1-42
UTILS_SRC = r'''
import torch

CLIP_VISION_INPUTS_DOCSTRING = r"""
    Args:
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            Pixel values. Padding will be ignored by default should you provide it. Pixel values can be obtained using
            [`AutoImageProcessor`]. See [`CLIPImageProcessor.__call__`] for details.
        output_attentions (`bool`, *optional*):
            Whether or not to return the attentions tensors of all attention layers. See `attentions` under returned
            tensors for more detail.
        output_hidden_states (`bool`, *optional*):
            Whether or not to return the hidden states of all layers. See `hidden_states` under returned tensors for
            more detail.
        interpolate_pos_encoding (`bool`, *optional*, defaults `False`):
            Whether to interpolate the pre-trained position encodings.
        return_dict (`bool`, *optional*):
            Whether or not to return a [`~utils.ModelOutput`] instead of a plain tuple.
"""

def compute_score(cls_attn, semantic_attn, value):

    relation_score = cls_attn/cls_attn.sum(dim=-1, keepdim=True)
    semantic_score = semantic_attn/semantic_attn.sum(dim=-1, keepdim=True)

    final_score = (relation_score + semantic_score) * torch.norm(value, p=1, dim=-1)#/value.shape[-1]

    return final_score


def adaptive_prune_ratio(attn,rpl,target_num):

    N = attn.shape[-1]

    prob = attn/attn.sum(dim=-1,keepdim=True)
    entropy = -torch.sum(prob * torch.log(prob), dim=-1)
    entropy_max = torch.log(torch.tensor(N))
    entropy_ratio = entropy/entropy_max

    r = (N-target_num)/rpl**0.5 * (1-entropy_ratio**2)
    if r.shape[0] > 1: r = r.max(0).values

    return int(r.round())
'''  # noqa: E501

#: ``modeling_clip_flowcut.py``, L1-9
CLIP_HEAD_SRC = r'''
import torch
import torch.nn as nn
import torch.nn.functional as F
from dataclasses import dataclass,make_dataclass
from typing import Any, Optional, Tuple, Union, List
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling
from transformers.models.clip.configuration_clip import CLIPConfig,CLIPVisionConfig
from transformers.utils import add_start_docstrings_to_model_forward,replace_return_docstrings
from functools import wraps
'''

#: ``modeling_clip_flowcut.py``, L12-299
CLIP_SRC = r'''


def CLIPAttention_forward(
    self,
    hidden_states: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
    causal_attention_mask: Optional[torch.Tensor] = None,
    output_attentions: Optional[bool] = False,
) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[Tuple[torch.Tensor]]]:
    """Input shape: Batch x Time x Channel"""

    bsz, tgt_len, embed_dim = hidden_states.size()
    # get query proj
    query_states = self.q_proj(hidden_states) * self.scale
    key_states = self._shape(self.k_proj(hidden_states), -1, bsz)
    value_states = self._shape(self.v_proj(hidden_states), -1, bsz)

    value_metric = value_states.clone()

    proj_shape = (bsz * self.num_heads, -1, self.head_dim)
    query_states = self._shape(query_states, tgt_len, bsz).view(*proj_shape)
    key_states = key_states.view(*proj_shape)
    value_states = value_states.view(*proj_shape)

    src_len = key_states.size(1)
    attn_weights = torch.bmm(query_states, key_states.transpose(1, 2))

    cls_value = value_states[:,:1]
    semantic_weight = torch.bmm(cls_value, value_states.transpose(1,2))

    if attn_weights.size() != (bsz * self.num_heads, tgt_len, src_len):
        raise ValueError(
            f"Attention weights should be of size {(bsz * self.num_heads, tgt_len, src_len)}, but is"
            f" {attn_weights.size()}"
        )

    # apply the causal_attention_mask first
    if causal_attention_mask is not None:
        if causal_attention_mask.size() != (bsz, 1, tgt_len, src_len):
            raise ValueError(
                f"Attention mask should be of size {(bsz, 1, tgt_len, src_len)}, but is"
                f" {causal_attention_mask.size()}"
            )
        attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, src_len) + causal_attention_mask
        attn_weights = attn_weights.view(bsz * self.num_heads, tgt_len, src_len)

    if attention_mask is not None:
        if attention_mask.size() != (bsz, 1, tgt_len, src_len):
            raise ValueError(
                f"Attention mask should be of size {(bsz, 1, tgt_len, src_len)}, but is {attention_mask.size()}"
            )
        attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, src_len) + attention_mask
        attn_weights = attn_weights.view(bsz * self.num_heads, tgt_len, src_len)


    attn_weights = nn.functional.softmax(attn_weights, dim=-1)

    semantic_attn = nn.functional.softmax(semantic_weight, dim=-1).view(bsz, self.num_heads, src_len)

    if output_attentions:
        # this operation is a bit akward, but it's required to
        # make sure that attn_weights keeps its gradient.
        # In order to do so, attn_weights have to reshaped
        # twice and have to be reused in the following
        attn_weights_reshaped = attn_weights.view(bsz, self.num_heads, tgt_len, src_len)
        attn_weights = attn_weights_reshaped.view(bsz * self.num_heads, tgt_len, src_len)
    else:
        attn_weights_reshaped = None

    attn_probs = nn.functional.dropout(attn_weights, p=self.dropout, training=self.training)

    attn_output = torch.bmm(attn_probs, value_states)

    if attn_output.size() != (bsz * self.num_heads, tgt_len, self.head_dim):
        raise ValueError(
            f"`attn_output` should be of size {(bsz, self.num_heads, tgt_len, self.head_dim)}, but is"
            f" {attn_output.size()}"
        )

    attn_output = attn_output.view(bsz, self.num_heads, tgt_len, self.head_dim)
    attn_output = attn_output.transpose(1, 2)
    attn_output = attn_output.reshape(bsz, tgt_len, embed_dim)

    attn_output = self.out_proj(attn_output)

    return attn_output, attn_weights_reshaped, semantic_attn.mean(1), value_metric.mean(1)


def CLIPEncoderLayer_forward(
    self,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor,
    causal_attention_mask: torch.Tensor,
    output_attentions: Optional[bool] = False,
    target: int = 577,
    rpl: int = 22,
    cumulative_scores: torch.Tensor = None,
    all_keep_indices: torch.Tensor = None,
) -> Tuple[torch.FloatTensor]:
    """
    Args:
        hidden_states (`torch.FloatTensor`): input to the layer of shape `(batch, seq_len, embed_dim)`
        attention_mask (`torch.FloatTensor`): attention mask of size
            `(batch, 1, tgt_len, src_len)` where padding elements are indicated by very large negative values.
            `(config.encoder_attention_heads,)`.
        output_attentions (`bool`, *optional*):
            Whether or not to return the attentions tensors of all attention layers. See `attentions` under
            returned tensors for more detail.
    """
    residual = hidden_states

    hidden_states = self.layer_norm1(hidden_states)
    hidden_states, attn_weights, semantic_attn, v_metric = self.self_attn(
        hidden_states=hidden_states,
        attention_mask=attention_mask,
        causal_attention_mask=causal_attention_mask,
        output_attentions=output_attentions,
    )
    hidden_states = residual + hidden_states

    residual = hidden_states
    hidden_states = self.layer_norm2(hidden_states)
    hidden_states = self.mlp(hidden_states)
    hidden_states = residual + hidden_states

    # ==================================== FlowCut ========================================== #
    if hidden_states.shape[1] > target:

        cls_attention = attn_weights[:, :, 0, 1:].mean(dim=1)        # [B, N]

        scores = compute_score(cls_attention, semantic_attn[:,1:], v_metric[:,1:])  # [B, N]
        if cumulative_scores is None:
            cumulative_scores = scores.clone()
        else:
            cumulative_scores = 0.5*cumulative_scores+0.5*scores

        if not rpl%2:

            prune_num = adaptive_prune_ratio(cls_attention,rpl,target-1) if rpl else hidden_states.shape[1]
            target_num = max(hidden_states.shape[1]-prune_num, target)

            # keep 1 position for cls token
            _, keep_indices = torch.topk(cumulative_scores, target_num-1, dim=1)  # [B, target_num-1]

            keep_indices = keep_indices.sort(dim=1).values
            topk_states = torch.gather(hidden_states[:,1:,:], dim=1, index=keep_indices.unsqueeze(-1).expand(-1,-1,hidden_states.size(-1)))
            cumulative_scores = torch.gather(cumulative_scores, dim=1, index=keep_indices)
            cls_token = hidden_states[:,:1,:]

            all_keep_indices = torch.gather(all_keep_indices, dim=1, index=keep_indices)

            hidden_states = torch.cat([cls_token, topk_states], dim=1)

    # ==================================== FlowCut ========================================== #

    outputs = (hidden_states,)

    if output_attentions:
        outputs += (attn_weights,)

    return outputs, cumulative_scores, all_keep_indices

def CLIPEncoder_forward(
    self,
    inputs_embeds,
    attention_mask: Optional[torch.Tensor] = None,
    causal_attention_mask: Optional[torch.Tensor] = None,
    output_attentions: Optional[bool] = None,
    output_hidden_states: Optional[bool] = None,
    return_dict: Optional[bool] = None,
) -> Union[Tuple, BaseModelOutput]:

    # super().__init__()
    # self.config = config
    # self.layers = nn.ModuleList([CLIPEncoderLayer(config) for _ in range(config.num_hidden_layers)])
    # self.gradient_checkpointing = False

    output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
    output_hidden_states = (
        output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
    )
    return_dict = return_dict if return_dict is not None else self.config.use_return_dict

    encoder_states = () if output_hidden_states else None
    all_attentions = () if output_attentions else None

    hidden_states = inputs_embeds

    all_keep_indices = torch.arange(hidden_states.shape[1], device=hidden_states.device).unsqueeze(0).expand(hidden_states.shape[0],-1)
    cumulative_scores = None
    for idx, encoder_layer in enumerate(self.layers):
        remain_prune_layer = self.select_layer-idx-1
        if output_hidden_states:
            encoder_states = encoder_states + (hidden_states,)
        if self.gradient_checkpointing and self.training:
            layer_outputs, cumulative_scores, all_keep_indices = self._gradient_checkpointing_func(
                encoder_layer.__call__,
                hidden_states,
                attention_mask,
                causal_attention_mask,
                output_attentions,
                self.target,
                remain_prune_layer,
                cumulative_scores,
                all_keep_indices,
            )
        else:
            layer_outputs, cumulative_scores, all_keep_indices = encoder_layer(
                hidden_states,
                attention_mask,
                causal_attention_mask,
                output_attentions=output_attentions,
                target = self.target,
                rpl = remain_prune_layer,
                cumulative_scores = cumulative_scores,
                all_keep_indices = all_keep_indices,
            )

        hidden_states = layer_outputs[0]

        if output_attentions:
            all_attentions = all_attentions + (layer_outputs[1],)

    if output_hidden_states:
        encoder_states = encoder_states + (hidden_states,)

    if not return_dict:
        return tuple(v for v in [hidden_states, encoder_states, all_attentions] if v is not None) + (all_keep_indices,)

    return BaseModelOutput(
        last_hidden_state=hidden_states,
        hidden_states=encoder_states,
        attentions=all_attentions,
    ), all_keep_indices


@add_start_docstrings_to_model_forward(CLIP_VISION_INPUTS_DOCSTRING)
@replace_return_docstrings(output_type=BaseModelOutputWithPooling, config_class=CLIPVisionConfig)
def CLIPVisionTransformer_forward(
    self,
    pixel_values: Optional[torch.FloatTensor] = None,
    output_attentions: Optional[bool] = None,
    output_hidden_states: Optional[bool] = None,
    return_dict: Optional[bool] = None,
    **kwargs,
) -> Union[Tuple, BaseModelOutputWithPooling]:
    r"""
    Returns:

    """
    output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
    output_hidden_states = (
        output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
    )
    return_dict = return_dict if return_dict is not None else self.config.use_return_dict

    if pixel_values is None:
        raise ValueError("You have to specify pixel_values")

    hidden_states = self.embeddings(pixel_values, **kwargs)
    hidden_states = self.pre_layrnorm(hidden_states)

    encoder_outputs, all_keep_indices = self.encoder(
        inputs_embeds=hidden_states,
        output_attentions=output_attentions,
        output_hidden_states=output_hidden_states,
        return_dict=return_dict,
    )

    last_hidden_state = encoder_outputs[0]
    pooled_output = last_hidden_state[:, 0, :]
    pooled_output = self.post_layernorm(pooled_output)

    if not return_dict:
        return (last_hidden_state, pooled_output) + encoder_outputs[1:] + (all_keep_indices, )

    return BaseModelOutputWithPooling(
        last_hidden_state=last_hidden_state,
        pooler_output=pooled_output,
        hidden_states=encoder_outputs.hidden_states,
        attentions=encoder_outputs.attentions,
    ), all_keep_indices


def apply_flowcut_config(model, target_tokens):

    model.vision_model.encoder.target = target_tokens
    model.vision_model.encoder.select_layer = len(model.vision_model.encoder.layers) - 2
'''  # noqa: E501

#: ``clip_encoder.py``, L1-22
ENCODER_SRC = r'''
import torch
import torch.nn as nn

class CLIPVisionTower_FlowCut(nn.Module):

    @torch.no_grad()
    def forward(self, images):

        if type(images) is list:
            image_features = []
            keep_indices = []
            for image in images:
                image_forward_out, keep_index = self.vision_tower(image.to(device=self.device, dtype=self.dtype).unsqueeze(0), output_hidden_states=True)
                image_feature = self.feature_select(image_forward_out).to(image.dtype)
                image_features.append(image_feature)
                keep_indices.append(keep_index)
        else:
            outputs, keep_indices = self.vision_tower(images.to(device=self.device, dtype=self.dtype), output_hidden_states=True, output_attentions=True)
            hidden_states = self.feature_select(outputs)
            # keep_indices = outputs.all_keep_indices

        return hidden_states.to(images.dtype), keep_indices
'''  # noqa: E501


def _shape(self, tensor: torch.Tensor, seq_len: int, bsz: int):
    """transformers 4.37.2 ``CLIPAttention._shape`` (src/transformers/models/clip/modeling_clip.py
    L246-247)."""
    return tensor.view(bsz, seq_len, self.num_heads, self.head_dim).transpose(1, 2).contiguous()


def _run(source: str, name: str, ns: dict) -> None:
    """Execute an official file's text into ``ns``, its lines registered where ``inspect`` finds them
    (transformers' docstring decorators read the decorated function's source)."""
    name = f"<FlowCut/flowcut/{name}>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(compile(source, name, "exec"), ns)


def official_namespace() -> dict:
    """The official modules, executed: ``utils_flowcut``'s names, then ``modeling_clip_flowcut``'s,
    ``clip_encoder``'s."""
    ns: dict = {}
    _run(UTILS_SRC.lstrip("\n"), "utils_flowcut.py", ns)
    _run(CLIP_HEAD_SRC.lstrip("\n") + CLIP_SRC, "modeling_clip_flowcut.py", ns)
    _run(ENCODER_SRC.lstrip("\n"), "clip_encoder.py", ns)
    return ns


class OfficialTower:
    """LLaVA's ``CLIPVisionTower`` (``select_layer=-2``, ``'patch'``) with FlowCut's official forwards on the
    modules of a transformers ``CLIPVisionModel`` (main.py L44-54, per instance)."""

    select_layer, select_feature = -2, "patch"

    def __init__(self, vm) -> None:
        self.ns, self.vm = official_namespace(), vm
        for layer in vm.encoder.layers:
            layer.forward = types.MethodType(self.ns["CLIPEncoderLayer_forward"], layer)
            layer.self_attn.forward = types.MethodType(self.ns["CLIPAttention_forward"], layer.self_attn)
            layer.self_attn._shape = types.MethodType(_shape, layer.self_attn)
        vm.encoder.forward = types.MethodType(self.ns["CLIPEncoder_forward"], vm.encoder)
        self.device, self.dtype = vm.pre_layrnorm.weight.device, vm.pre_layrnorm.weight.dtype

    def vision_tower(self, images, **kwargs):
        """``CLIPVisionModel.forward`` of transformers 4.x, which calls the patched
        ``CLIPVisionTransformer.forward``."""
        return self.ns["CLIPVisionTransformer_forward"](self.vm, images, **kwargs)

    def feature_select(self, image_forward_outs):
        image_features = image_forward_outs.hidden_states[self.select_layer]
        if self.select_feature == 'patch':
            image_features = image_features[:, 1:]
        return image_features

    def __call__(self, images: torch.Tensor, target_num: int):
        """main.py L39 and L42 (``pad`` images, ``'patch'``), then ``CLIPVisionTower_FlowCut.forward``."""
        self.ns["apply_flowcut_config"](types.SimpleNamespace(vision_model=self.vm),
                                        target_tokens=target_num + 1)
        return self.ns["CLIPVisionTower_FlowCut"].forward(self, images)


def _tower(layers: int, image_size: int, width: int = 32, heads: int = 4, seed: int = 0):
    """A random transformers CLIP vision tower (eager attention), a random image and the embeddings after the
    pre-norm (the trace's ``hidden_states[0]``)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed)
    cfg = CLIPVisionConfig(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                           num_attention_heads=heads, image_size=image_size, patch_size=14,
                           attn_implementation="eager")
    vm = CLIPVisionModel(cfg).eval()
    # a spread of attention (random init is near uniform): the scores must discriminate
    for p in vm.parameters():
        if p.dim() > 1:
            p.data.normal_(0, 0.3)
    pixels = torch.randn(1, 3, image_size, image_size)
    with torch.no_grad():
        hidden0 = vm.pre_layrnorm(vm.embeddings(pixels))
    return vm, pixels, hidden0


def compare_every_budget(layers: int, image_size: int, budgets=None, **kw) -> int:
    """Ours (the registered method on ``ClipTower``) against the official forward at each budget: the same
    kept patches, in the same order, and the same feature-layer tokens (bit for bit: the same operations).
    Returns how many budgets pruned."""
    vm, pixels, hidden0 = _tower(layers, image_size, **kw)
    official, flowcut = OfficialTower(vm), get_method("flowcut")
    n = hidden0.shape[1] - 1
    pruned = 0
    for k in budgets or range(1, n + 1):
        feats, keep = official(pixels, k)
        ours = flowcut.select(ClipTower(list(vm.encoder.layers), hidden0, feature_layer=-2), k)
        assert ours.indices.tolist() == sorted(set(ours.indices.tolist())) and len(ours) == k, k
        # nothing pruned: the official index list is the unpruned sequence's, its [CLS] slot counted
        if k == n:
            assert torch.equal(keep[0], torch.arange(n + 1)) and torch.equal(ours.indices, torch.arange(n))
        else:
            assert torch.equal(ours.indices, keep[0]), k
            pruned += 1
        assert feats.shape == (1, k, vm.config.hidden_size) and torch.equal(ours.features, feats[0]), k
    return pruned


@pytest.mark.parametrize("layers", [3, 5, 6])
def test_flowcut_is_the_official_code_at_every_budget(layers):
    """Towers of 3, 5 and 6 blocks (the official schedule prunes after blocks with an even count left: 0 | 0,
    2 | 1, 3), a 5x5 grid (image 70): every K = 1..25."""
    assert compare_every_budget(layers, 70) == 24


@pytest.mark.slow
def test_flowcut_is_the_official_code_at_every_budget_on_vit_l_depth():
    """ViT-L/14-336's depth and grid (24 blocks, 576 patches; width 64): every K = 1..576."""
    assert compare_every_budget(24, 336, width=64) == 575


def test_a_tower_too_shallow_for_the_official_schedule():
    """2 blocks (the tiny test towers): the official forward fails (``sqrt`` of rpl = -2 is complex), ours
    prunes to K after the last block it runs (the module's deviation), which is block 0 at the feature layer
    -2."""
    vm, pixels, hidden0 = _tower(2, 42)
    with pytest.raises((TypeError, NotImplementedError)):  # int() or round() of a complex tensor
        OfficialTower(vm)(pixels, 4)
    ours = get_method("flowcut").select(ClipTower(list(vm.encoder.layers), hidden0, feature_layer=-2), 4)
    assert len(ours) == 4 and ours.features.shape == (4, 32)


def test_the_transcription_is_the_official_files(official):
    root = official.tree("FlowCut") / "flowcut"   # ../shared/official/FlowCut, TungChintao/FlowCut @ a2ecd24

    def lines(name: str, first: int, last: int) -> str:
        # lines first..last (1-based), trailing spaces dropped
        text = (root / name).read_text().split("\n")[first - 1:last]
        return "\n".join(line.rstrip() for line in text).strip("\n")

    assert UTILS_SRC.strip("\n") == lines("utils_flowcut.py", 1, 42)
    assert CLIP_HEAD_SRC.strip("\n") == lines("modeling_clip_flowcut.py", 1, 9)
    assert CLIP_SRC.strip("\n") == lines("modeling_clip_flowcut.py", 12, 299)
    assert ENCODER_SRC.strip("\n") == lines("clip_encoder.py", 1, 22)
