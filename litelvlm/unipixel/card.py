"""UniPixel's card: what the suite knows of the family before its code loads
(:class:`litelvlm.models.family_card.FamilyCard`). Imports nothing heavy."""

from __future__ import annotations

from ..models.family_card import FamilyCard, Lazy

CARD = FamilyCard(
    # UniPixel's builder loads attn_implementation='flash_attention_2' (unipixel/model/builder.py:18 of
    # ../shared/official/UniPixel.git): SDPA computes the same attention on every device
    official_attn="sdpa",
    name="unipixel",
    display_name="UniPixel",
    description="UniPixel (Qwen2.5-VL 3B/7B + SAM 2.1 prompted by the <|seg|> hidden state), the paper's "
                "LVLM beyond LLaVA",
    pipeline=Lazy("litelvlm.unipixel.pipeline", "UniPixelPipeline"),
    cost=Lazy("litelvlm.unipixel.cost", "COST"),
    cost_archs={"unipixel-3b": "3b", "unipixel-7b": "7b", "unipixel-tiny": "tiny"},
    presets={"unipixel-3b-random": "3b", "unipixel-7b-random": "7b", "unipixel-tiny-random": "tiny"},
    architectures=("PixelQwen2_5_VLForConditionalGeneration",),
    default_model="unipixel-tiny-random:5",
    paper_model="a UniPixel-3B or -7B checkpoint folder (PolyU-ChenLab/UniPixel-3B)",
    exif_transpose=False,  # PIL.Image.open (litelvlm.unipixel.protocol.EXIF_TRANSPOSE)
    video_eval=Lazy("litelvlm.unipixel.video_eval", "VIDEO_EVAL"),
    # the tiny preset's SAM 2 object-score gate is closed for seed 0 (every mask logit -1024, every mask empty
    # on the sample images, so every score 0) and open for 5: ``unipixel-tiny-random`` means
    # ``unipixel-tiny-random:5``
    default_seeds={"unipixel-tiny-random": 5},
    merged_grid=Lazy("litelvlm.unipixel.protocol"),
    hub_ids=("PolyU-ChenLab/UniPixel-3B", "PolyU-ChenLab/UniPixel-7B"),
)
