"""``litelvlm toy-train``: its options (:class:`ToyTrainArgs`) and their checks.

Light (no torch): the command's entry (:mod:`litelvlm.toy.command`) checks them before the training
(:mod:`litelvlm.toy.train`) is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cli_args import arg, check_declared
from ..errors import LiteLVLMError
from ..shared_options import out_option, seed_option
from .scenes import CELLS


@dataclass
class ToyTrainArgs:
    """The options of one ``toy-train`` run (field ``name`` is the flag ``--name``, ``_`` as ``-``)."""

    out: str = out_option("output folder (save_pretrained layout)", "toy-clip")
    seed: int = seed_option("seed for the model initialisation and the batch sampling")
    steps: int = arg(4800, help="optimisation steps", minimum=1)
    batch_size: int = arg(64, help="scenes per batch", minimum=2)
    positives: int = arg(3, help="referring expressions (of different objects) per image (a scene has 3-5 "
                                 "objects; 3 instead of 2 costs ~8%% more per step and trains binding "
                                 "faster)",
                         minimum=1)
    hard_negatives: int = arg(7, help="same-scene counterfactual captions per positive")
    binding_negatives: float = arg(1.0, help="share of the hard negatives drawn first from binding "
                                             "counterfactuals: the changed value (shape, colour, size or "
                                             "cell) belongs to another object of the scene, so only binding "
                                             "it to its object tells them apart")
    lr: float = arg(5e-4, help="peak learning rate (AdamW, linear warm-up, cosine decay)")
    warmup: int = arg(100, help="warm-up steps", minimum=0)
    weight_decay: float = arg(0.05, help="AdamW weight decay")
    train_scenes: int = arg(15000, help="number of pre-rendered training scenes", minimum=1)
    eval_scenes: int = arg(200, help="held-out scenes for the periodic retrieval check", minimum=1)
    final_eval_scenes: int = arg(1000, help="held-out scenes for the final retrieval check", minimum=1)
    eval_every: int = arg(500, help="evaluate every N steps", minimum=1)
    render_size: int = arg(224, help="side of the rendered scenes (the demo data uses the same)")
    image_size: int = arg(192, help="model input side (the scenes are rendered at --render-size and resized)")
    patch_size: int = arg(32, help="ViT patch size (192/32: a 6x6 grid, so each cell of the 3x3 layout is "
                          "2x2 patches)")
    vision_width: int = arg(96, help="vision transformer width")
    vision_layers: int = arg(4, help="vision transformer layers")
    vision_heads: int = arg(12, help="vision attention heads (0: one per 32 channels); more heads let the "
                                     "CLS token gather more regions separately", minimum=0)
    text_width: int = arg(64, help="text transformer width")
    text_layers: int = arg(3, help="text transformer layers")
    embed_dim: int = arg(256, help="joint embedding size")
    attn_init: float = arg(4.0, help="scale of the vision tower's initial query and key projections relative "
                           "to transformers' default (sharper attention at the start; at 1 the loss sits on "
                           "a plateau for ~1,200 steps)")
    text_attn_init: float = arg(1.0, help="the same for the text tower's query and key projections")
    pos_init: str = arg("sincos", choices=["learned", "sincos"],
                        help="vision position embeddings at the start: transformers' random init, or a "
                             "fixed-scale 2-D sin-cos grid (both are trained)")
    position_warmup: int = arg(400, help="first N steps on --warmup-objects scenes, each caption ('the red "
                                         "circle at the top') contrasted with the same caption at the other "
                                         "cells", minimum=0)
    warmup_scenes: int = arg(2000, help="scenes rendered for the position warm-up")
    warmup_objects: int = arg(2, help="objects per warm-up scene (2: the other object's cell is a negative, "
                                      "so the warm-up already asks which object sits where)")
    position_mix: float = arg(0.2, help="after the warm-up, share of steps whose captions name colour, shape "
                                        "and cell and whose negatives are the same caption at other cells, "
                                        "occupied cells first")
    attention: str = arg("eager", choices=["eager", "sdpa"],
                         help="attention kernel while training (the same function; with 37 vision and ~11 "
                              "text tokens and heads of 8-16 channels, eager is ~20%% faster on a CPU than "
                              "sdpa). The saved model loads with transformers' default either way")
    threads: int = arg(2, help="torch CPU threads", minimum=1)
    workers: int = arg(0, help="1: a worker process makes the next batches while the model trains (a gain "
                               "only with cores to spare beyond --threads); 0: in the training process. Same "
                               "batches either way")


def check_workers(workers: int) -> None:
    """Raise unless ``--workers`` is 0 or 1 (one worker keeps the batch order)."""
    if workers not in (0, 1):
        raise LiteLVLMError(f"--workers must be 0 or 1 (one worker keeps the batch order), got {workers}")


def check_args(a: ToyTrainArgs) -> None:
    """Raise a :class:`~litelvlm.errors.LiteLVLMError` naming the first invalid option (before any work):
    what the options declare (the parser's check, for options built in code: ``train(ToyTrainArgs(...))``),
    then how they go together."""
    check_declared(a)
    check_workers(a.workers)
    if not 0.0 <= a.binding_negatives <= 1.0:
        raise LiteLVLMError(f"--binding-negatives must be in [0, 1], got {a.binding_negatives}")
    if not 1 <= a.warmup_objects <= len(CELLS):
        raise LiteLVLMError(f"--warmup-objects must be between 1 and {len(CELLS)}, got {a.warmup_objects}")
    if not 0.0 <= a.position_mix <= 1.0:
        raise LiteLVLMError(f"--position-mix must be in [0, 1], got {a.position_mix}")
    if a.position_warmup and a.warmup_scenes < a.batch_size:
        raise LiteLVLMError("--warmup-scenes must be at least --batch-size when --position-warmup is used")
    if a.vision_heads and a.vision_width % a.vision_heads:
        raise LiteLVLMError(f"--vision-heads {a.vision_heads} must divide --vision-width {a.vision_width}")
    if a.image_size % a.patch_size:
        raise LiteLVLMError(f"--image-size {a.image_size} is not a multiple of --patch-size {a.patch_size}")
