"""``litelvlm toy-train``: train the bundled toy CLIP contrastively on synthetic scenes, on a CPU.

The model is a transformers ``CLIPModel`` of the OpenAI architecture (quick_gelu), small
enough to train in minutes on two cores. Each training pair is a scene and a unique
referring expression of one of its objects; besides the other captions of the batch, each
image is contrasted with hard negatives made from its own scene (the expression with one or
two attributes changed so that it describes no object there). In-batch captions that happen
to be true of another image are masked out of the loss.

The saved folder is a ``save_pretrained`` directory (weights in float16, tokenizer, image
processor) plus ``MODEL_CARD.md``, ``training_curve.csv`` and ``training_curve.png``.

This module holds the subcommand and the training loop; the pieces live beside it:
``options`` (the arguments), ``scene_sets`` (rendered scenes), ``samplers`` (batches),
``model`` (architecture and initialisation), ``loss``, ``evaluation`` and ``report`` (card, curve).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import CLIPImageProcessor

from ..cli_args import from_namespace
from ..clip import load_clip
from ..clip.random_init import write_clip_tokenizer
from ..runs.io import atomic_path
from ..runs.run_folder import RunFolder
from .evaluation import (
    accuracy_by_attribute,
    retrieval_accuracy,
    retrieval_accuracy_model,
    retrieval_items,
    text_binding,
)
from .loss import clip_logits, contrastive_loss
from .model import build_model
from .options import ToyTrainArgs, check_args
from .report import write_model_card, write_training_curve
from .samplers import BatchSampler, PositionSampler, training_loader
from .scene_sets import HELDOUT_SEED, TRAIN_SEED, build_scenes, build_warmup_scenes
from .scenes import make_scene

log = logging.getLogger(__name__)


def train(a: ToyTrainArgs) -> dict:
    """Train, save to ``a.out`` and return the final metrics, as ``toy-train``'s run in
    :class:`~litelvlm.runs.run_folder.RunFolder` (a folder holding another command's run is refused before
    training; ``--overwrite`` replaces it whole). The model is trained into a hidden folder beside ``a.out``,
    and its files are staged into the run and committed together, so a failed or interrupted run leaves
    nothing partial (files of ``a.out`` that training does not write are kept)."""
    check_args(a)
    final = Path(a.out)
    work = final.parent / f".{final.name}.partial"
    threads = torch.get_num_threads()
    try:
        with RunFolder(final, direct=(), command="toy-train"):
            if work.exists():
                shutil.rmtree(work)
            metrics = _train(a, work)
            for f in sorted(work.iterdir()):
                with atomic_path(final / f.name) as tmp:
                    os.replace(f, tmp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        torch.set_num_threads(threads)  # --threads is for this run only
    return metrics


def learning_rate(a: ToyTrainArgs, step: int) -> float:
    """The learning rate of ``step``: linear warm-up over ``a.warmup`` steps to ``a.lr``, then cosine
    decay."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    p = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * 0.5 * (1 + math.cos(math.pi * p))


def _optimizer(model, a: ToyTrainArgs) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices other than the embeddings."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.98),
                             eps=1e-6,
                             fused=True)  # one kernel per group: the 3.2M-parameter token embedding is dense


