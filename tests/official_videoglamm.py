"""VideoGLaMM's inference-path statements, transcribed for tests only (never imported by the library).

Source: mbzuai-oryx/VideoGLaMM @6b15b1e7f75009d0e1a858ac08e28021c4faaf11, under ``VideoGLaMM/``. Each piece is
preceded by its file and lines; statements are kept unchanged except where noted: ``einops.rearrange`` (not
installed here) is replaced by :func:`rearrange`, which implements the three patterns used; ``.cuda()`` calls
are dropped; ``encode_videos`` reads the tower width from ``self.D`` (one added line; the original hard-codes
1408); the InternVideo2 classes keep the non-fused, non-flash, non-checkpointed branches the VideoGLaMM config
selects (``internvideo2_stage2_config_vision.py`` L22, L56-58) and ``DropPath`` is left out (identity in
eval). VideoGLaMM is under the Apache License 2.0 (its LICENSE); InternVideo2 is Copyright 2024
OpenGVLab/InternVideo.
"""
# ruff: noqa

import dataclasses
import math
from enum import Enum, auto
from functools import partial
from typing import List

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGE_TOKEN_INDEX = -200  # model/videogpt_plus/constants.py L12
CHUNK_SIZE = 4            # constants.py L6


def rearrange(x, pattern, **axes):
    """Stand-in for einops.rearrange on the patterns arch.py uses."""
    if pattern == '(b t) c h w -> b t c h w':
        b = axes['b']
        return x.reshape(b, x.shape[0] // b, *x.shape[1:])
    if pattern == 'b (t l) d -> (b t) l d':
        t = axes['t']
        return x.reshape(x.shape[0] * t, x.shape[1] // t, x.shape[2])
    if pattern == '(b t) l d -> b (t l) d':
        if 'b' in axes:
            b = axes['b']
            return x.reshape(b, (x.shape[0] // b) * x.shape[1], x.shape[2])
        t = axes['t']
        return x.reshape(x.shape[0] // t, t * x.shape[1], x.shape[2])
    if pattern == '(b t) l d -> b t l d':
        b = axes['b']
        return x.reshape(b, x.shape[0] // b, *x.shape[1:])
    raise ValueError(pattern)


# -- model/videogpt_plus/model/arch.py L88-96 ------------------------------------------------------
def apply_adaptive_avg_pooling(x, shape=(12, 12)):
    b, num_tokens, c = x.shape
    h = int(math.sqrt(num_tokens))
    assert h * h == num_tokens
    x = x.permute(0, 2, 1).reshape(b, -1, h, h)
    x = F.adaptive_avg_pool2d(x, shape)
    x = x.flatten(2).transpose(1, 2)

    return x


class OfficialArch:
    """``VideoGPTPlusMetaForCausalLM.encode_videos`` / ``project`` (arch.py L121-191) on our modules."""

    def __init__(self, vision_tower, image_vision_tower, mm_projector, image_mm_projector):
        self._vt, self._ivt = vision_tower, image_vision_tower
        self.mm_projector, self.image_mm_projector = mm_projector, image_mm_projector

    def get_model(self):
        return self

    def get_vision_tower(self):
        return self._vt

    def get_image_vision_tower(self):
        return self._ivt

    # arch.py L121-151
    def encode_videos(self, frames, context_images, batch_size):
        frames = rearrange(frames, '(b t) c h w -> b t c h w', b=batch_size)
        num_chunks = frames.shape[1] // CHUNK_SIZE # T//C
        L = 256  # Number of features per frame from InternVideo2-Stage2_1B-224p-f4
        D = 1408  # Feature dimension of InternVideo2-Stage2_1B-224p-f4
        D = self.D  # added: the tower's width (1408 for the real one; tests run a tiny tower)

        video_features = torch.zeros(batch_size, num_chunks, CHUNK_SIZE * L, D, device=frames.device,
                                     dtype=frames.dtype)
        for i in range(batch_size):
            cur_video = frames[i]  # Current video of shape (t, c, h, w)
            chunks = cur_video.chunk(num_chunks, dim=0)
            # New batch dimension for processing all chunks at once
            chunk_batch = torch.stack(chunks, dim=0)  # (num_chunks, CHUNK_SIZE, c, h, w)
            chunk_features = self.get_model().get_vision_tower()(chunk_batch)  # (num_chunks, CHUNK_SIZE*L, D)
            # Store the features in the output tensor - Only storing feature - remove cls
            video_features[i] = chunk_features[:, 1:] # store tensor of shape (num_chunks, CHUNK_SIZE*L, D)

        context_image_features = self.get_model().get_image_vision_tower()(context_images,
                                                                           select_feature="patch")
        context_image_features = rearrange(context_image_features, '(b t) l d -> b t l d', b=batch_size)

        return video_features, context_image_features

    # arch.py L164-191 (the video branch)
    def project(self, video_features, context_features=None, input_type="image"):
        if input_type == "video":
            video_features = self.get_model().mm_projector(video_features)
            video_features = rearrange(video_features, 'b (t l) d -> (b t) l d', t=4)  # t=4 - chunk size
            # Feature pooling from 256 to 64
            video_features = apply_adaptive_avg_pooling(video_features, shape=(8, 8))
            video_features = rearrange(video_features, '(b t) l d -> b (t l) d', t=4)  # t=4 - chunk size

            context_image_features = self.get_model().image_mm_projector(context_features)
            context_image_features = apply_adaptive_avg_pooling(context_image_features,
                                                                # Feature pooling from 576 to 144
                                                                shape=(12, 12))
            context_image_features = rearrange(context_image_features, '(b t) l d -> b (t l) d',
                                               b=video_features.shape[0])

            merged_features = []
            for i in range(context_image_features.shape[0]):
                merged_features.append(context_image_features[i])

            for i in range(video_features.shape[0]):
                merged_features.append(video_features[i])

            merged_features = torch.cat(merged_features, dim=0).unsqueeze(0)

            return merged_features


# -- model/videogpt_plus/conversation.py L6-96, L124-132 (MPT style only) ----------------------------
class SeparatorStyle(Enum):
    """Different separator style."""
    SINGLE = auto()
    TWO = auto()
    MPT = auto()
    PLAIN = auto()


@dataclasses.dataclass
class Conversation:
    """A class that keeps all conversation history."""
    system: str
    roles: List[str]
    messages: List[List[str]]
    offset: int
    sep_style: SeparatorStyle = SeparatorStyle.SINGLE
    sep: str = "###"
    sep2: str = None
    version: str = "Unknown"

    skip_next: bool = False

    def get_prompt(self):
        messages = self.messages
        if self.sep_style == SeparatorStyle.MPT:
            ret = self.system + self.sep
            for role, message in messages:
                if message:
                    if type(message) is tuple:
                        message, _, _ = message
                    ret += role + message + self.sep
                else:
                    ret += role
        else:
            raise ValueError(f"Invalid style: {self.sep_style}")

        return ret

    def append_message(self, role, message):
        self.messages.append([role, message])

    def copy(self):
        return Conversation(
            system=self.system,
            roles=self.roles,
            messages=[[x, y] for x, y in self.messages],
            offset=self.offset,
            sep_style=self.sep_style,
            sep=self.sep,
            sep2=self.sep2,
            version=self.version)


conv_phi3_instruct = Conversation(
    system="""<|system|>\nYou are a helpful AI assistant.""",
    roles=("\n<|user|>\n", "\n<|assistant|>\n"),
    version="phi3",
    messages=(),
    offset=0,
    sep_style=SeparatorStyle.MPT,
    sep="<|end|>",
)


# -- model/videogpt_plus/mm_utils.py L17-37 ------------------------------------------------------------
def tokenizer_image_token(prompt, tokenizer, image_token_index=IMAGE_TOKEN_INDEX, return_tensors=None):
    prompt_chunks = [tokenizer(chunk).input_ids for chunk in prompt.split('<image>')]

    def insert_separator(X, sep):
        return [ele for sublist in zip(X, [sep]*len(X)) for ele in sublist][:-1]

    input_ids = []
    offset = 0
    if len(prompt_chunks) > 0 and len(prompt_chunks[0]) > 0 and prompt_chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        input_ids.append(prompt_chunks[0][0])

    for x in insert_separator(prompt_chunks, [image_token_index] * (offset + 1)):
        input_ids.extend(x[offset:])

    if return_tensors is not None:
        if return_tensors == 'pt':
            return torch.tensor(input_ids, dtype=torch.long)
        raise ValueError(f'Unsupported tensor type: {return_tensors}')

    return input_ids


# -- utils/conv_generator.py L86-111 (ConvGenerator_VideoGPTPlus, phi3, video) --------------------------
class ConvGenerator_VideoGPTPlus:
    DEFAULT_VIDEO_TOKEN = "<video>"
    DEFAULT_IMAGE_TOKEN = "<image>"
    NUM_FRAMES = 16

    def __init__(self, use_mm_start_end=False):
        self.use_mm_start_end = use_mm_start_end
        self.default_conversation = conv_phi3_instruct
        self.tokenizer_image_token = tokenizer_image_token

    def apply_for_chat(self, prompt_text, type='video', tokenizer=None):
        if type == 'video':

            # Add video token to text prompt
            prompt = self.DEFAULT_VIDEO_TOKEN + "\n" + prompt_text
            # NOTE: The value given here for MAX_IMAGE_LENGTH does not matter due to the way how it is handled
            # in In arch.py. It only needs to be a value greater than 2
            replace_token, vid_replace_token = (self.DEFAULT_IMAGE_TOKEN,
                                                self.DEFAULT_IMAGE_TOKEN * self.NUM_FRAMES)
            prompt = prompt.replace(self.DEFAULT_IMAGE_TOKEN, replace_token)
            prompt = prompt.replace(self.DEFAULT_VIDEO_TOKEN, vid_replace_token)
            # Create conversation object
            conv = self.default_conversation.copy()
            conv.messages = []
            conv.append_message(conv.roles[0], prompt)
            conv.append_message(conv.roles[1], "")
            prompt = conv.get_prompt()

            # Tokenize conversation prompt
            input_ids = self.tokenizer_image_token(prompt, tokenizer, return_tensors="pt")
            input_ids = input_ids.unsqueeze(0)
        return input_ids


# -- eval_referdavis_infer.py L196 ----------------------------------------------------------------------
def referdavis_prompt(gt_caption):
    prompt_text = "What is {phrase} in this video? Please respond with segmentation masks.".format(
        phrase=gt_caption.lower())
    return prompt_text


# -- chat.py L421-427 then utils/enc_preprocessors.py L144-149: the LLM's frames of a clip -----------------
def llm_frames(np_images_, max_num_frames=16):
    if len(np_images_) > max_num_frames:
        new_np_images_idxs = np.linspace(0, len(np_images_)-1, max_num_frames, dtype=int)
        np_images_for_enc = [np_images_[i] for i in new_np_images_idxs]
    else:
        np_images_for_enc = np_images_
    pil_images = list(np_images_for_enc)
    if len(pil_images) > max_num_frames:
        pil_images = pil_images[:max_num_frames]
    elif len(pil_images) < max_num_frames:
        while len(pil_images) < max_num_frames:
            pil_images.append(pil_images[-1])
    return pil_images


# -- utils/sam_transforms.py L26-65 (model_type "sam2") with segment_anything/utils/transforms.py L27-34,
# L103-113
def sam_preprocess(x, pixel_mean=torch.Tensor([123.675, 116.28, 103.53]).view(-1, 1, 1),
                   pixel_std=torch.Tensor([58.395, 57.12, 57.375]).view(-1, 1, 1), img_size=1024,
                   model_type="sam2"):
    from torchvision.transforms.functional import resize, to_pil_image

    scale = img_size * 1.0 / max(x.shape[0], x.shape[1])
    newh, neww = x.shape[0] * scale, x.shape[1] * scale
    target_size = (int(newh + 0.5), int(neww + 0.5))
    x = np.array(resize(to_pil_image(x), target_size))
    resize_shape = x.shape[:2]
    x = torch.from_numpy(x).permute(2,0,1).contiguous()

    # Normalize colors
    x = (x - pixel_mean) / pixel_std
    if model_type=="effi" or model_type=="sam2":
        x = F.interpolate(x.unsqueeze(0), (img_size, img_size), mode="bilinear").squeeze(0)
    return x, resize_shape


# -- model/videogpt_plus/model/internvideo/internvideo2.py ------------------------------------------
# L134-145
class RMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


# L148-163
class LayerScale(nn.Module):
    def __init__(self, dim, init_values=1e-5, inplace=False, force_fp32=False):
        super().__init__()
        self.inplace = inplace
        self.gamma = nn.Parameter(init_values * torch.ones(dim))
        self.force_fp32 = force_fp32

    def forward(self, x):
        if self.force_fp32:
            output_type = x.dtype
            out = x.float().mul_(self.gamma.float()) if self.inplace else x.float() * self.gamma.float()
            return out.to(dtype=output_type)
        else:
            out = x.mul_(self.gamma) if self.inplace else x * self.gamma
            return out


# L166-235 (naive attention)
class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, attn_drop=0., proj_drop=0., use_flash_attn=False,
                 causal=False, norm_layer=nn.LayerNorm, qk_normalization=False, use_fused_rmsnorm=False):
        super().__init__()
        assert dim % num_heads == 0, 'dim should be divisible by num_heads'
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5

        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

        self.use_flash_attn = use_flash_attn
        self.qk_normalization = qk_normalization
        self.q_norm = norm_layer(dim) if qk_normalization else nn.Identity()
        self.k_norm = norm_layer(dim) if qk_normalization else nn.Identity()
        self.use_fused_rmsnorm = use_fused_rmsnorm

    def _naive_attn(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # make torchscript happy (cannot use tensor as tuple)

        if self.qk_normalization:
            B_, H_, N_, D_ = q.shape
            q = self.q_norm(q.transpose(1, 2).flatten(-2, -1)).view(B_, N_, H_, D_).transpose(1, 2)
            k = self.k_norm(k.transpose(1, 2).flatten(-2, -1)).view(B_, N_, H_, D_).transpose(1, 2)

        attn = ((q * self.scale) @ k.transpose(-2, -1))
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x

    def forward(self, x):
        x = self._naive_attn(x)
        return x


# L238-262
class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU,
                 bias=True, drop=0.):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        bias = (bias, bias)
        drop_probs = (drop, drop)

        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias[0])
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop_probs[0])
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias[1])
        self.drop2 = nn.Dropout(drop_probs[1])

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop1(x)
        x = self.fc2(x)
        x = self.drop2(x)
        return x


# L265-316 (non-fused, no checkpointing)
class Block(nn.Module):
    def __init__(
            self, dim, num_heads, mlp_ratio=4., qkv_bias=False, drop=0., attn_drop=0., init_values=None,
            drop_path=0., act_layer=nn.GELU, norm_layer=nn.LayerNorm, use_flash_attn=False,
            use_fused_mlp=False,
            fused_mlp_heuristic=1, with_cp=False, qk_normalization=False, layerscale_no_force_fp32=False,
            use_fused_rmsnorm=False):
        super().__init__()

        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                              proj_drop=drop,
                              use_flash_attn=use_flash_attn, causal=False, norm_layer=norm_layer,
                              qk_normalization=qk_normalization,
                              use_fused_rmsnorm=use_fused_rmsnorm)
        self.ls1 = LayerScale(dim, init_values=init_values,
                              force_fp32=(not layerscale_no_force_fp32)) if init_values else nn.Identity()
        self.drop_path1 = nn.Identity()

        self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = Mlp(in_features=dim, hidden_features=mlp_hidden_dim, act_layer=act_layer, drop=drop)
        self.ls2 = LayerScale(dim, init_values=init_values,
                              force_fp32=(not layerscale_no_force_fp32)) if init_values else nn.Identity()
        self.drop_path2 = nn.Identity()

    def forward(self, x, residual=None):
        assert residual is None
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return x


# L319-351
class PatchEmbed(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, num_frames=8, tubelet_size=1):
        super().__init__()
        img_size = (img_size, img_size)
        patch_size = (patch_size, patch_size)
        self.grid_size = (num_frames // tubelet_size, img_size[0] // patch_size[0],
                          img_size[1] // patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1] * self.grid_size[2]
        self.proj = nn.Conv3d(
            in_channels=in_chans, out_channels=embed_dim,
            kernel_size=(tubelet_size, patch_size[0], patch_size[1]),
            stride=(tubelet_size, patch_size[0], patch_size[1])
        )
        self.norm = nn.Identity()

    def forward(self, x):
        x = self.proj(x)
        x = x.flatten(3).permute(0, 2, 3, 1)  # B x C x T x HW => B x T x HW x C
        x = self.norm(x)
        return x


class PretrainInternVideo2(nn.Module):
    """L388-513 (the modules the vision-only path runs) and ``forward`` L585-651 with ``mask=None``,
    ``use_image=False``, then ``InternVideo2_Stage2V.forward`` (utils.py L229-238)."""

    def __init__(self, img_size=224, patch_size=14, embed_dim=1408, depth=40, num_heads=16, mlp_ratio=48 / 11,
                 num_frames=4):
        super().__init__()
        self.depth = depth
        norm_layer_for_blocks = partial(RMSNorm, eps=1e-6)
        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim, num_frames=num_frames,
                                      tubelet_size=1)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=False, norm_layer=norm_layer_for_blocks,
                  drop_path=0.,
                  init_values=0.00001, attn_drop=0., qk_normalization=True, layerscale_no_force_fp32=False)
            for i in range(depth)])
        self.sep_pos_embed = False
        self.return_index = [depth - 1]

    @property
    def dtype(self):
        return self.patch_embed.proj.weight.dtype

    def forward(self, x, mask=None, use_image=False, x_vis_return_idx=-1, x_vis_only=False):
        x = self.patch_embed(x.type(self.dtype))
        B, T, L, C = x.shape  # T: temporal; L: spatial
        x = x.view([B, T * L, C])

        # append cls token
        cls_tokens = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)

        pos_embed = self.pos_embed
        x = x + pos_embed

        x = x.reshape(B, -1, C)

        residual = None
        x_clip = []
        for idx, blk in enumerate(self.blocks):
            if isinstance(x, tuple) and len(x) == 2:
                x, residual = x
            x = blk(x, residual=residual)
            # return intermediate features
            if idx in self.return_index:
                x_clip.append(x)
            if idx == (self.depth + x_vis_return_idx):
                break

        x_vis = x
        if x_vis_only:
            return x_vis

    # utils.py L229-238 (InternVideo2_Stage2V.forward, with self.vision_encoder = self)
    def stage2v_forward(self, image):
        T = image.shape[1]
        use_image = True if T == 1 else False
        image = image.permute(0, 2, 1, 3, 4).to(self.dtype)  # [B,T,C,H,W] -> [B,C,T,H,W]
        vision_embeds = self.forward(
            image, None, use_image, x_vis_return_idx=-2, x_vis_only=True
        )

        return vision_embeds


