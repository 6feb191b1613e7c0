"""Sa2VA's card: what the suite knows of the family before its code loads
(:class:`litelvlm.models.family_card.FamilyCard`). Imports nothing heavy."""

from __future__ import annotations

from ..image_resize import IMAGE_RESIZES
from ..models.family_card import FamilyCard, Lazy

CARD = FamilyCard(
    # the official Sa2VA-Qwen2.5-VL model loads with use_flash_attn=True (bytedance/Sa2VA @9832e1a,
    # projects/sa2va/hf/models_qwen2_5_vl/modeling_sa2va_qwen.py:41): SDPA computes the same attention
    official_attn="sdpa",
    name="sa2va",
    display_name="Sa2VA",
    description="Sa2VA-Qwen2.5-VL (Qwen2.5-VL 3B/7B + SAM 2 prompted by the [SEG] hidden state); pruning it "
                "is this project's adaptation",
    pipeline=Lazy("litelvlm.sa2va.pipeline", "Sa2VAPipeline"),
    cost=Lazy("litelvlm.sa2va.cost", "COST"),
    cost_archs={"sa2va-3b": "3b", "sa2va-7b": "7b", "sa2va-tiny": "tiny"},
    presets={"sa2va-qwen2_5-vl-3b-random": "3b", "sa2va-qwen2_5-vl-7b-random": "7b",
             "sa2va-tiny-random": "tiny",
             # Sa2VA-Qwen3-VL (litelvlm.sa2va.qwen3_config)
             "sa2va-qwen3-vl-4b-random": "qwen3-vl-4b", "sa2va-qwen3-vl-tiny-random": "qwen3-vl-tiny",
             # Sa2VA-InternVL3 (litelvlm.sa2va.internvl.config)
             "sa2va-internvl3-2b-random": "internvl3-2b", "sa2va-internvl3-tiny-random": "internvl3-tiny"},
    small_presets=("tiny", "qwen3-vl-tiny", "internvl3-tiny"),
    # Sa2VA-Qwen2.5-VL / -Qwen3-VL, Sa2VA-InternVL3 (modeling_sa2va_chat.py L89)
    architectures=("Sa2VAChatModelQwen", "Sa2VAChatModel"),
    default_model="sa2va-tiny-random:0",
    paper_model="a Sa2VA-Qwen2.5-VL-3B or -7B checkpoint folder (ByteDance/Sa2VA-Qwen2_5-VL-3B)",
    exif_transpose=False,  # Image.open(...).convert('RGB') (RES.py L206)
    video_eval=Lazy("litelvlm.sa2va.video_eval", "VIDEO_EVAL"),
    hub_ids=("ByteDance/Sa2VA-Qwen2_5-VL-3B", "ByteDance/Sa2VA-Qwen2_5-VL-7B", "ByteDance/Sa2VA-Qwen3-VL-4B",
             "ByteDance/Sa2VA-InternVL3-2B", "ByteDance/Sa2VA-InternVL3-8B", "ByteDance/Sa2VA-InternVL3-14B"),
    builds_in_memory=True,  # validate --no-write: litelvlm.sa2va.checkpoint.built_sa2va
    image_resizes=IMAGE_RESIZES,  # the fast processor's first
)