def _train(a: ToyTrainArgs, out: Path) -> dict:
    """The training run itself, writing the model folder to ``out``."""
    torch.set_num_threads(a.threads)
    t0 = time.time()
    tokenizer = write_clip_tokenizer(out / ".tokenizer-tmp")
    render = a.threads if a.threads > 1 else 0  # scenes are rendered in as many processes as training threads
    pixels, scenes = build_scenes(TRAIN_SEED, a.train_scenes, a.render_size, a.image_size, "train scenes",
                                  render)
    ev_pixels, ev_scenes = build_scenes(HELDOUT_SEED, a.eval_scenes, a.render_size, a.image_size,
                                        "eval scenes", render)
    ev_items = retrieval_items(ev_scenes, HELDOUT_SEED)
    if a.position_warmup:
        warm_pixels, warm_scenes = build_warmup_scenes(a.warmup_scenes, a.render_size, a.image_size, render,
                                                       a.warmup_objects)
    t_data = time.time() - t0
    model = build_model(a)
    model.train()
    opt = _optimizer(model, a)
    sampler = BatchSampler(scenes, pixels, tokenizer, a)
    warm = (PositionSampler(warm_scenes, warm_pixels, tokenizer, a, colour_p=0.5)
            if a.position_warmup else None)
    mix = PositionSampler(scenes, pixels, tokenizer, a, colour_p=1.0, size_p=0.3) if a.position_mix else None
    loader = training_loader(a, sampler, warm, mix)
    rows = []
    bar = tqdm(zip(range(a.steps), loader), total=a.steps, desc="toy-train", mininterval=10)
    for step, batch in bar:
        for g in opt.param_groups:
            g["lr"] = learning_rate(a, step)
        loss = contrastive_loss(clip_logits(model, batch.pixels, *batch.text), batch.owner, batch.truth)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        row = {"step": step + 1, "loss": float(loss.detach()), "lr": learning_rate(a, step),
               "logit_scale": float(model.logit_scale.detach().exp()), "elapsed_s": time.time() - t0,
               "heldout_top1_of_8": float("nan")}
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            row["heldout_top1_of_8"] = retrieval_accuracy_model(model, tokenizer, ev_pixels, ev_items)
            bar.set_postfix(loss=f"{row['loss']:.3f}", top1=f"{row['heldout_top1_of_8']:.3f}")
            log.info("step %d loss %.3f held-out top-1 of 8 %.3f (%.0fs)", step + 1, row["loss"],
                     row["heldout_top1_of_8"], row["elapsed_s"])
        rows.append(row)
    t_train = time.time() - t0 - t_data
    _save(model, tokenizer, out, a)
    df = write_training_curve(out, rows)
    metrics = _final_metrics(out, a)
    metrics.update({"final_train_loss": float(df["loss"].tail(20).mean()), "data_seconds": round(t_data, 1),
                    "train_seconds": round(t_train, 1), "threads": a.threads,
                    "weights_bytes": (out / "model.safetensors").stat().st_size})
    write_model_card(out, a, metrics)
    return metrics


def _save(model, tokenizer, out: Path, a: ToyTrainArgs) -> None:
    """Save float16 weights, the real CLIP tokenizer and an image processor for the model's input size."""
    out.mkdir(parents=True, exist_ok=True)
    model.eval().half().save_pretrained(out)
    tokenizer.save_pretrained(out)
    for f in (out / ".tokenizer-tmp").iterdir():
        f.unlink()
    (out / ".tokenizer-tmp").rmdir()
    CLIPImageProcessor(size={"shortest_edge": a.image_size},
                       crop_size={"height": a.image_size, "width": a.image_size}).save_pretrained(out)


def _final_metrics(out: Path, a: ToyTrainArgs) -> dict:
    """The final check through the public loading path, on held-out scenes never seen in training."""
    clip = load_clip(str(out), "hf")
    final_scenes = [make_scene(HELDOUT_SEED, i, a.render_size) for i in range(a.final_eval_scenes)]
    items = retrieval_items(final_scenes, HELDOUT_SEED)
    acc = retrieval_accuracy(clip, final_scenes, items)
    by_attr = accuracy_by_attribute(clip, final_scenes[:500], HELDOUT_SEED)
    return {"heldout_top1_of_8": acc, "heldout_items": len(items), "pairwise_by_attribute": by_attr,
            "text_interaction_share": text_binding(clip)}


def run(ns) -> int:
    """Entry point of ``litelvlm toy-train``: train with the parsed options and print the result."""
    a = from_namespace(ToyTrainArgs, ns)
    if os.path.exists(a.out) and any(Path(a.out).glob("*.safetensors")):
        log.info("overwriting the model in %s", a.out)
    metrics = train(a)
    print(f"toy CLIP saved to {a.out}: held-out top-1 of 8 = {metrics['heldout_top1_of_8']:.3f} "
          f"({metrics['heldout_items']} scenes), {metrics['train_seconds']:.0f} s training")
    return 0