# -- model/VideoGLaMM.py L134-142 (text_hidden_fcs) and L609-643 (inference_framewise's [SEG] rows) ----------
def official_text_hidden_fcs(in_dim, out_dim):
    text_fc = [
        nn.Linear(in_dim, in_dim),
        nn.ReLU(inplace=True),
        nn.Linear(in_dim, out_dim),
        nn.Dropout(0.0),
    ]
    return nn.ModuleList([nn.Sequential(*text_fc)])


def official_pred_embeddings(text_hidden_fcs, output_ids, last_hidden, input_ids, num_embedded,
                             seg_token_idx):
    """``last_hidden`` (1, S, h) stands for ``outputs.hidden_states[-1]`` of the last generate step."""
    num_newly_added_tokens = (num_embedded - input_ids.shape[1])
    seg_token_mask = output_ids[:, 1:] == seg_token_idx
    seg_token_mask = torch.cat(
        [torch.zeros((seg_token_mask.shape[0], num_newly_added_tokens)).bool(), seg_token_mask], dim=1)
    hidden_states = []
    hidden_states.append(text_hidden_fcs[0](last_hidden))
    last_hidden_state = torch.stack(hidden_states, dim=-1).sum(dim=-1)
    pred_embeddings = last_hidden_state[seg_token_mask]
    return pred_embeddings


