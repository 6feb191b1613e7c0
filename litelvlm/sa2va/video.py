"""Sa2VA's video path: the first five frames to the LLM, the ``[SEG]`` prompt on each of them, SAM 2's memory
over the rest. Pruning the video's LLM input is this project's adaptation.

Details: docs/sa2va.md (`litelvlm.sa2va.video`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import torch

from ..lvlm.abilities import refusal
from ..sam2.video import build_video_model, cached_video_model, memory_encoder
from ..sam2.video import sam2_video_config as _video_config
from ..video.sam2_propagation import appended_prompts, video_session
from .checkpoint import from_g_weight
from .protocol import LLM_FRAMES


def sam2_video_config(size, image_size: int):
    """transformers ``Sam2VideoConfig`` of Sa2VA's SAM 2 (``sam2.py`` L86-126: SAM 2.0 settings, the image
    path's ``dynamic_multimask_via_stability``) -- :func:`litelvlm.sam2.video.sam2_video_config`."""
    return _video_config(size, image_size, version="2.0", stability=True)


def video_model(sam2):
    """The ``Sam2VideoModel`` of a loaded :class:`~.sam2_head.Sa2VASam2` (its image weights and tracking
    tensors, the latter renamed from Sa2VA's ``g_weight`` to SAM 2's), kept on ``sam2`` (rebuilt when it
    moved)."""
    def build():
        tracking = {from_g_weight(k): v for k, v in sam2.tracking.items()}
        return build_video_model(sam2.sam2_size, sam2.image_size, sam2.model.state_dict(), tracking,
                                 version="2.0", stability=True)

    return cached_video_model(sam2, build, sam2.model.no_memory_embedding)


@contextlib.contextmanager
def sa2va_memory(net) -> Iterator[None]:
    """Within: ``net``'s memory encoding as Sa2VA's SAM 2 does it: a mask from point inputs not binarised (the
    scaled sigmoid; Sa2VA's prompt frames carry no points), features stored in bfloat16 (L3650-3653), no
    occlusion term (SAM 2.0) -- :func:`litelvlm.sam2.video.memory_encoder`."""
    with memory_encoder(net, store_dtype=torch.bfloat16):
        yield


