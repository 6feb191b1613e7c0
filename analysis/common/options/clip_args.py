"""The options the two CLIP studies (``reversal`` and ``sink``) share, and their checks (light: no torch).

``sink`` runs the ``reversal`` measurement as its ablation, so the data, layer, similarity and caching
options mean the same in both; each study's dataclass adds its own options to :class:`ClipStudyArgs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analysis.common.options.defaults import DEFAULT_KS
from analysis.common.runs.study import check_same_model
from litelvlm.cli_args import arg
from litelvlm.errors import LiteLVLMError
from litelvlm.models.model_spec import CLIP_MODEL_HELP, COMMAND_CLIP_MODEL, ModelSpec
from litelvlm.refer_layout import REFER_DATASETS
from litelvlm.registry.families import card, question_templates
from litelvlm.shared_options import (
    clip_backend_option,
    device_option,
    dtype_option,
    model_option,
    n_boot_option,
    out_option,
    seed_option,
    split_by_option,
)

#: the CLIP studies' ``--dtype`` names
CLIP_DTYPES: tuple[str, ...] = ("float32", "bfloat16")

def int_or_all(text: str) -> int | str:
    """One ``--layers`` item, checked at parse time: an integer or ``all`` (the range needs the model)."""
    return text if text.lower() == "all" else int(text)


@dataclass
class ClipStudyArgs:
    """The options of a CLIP study (``sink``'s image options are those of its ablation)."""

    out: str = out_option("output folder")
    model: ModelSpec = model_option(COMMAND_CLIP_MODEL, help=f"CLIP model ({CLIP_MODEL_HELP}): hub id or "
                                    "local dir (hf); ARCH:TAG, ARCH:/ckpt.pt or local-dir:PATH (open_clip); "
                                    "or tiny-random[:SEED], tiny336-random, vit-l-14-336-random")
    backend: str | None = clip_backend_option()
    refer_dir: str = arg(None, help="folder with refs(<split-by>).p and instances.json (or <dir>/<dataset>/)")
    image_dir: str = arg(None, help="image folder (COCO train2014 for RefCOCO; default: <refer-dir>/images, "
                                    "or images/ beside --coco-instances)")
    coco_instances: str = arg(None, help="a plain COCO instances JSON instead of --refer-dir "
                                         "(the category name is the phrase)")
    dataset: str = arg("refcoco", help="REFER dataset", choices=list(REFER_DATASETS))
    split_by: str = split_by_option()
    split: str = arg("val", help="split name (val, testA, testB, test, train) or 'all'")
    text_template: str = arg("plain", help="'plain': the sentence as given; a family's name: wrapped in that "
                             "family's referring-segmentation question chosen by --seed "
                             f"({', '.join(card(f).display_name for f in question_templates())})",
                             choices=["plain", *question_templates()])
    limit_sentences: int = arg(None, help="only the first N sentences (sorted by image, ref, sentence id)",
                               minimum=1, deprecated=("--limit",))
    text_batch_size: int = arg(256, help="texts per text forward pass", minimum=1)
    layers: list[str] = arg(None, help="vision layers: non-negative indices into hidden_states "
                                       "(0 = embeddings, L = last), or 'all' (default: L-1 and L)",
                            metavar="LAYER", each=int_or_all)
    similarity: str = arg("dot", help="patch-text similarity", choices=["dot", "cosine"])
    ks: list[int] = arg(list(DEFAULT_KS), help="k values for the lowest/highest-k inside shares", metavar="K",
                        minimum=1)
    threshold: float = arg(0.5, help="a patch is inside the referent when its mask coverage >= this")
    pad_to_square: bool = arg(False, help="LLaVA-style pad-to-square before the model's transform")
    batch_size: int = arg(8, help="images per vision forward pass", minimum=1)
    n_boot: int = n_boot_option("bootstrap replicates (over images) for the CIs")
    seed: int = seed_option("seed for the question templates and the bootstrap")
    cache: bool = arg(True, help="use the per-image vision-feature cache")
    cache_dir: str = arg(None, help="cache root (default: $LITELVLM_CACHE or ~/.cache/litelvlm)")
    device: str = device_option()
    dtype: str = dtype_option("float32", help="CLIP dtype: bfloat16 is about 2x faster on a CPU with native "
                              "bfloat16 (avx512_bf16, amx) and about 6-7x slower on an AVX2-only CPU, which "
                              "emulates it (its effect on AUROC and the sink shares is bounded in the tests)",
                              choices=list(CLIP_DTYPES))


def check_clip_study(args: ClipStudyArgs) -> None:
    """Argument checks shared by the two studies (exit 2 on failure), before torch is imported."""
    if not 0 < args.threshold <= 1:
        raise LiteLVLMError(f"--threshold must be in (0, 1], got {args.threshold}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise LiteLVLMError(f"--out {str(out)!r} exists and is not a folder")
    check_same_model(out, args.model, args.backend)