# -- transformers 4.41.0 (VideoGLaMM's README L76), modeling_attn_mask_utils.py L144-172 ---------------------
# ``AttentionMaskConverter._make_causal_mask``, which Phi3Model.forward (models/phi3/modeling_phi3.py
# L1101-1107) reaches through ``_prepare_4d_causal_attention_mask(...,
# sliding_window=self.config.sliding_window)`` with eager attention (Phi-3 has ``_supports_sdpa = False``
# there, L907).
def _make_causal_mask(
    input_ids_shape: torch.Size,
    dtype: torch.dtype,
    device: torch.device,
    past_key_values_length: int = 0,
    sliding_window=None,
):
    """
    Make causal mask used for bi-directional self-attention.
    """
    bsz, tgt_len = input_ids_shape
    mask = torch.full((tgt_len, tgt_len), torch.finfo(dtype).min, device=device)
    mask_cond = torch.arange(mask.size(-1), device=device)
    mask.masked_fill_(mask_cond < (mask_cond + 1).view(mask.size(-1), 1), 0)

    mask = mask.to(dtype)

    if past_key_values_length > 0:
        mask = torch.cat([torch.zeros(tgt_len, past_key_values_length, dtype=dtype, device=device), mask],
                         dim=-1)

    # add lower triangular sliding window mask if necessary
    if sliding_window is not None:
        diagonal = past_key_values_length - sliding_window - 1

        context_mask = torch.tril(torch.ones_like(mask, dtype=torch.bool), diagonal=diagonal)
        mask.masked_fill_(context_mask, torch.finfo(dtype).min)

    return mask[None, None, :, :].expand(bsz, 1, tgt_len, tgt_len + past_key_values_length)