@contextlib.contextmanager
def no_object_gate(net) -> Iterator[None]:
    """Within: ``net``'s masks are not blanked by the object score (Sa2VA comments out SAM 2's
    ``torch.where``, ``sam2.py`` L3299-3305), which still chooses the object pointer. Done with two forward
    hooks, no code edited: the mask decoder's object score is reported positive to ``_single_frame_forward``
    (so its ``torch.where`` keeps the masks) and kept aside; the pointer projection's output is then mixed
    with ``no_object_pointer`` by the true score, as ``_single_frame_forward`` would (SAM 2.0 has no occlusion
    embedding, the only other reader of the score)."""
    scores: list[torch.Tensor] = []

    def decoder(module, args, output):
        masks, iou, tokens, score = output
        scores.append(score)
        return masks, iou, tokens, score.abs() + 1

    def pointer(module, args, output):
        lam = (scores.pop(0) > 0).to(output.dtype)
        return lam * output + (1 - lam) * net.no_object_pointer

    hooks = [net.mask_decoder.register_forward_hook(decoder),
             net.object_pointer_proj.register_forward_hook(pointer)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def propagate(sam2, pixels: torch.Tensor, prompt: torch.Tensor, num_cond: int) -> torch.Tensor:
    """(T, 1, h, w) float32 low-resolution logits of one ``(1, C)`` prompt added on frames ``0..num_cond-1``
    of ``(T, 3, S, S)`` SAM 2 pixels, the later frames tracked by the memory (docs/sa2va.md)."""
    net = video_model(sam2)
    T, side = len(pixels), net.config.image_size // 4
    session = video_session(net, pixels.to(sam2.device, sam2.dtype), (sam2.image_size, sam2.image_size))
    point = {"point_coords": torch.zeros(1, 1, 1, 2, dtype=torch.float32),
             "point_labels": -torch.ones(1, 1, 1, dtype=torch.int32)}
    obj_idx = session.obj_id_to_idx(100)            # language_embd_inference's object id: obj_idx + 100
    logits = [None] * T
    with torch.inference_mode(), sa2va_memory(net), no_object_gate(net):
        for t in range(num_cond):
            session.add_point_inputs(obj_idx, t, point)
            session.obj_with_new_inputs.append(100)
            with appended_prompts(net, [prompt], append=True):
                net(session, frame_idx=t)
        for out in net.propagate_in_video_iterator(session, start_frame_idx=0):
            logits[out.frame_idx] = out.pred_masks.float().reshape(1, side, side)
    return torch.stack(logits).clone()


@dataclass
class VideoParts:
    """What a video adds to a prepared input: its frames' SAM 2 pixels and how many frames the LLM sees."""

    pixels: torch.Tensor                     # (T, 3, S, S)
    llm_frames: int
    # the frames the LLM sees, as given (the paired CLIP's)
    originals: list = field(default_factory=list, repr=False)
    cache: dict = field(default_factory=dict, repr=False, compare=False)


def video_parts(sam2, frames: list) -> VideoParts:
    """The SAM 2 pixels of every frame (video mode) and ``min(5, T)``."""
    pixels = torch.cat([sam2.preprocess(f, video=True) for f in frames])
    n = min(LLM_FRAMES, len(frames))
    return VideoParts(pixels=pixels, llm_frames=n, originals=list(frames[:n]))


def joined_rows(prepared) -> tuple[torch.Tensor, int]:
    """(the rows a joined video prompt keeps: every visual token and every row before the first or after the
    last one, the prompt rows dropped): the rule both Sa2VA backbones' :func:`joined` apply."""
    visual = prepared.mm_token_type_ids > 0
    where = torch.nonzero(visual).flatten()
    rows = torch.arange(len(visual))
    keep = visual | (rows < int(where[0])) | (rows > int(where[-1]))
    return keep, int((~keep[:prepared.prompt_len]).sum()) if prepared.prompt_len is not None else 0


def joined(pipe, prepared):
    """A video's prompt with its frames' blocks joined into one (this project's adaptation for pruning,
    :data:`litelvlm.sa2va.pipeline.VIDEO_PRUNING`): the rows between the first and the last visual token that
    are no visual token (each frame's ``<|vision_end|>`` and the next ``<|vision_start|>``) dropped, every
    other row keeping its official M-RoPE id; the same input if already joined."""
    if prepared.joined_positions is not None:
        return prepared
    keep, dropped = joined_rows(prepared)
    pos = pipe._rope_index(prepared, prepared.input_ids)
    out = replace(prepared, input_ids=prepared.input_ids[keep],
                  mm_token_type_ids=prepared.mm_token_type_ids[keep],
                  joined_positions=pos[..., keep.to(pos.device)],
                  prompt_len=None if prepared.prompt_len is None else prepared.prompt_len - dropped)
    return out   # ``mapped`` as it was: the paired CLIP reads the same frames, text and instruction rows


#: what Sa2VA's video refuses beyond the image path (``Method`` flag -> reason, as
#: :class:`~litelvlm.lvlm.abilities. Abilities` ``refuses`` reads): the methods reading Qwen2.5-VL's vision
#: tower over one image's grid
VIDEO_REFUSES = {"reads_vision_blocks": "{method} reads Qwen2.5-VL's vision tower over one image's grid; "
                                        "Sa2VA's video gives the tower min(5, T) images, for which no rule "
                                        "is defined yet",
                 "downsample": "{method} pools one image's merged grid; Sa2VA's video gives the LLM min(5, "
                               "T) images' grids, for which no pooling is defined yet",
                 "needs_mask_gradient": "{method} backpropagates from the masks to the visual tokens; "
                                        "Sa2VA's video masks come from SAM 2's memory propagation, run "
                                        "without gradients (a saliency target needs one image)"}


def video_method_error(pipe, method: str) -> str | None:
    """Why ``method`` cannot run on Sa2VA's video (None: it can): the image path's refusals, then
    :data:`VIDEO_REFUSES`."""
    # the class is enough: its refusals read class attributes
    cls = pipe if isinstance(pipe, type) else type(pipe)
    return cls.method_error(cls, method) or refusal(cls.spec(cls, method), method, VIDEO_REFUSES)


__all__ = ["VIDEO_REFUSES", "VideoParts", "joined", "joined_rows", "propagate", "sa2va_memory",
           "sam2_video_config", "video_method_error", "video_model", "video_parts"]
