"""GLaMM's card: what the suite knows of the family before its code loads
(:class:`litelvlm.models.family_card.FamilyCard`). Imports nothing heavy."""

from __future__ import annotations

from ..models.family_card import FamilyCard, Lazy

CARD = FamilyCard(
    name="glamm",
    display_name="GLaMM",
    description="GLaMM (LLaVA-1.5 7B + CLIP ViT-L/14-336 + SAM ViT-H), the paper's model",
    pipeline=Lazy("litelvlm.glamm.pipeline", "GlammPipeline"),
    cost=Lazy("litelvlm.glamm.cost", "COST"),
    cost_archs={"glamm-7b": "glamm-7b", "scaled": "scaled", "tiny": "tiny"},
    presets={"tiny-random": "tiny", "glamm-7b-random": "glamm-7b"},
    architectures=("GLaMMForCausalLM",),
    default_model="tiny-random:0",
    paper_model="a GLaMM-RefSeg checkpoint folder (MBZUAI/GLaMM-RefSeg)",
    paper_preset="glamm-7b",
    released_presets=("glamm-7b",),
    questions=Lazy("litelvlm.data.templates", "SEG_QUESTIONS"),
    official_sample=Lazy("litelvlm.glamm.protocol", "sample_official"),
    num_visual={"tiny": 576, "glamm-7b": 576},  # a 24 x 24 CLIP grid (litelvlm.glamm.config)
    hub_ids=("MBZUAI/GLaMM-RefSeg", "MBZUAI/GLaMM-FullScope", "MBZUAI/GLaMM-GranD-Pretrained"),
    builds_in_memory=True,  # validate --no-write: litelvlm.glamm.random_model.built_random
)