# -- eval_referdavis_infer.py L164-172 (which expression each annotator set runs), L184-185 (clips), L249-256
# ----
def official_annotator_indices(num_expressions):
    num_obj = num_expressions // 4
    out = []
    for anno_id in range(4):  # 4 annotators
        row = []
        for obj_id in range(num_obj):
            i = obj_id * 4 + anno_id
            row.append(i)
        out.append(row)
    return out


def official_clips(video_len):
    return [range(clip_id, min(clip_id + 64, video_len)) for clip_id in range(0, video_len, 64)]


def official_label_maps(anno_masks):
    anno_masks = torch.stack(anno_masks)   # [num_obj, video_len, h, w]
    t, h, w = anno_masks.shape[-3:]
    anno_masks[anno_masks < 0.5] = 0.0
    background = 0.1 * torch.ones(1, t, h, w).to(anno_masks.device)
    anno_masks = torch.cat([background, anno_masks], dim=0) # [num_obj+1, video_len, h, w]
    out_masks = torch.argmax(anno_masks, dim=0) # int, the value indicate which object, [video_len, h, w]

    out_masks = out_masks.detach().cpu().numpy().astype(np.uint8) # [video_len, h, w]
    return out_masks


# -- SAM 2 frame-wise: VideoGLaMM.py L205-241 (get_visual_embs_sam2), L689-699 and L736-749, with VideoGLaMM's
# ``PromptEncoder.forward`` for a text prompt (sam2/modeling/sam/prompt_encoder.py L119-138, L167-189: no
# points, boxes or masks). ``sam`` is a SAM 2 of tests/official_unipixel_sam2.py (UniPixel's copy of the same
# SAM 2 code: forward_image, _prepare_backbone_features, the mask decoder); ``bb_feat_sizes`` replaces the
# hard-coded ``[(256, 256), (128, 128), (64, 64)]`` of a 1024-px input for the tiny model's input size.
def official_prompt_encoder_text(prompt_encoder, text_embeds):
    bs = text_embeds.shape[0]  # _get_batch_size: no points, boxes or masks
    sparse_embeddings = torch.empty(
        (bs, 0, prompt_encoder.embed_dim), device=prompt_encoder.point_embeddings[0].weight.device
    )
    if text_embeds is not None:
        sparse_embeddings = torch.cat([sparse_embeddings, text_embeds], dim=1)
    dense_embeddings = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
        bs, -1, prompt_encoder.image_embedding_size[0], prompt_encoder.image_embedding_size[1]
    )
    return sparse_embeddings, dense_embeddings


