"""Command-line options shared by the studies that run a grounding model of any family (``eval-grounding``,
``importance``, ``positions``, ``validate``, ``efficiency``)."""

from __future__ import annotations

from dataclasses import dataclass

from litelvlm.cli_args import arg, read_declared
from litelvlm.errors import LiteLVLMError
from litelvlm.image_resize import image_resize_arg  # the one --image-resize (litelvlm.image_resize)
from litelvlm.models.model_spec import ModelSpec
from litelvlm.refer_layout import REFER_DATASETS
from litelvlm.registry.families import DEFAULT_MODEL, model_help, resolve
from litelvlm.shared_options import DTYPES as DTYPES  # the --dtype names, declared there
from litelvlm.shared_options import (
    model_option,
    out_option,
    quantize_backend_option,
    quantize_option,
    split_by_option,
)
from litelvlm.switches import (
    ATTN_IMPLEMENTATIONS,
    CLIP_PREPROCESSING,
    CLIP_SOFTMAXES,
    LAYER_DTYPES,
    POSITION_SWITCH,
    SCORE_DTYPES,
)

LAYER_DTYPE_HELP = ("arithmetic of the LLM's decoder layers and SAM's image-encoder layers: model (--dtype, "
                    "the official), float32 (weights stay in --dtype, each layer upcast while it runs: "
                    "several times faster on an AVX2-only CPU, docs/validate.md; this project's option, "
                    "results differ at bfloat16 rounding) or auto (float32 where "
                    "a short matmul benchmark at start measures it faster than bfloat16 on this CPU, "
                    "recorded in config.json; bfloat16 on CUDA)")
#: ``--attn`` names
ATTN_CHOICES = ATTN_IMPLEMENTATIONS
ATTN_HELP = ("attention kernel of the LLM, CLIP, the vision tower and SAM: eager (the official stack's), "
             "sdpa (PyTorch's scaled_dot_product_attention, faster) or flash (this project's option: SDPA "
             "held to its FlashAttention backend in the LLM, CUDA and --dtype bfloat16/float16 only; CLIP, "
             "SAM and the vision tower then run sdpa); the pruning methods' attention weights are recomputed "
             "outside the kernel, so every method runs with each (docs/library.md); default: the study's "
             "numerics (the official stack's eager, or --protocol's where the study has one); recorded in "
             "config.json")


#: ``--positions`` names: ``official`` (each method's own rule) and the rules every method may be held to
POSITION_CHOICES = POSITION_SWITCH
#: the rules a run compares (the ``positions`` study) or sets for every method
POSITION_RULES: tuple[str, ...] = POSITION_CHOICES[1:]
POSITIONS_HELP = ("RoPE positions of the kept visual tokens: official (default: each method's official rule; "
                  "FastV, DART and the Qwen-based families keep them, the others renumber), or for every "
                  "method: keep (their original positions), renumber (those of the shorter sequence) or pad "
                  "(PosPad, after FocusUI: original positions, each run of dropped tokens replaced by one "
                  "marker at its last token's position, whose embedding is the run's mean visual token: "
                  "this project's reading); keep and pad refuse methods that merge tokens, pad those "
                  "pruning inside the LLM; recorded in config.json (docs/grounding.md)")


def positions_arg():
    """The ``--positions`` dataclass field of a study's options (a fresh field per options class; the one
    declaration of its choices and help)."""
    return arg("official", help=POSITIONS_HELP, choices=list(POSITION_CHOICES))


def attn_arg():
    """The ``--attn`` dataclass field of a study's options (a fresh field per options class; the one
    declaration of its choices and help)."""
    return arg(None, help=ATTN_HELP, choices=list(ATTN_CHOICES))


def check_attn_device(attn: str | None, device: str | None) -> None:
    """Refuse ``--attn flash`` off CUDA (one line, exit 2), before any model loads."""
    if attn == "flash" and str(device or "cpu").split(":")[0] != "cuda":
        raise LiteLVLMError("--attn flash needs a CUDA device (PyTorch's FlashAttention kernel); --device "
                            f"is {device or 'cpu'}")


@dataclass
class ModelDataArgs:
    """The model (any family's model string, with its CLIP and SAM sources) and the REFER data a study
    reads."""

    refer_dir: str = arg(help="REFER folder (refs(<split-by>).p, instances.json), e.g. "
                         "../shared/data/coco128_refer", required=True)
    out: str = out_option("output folder (the result tables and config.json; resumable)")
    model: ModelSpec = model_option(DEFAULT_MODEL, help="a model of any family: a random preset [:SEED] or a "
                                    "checkpoint folder "
                                    f"({model_help()})")
    clip: ModelSpec | None = arg(None, help="CLIP model (hf id or folder); default: "
                                            "openai/clip-vit-large-patch14-336, or the matching tiny random "
                                            "CLIP for tiny-random")
    sam: str | None = arg(None, help="optional SamImageProcessor source (hf id or folder); the SAM weights "
                                     "come from the model's checkpoint")
    image_dir: str | None = arg(None, help="image folder (default: <refer-dir>/images)")
    dataset: str = arg("refcoco", help="dataset name", choices=list(REFER_DATASETS))
    split_by: str = split_by_option()
    split: str = arg("val", help="split (val, testA, testB, test, ...)")
    attn: str | None = attn_arg()
    clip_preprocess: str | None = arg(None, help="CLIP image preprocessing: official (transformers 4.28's "
                                                 "PIL path) or transformers (the installed default); "
                                                 "default: the study's", choices=list(CLIP_PREPROCESSING))
    score_dtype: str | None = arg(None, help="precision of FastV's, SparseVLM's and DART's scores: model "
                                             "(the official: the model's dtype) or float32; default: the "
                                             "study's",
                                  choices=list(SCORE_DTYPES))
    clip_softmax: str | None = arg(None, help="CLIP's eager attention (--attn eager): official "
                                              "(transformers 4.x's: queries scaled first, softmax in the "
                                              "model's dtype) or float32 (transformers 5's eager kernel, "
                                              "this project's earlier computation); default: the study's",
                                   choices=list(CLIP_SOFTMAXES))
    quantize: str = quantize_option("quantize the LLM's decoder-layer weights: int8 (LLM.int8()) or nf4 "
                                    "(4-bit NF4, double quantization); vision, CLIP text tower, SAM, "
                                    "projector and heads keep --dtype (docs/quantization.md)")
    quantize_backend: str = quantize_backend_option("library of --quantize: bitsandbytes (int8, nf4; the "
                                                    "official stacks' library) or torchao (int8 weight-only)")
    layer_dtype: str = arg("model", help=LAYER_DTYPE_HELP, choices=list(LAYER_DTYPES))
    image_resize: str = image_resize_arg()

    def __post_init__(self) -> None:
        read_declared(self)   # a Python caller's budgets; the command line's are read already
        # read once: the command line's is read already, a Python caller's here
        self.model = resolve(self.model)   # resolved once: the value travels (a resolved one as it is)
        self.clip = None if self.clip is None else ModelSpec.of(self.clip)
        check_attn_device(self.attn, getattr(self, "device", None))   # a study's device, where it has one