# -- sam2/modeling/sam/mask_decoder.py L110-166 (forward: the single-mask branches the UniPixel transcription
# leaves out), L247-257 (_get_stability_scores), L259-295 (_dynamic_multimask_via_stability); ``self`` is the
# transcribed MaskDecoder of tests/official_unipixel_sam2.py (its predict_masks is the same code).
def _get_stability_scores(self, mask_logits):
    mask_logits = mask_logits.flatten(-2)
    stability_delta = self.dynamic_multimask_stability_delta
    area_i = torch.sum(mask_logits > stability_delta, dim=-1).float()
    area_u = torch.sum(mask_logits > -stability_delta, dim=-1).float()
    stability_scores = torch.where(area_u > 0, area_i / area_u, 1.0)
    return stability_scores


def _dynamic_multimask_via_stability(self, all_mask_logits, all_iou_scores):
    # The best mask from multimask output tokens (1~3)
    multimask_logits = all_mask_logits[:, 1:, :, :]
    multimask_iou_scores = all_iou_scores[:, 1:]
    best_scores_inds = torch.argmax(multimask_iou_scores, dim=-1)
    batch_inds = torch.arange(
        multimask_iou_scores.size(0), device=all_iou_scores.device
    )
    best_multimask_logits = multimask_logits[batch_inds, best_scores_inds]
    best_multimask_logits = best_multimask_logits.unsqueeze(1)
    best_multimask_iou_scores = multimask_iou_scores[batch_inds, best_scores_inds]
    best_multimask_iou_scores = best_multimask_iou_scores.unsqueeze(1)

    # The mask from singlemask output token 0 and its stability score
    singlemask_logits = all_mask_logits[:, 0:1, :, :]
    singlemask_iou_scores = all_iou_scores[:, 0:1]
    stability_scores = _get_stability_scores(self, singlemask_logits)
    is_stable = stability_scores >= self.dynamic_multimask_stability_thresh

    # Dynamically fall back to best multimask output upon low stability scores.
    mask_logits_out = torch.where(
        is_stable[..., None, None].expand_as(singlemask_logits),
        singlemask_logits,
        best_multimask_logits,
    )
    iou_scores_out = torch.where(
        is_stable.expand_as(singlemask_iou_scores),
        singlemask_iou_scores,
        best_multimask_iou_scores,
    )
    return mask_logits_out, iou_scores_out


def mask_decoder_forward(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                         multimask_output, repeat_image, high_res_features=None):
    masks, iou_pred, mask_tokens_out, object_score_logits = self.predict_masks(
        image_embeddings=image_embeddings,
        image_pe=image_pe,
        sparse_prompt_embeddings=sparse_prompt_embeddings,
        dense_prompt_embeddings=dense_prompt_embeddings,
        repeat_image=repeat_image,
        high_res_features=high_res_features,
    )

    # Select the correct mask or masks for output
    if multimask_output:
        masks = masks[:, 1:, :, :]
        iou_pred = iou_pred[:, 1:]
    elif self.dynamic_multimask_via_stability and not self.training:
        masks, iou_pred = _dynamic_multimask_via_stability(self, masks, iou_pred)
    else:
        masks = masks[:, 0:1, :, :]
        iou_pred = iou_pred[:, 0:1]

    if multimask_output and self.use_multimask_token_for_obj_ptr:
        sam_tokens_out = mask_tokens_out[:, 1:]  # [b, 3, c] shape
    else:
        sam_tokens_out = mask_tokens_out[:, 0:1]  # [b, 1, c] shape

    # Prepare output
    return masks, iou_pred, sam_tokens_out, object_score_logits


def official_framewise_masks(sam, images_for_sam, pred_embeddings, orig_hw, bb_feat_sizes):
    pred_masks_ti = []
    for t in range(len(images_for_sam)):
        images = images_for_sam[t].unsqueeze(0)
        backbone_out = sam.forward_image(images)
        _, image_embeddings, _, _ = sam._prepare_backbone_features(backbone_out)
        image_embeddings = [_.to(images.dtype) for _ in image_embeddings]
        bs = images.shape[0]
        if sam.directly_add_no_mem_embed:
            image_embeddings[-1] = image_embeddings[-1] + sam.no_mem_embed
        _bb_feat_sizes = bb_feat_sizes
        feats = [
            feat.permute(1, 2, 0).view(bs, -1, *feat_size)
            for feat, feat_size in zip(image_embeddings[::-1], _bb_feat_sizes[::-1])
        ][::-1]
        _features = {"image_embed": feats[-1], "high_res_feats": feats[:-1]}

        (sparse_embeddings, dense_embeddings,) = official_prompt_encoder_text(
            sam.sam_prompt_encoder, pred_embeddings.unsqueeze(1))
        sparse_embeddings = sparse_embeddings.to(pred_embeddings.dtype)
        low_res_masks, iou_predictions, _, _ = mask_decoder_forward(sam.sam_mask_decoder,  # (a function here)
            image_embeddings=_features["image_embed"],
            image_pe=sam.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse_embeddings,
            dense_prompt_embeddings=dense_embeddings,
            multimask_output=False,
            repeat_image = True,
            high_res_features=_features["high_res_feats"]
        )
        pred_mask = F.interpolate(low_res_masks.float(), orig_hw, mode="bilinear", align_corners=False)
        pred_masks_ti.append(pred_mask[:, 0])
    return pred_masks_ti
