"""Randomly initialised CLIP models of real architectures, saved to disk the way real weights are.

Used by tests, benchmarks and ``tiny-random`` model strings: the weights are random, the
architecture, the on-disk layout and the tokenizer are real. The tokenizer is OpenAI CLIP's
BPE, taken from the vocabulary that ships inside open_clip, so nothing is downloaded.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import open_clip
import torch
from open_clip.tokenizer import SimpleTokenizer
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

from ..models.channel_stats import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from ..runs.io import atomic_path


@dataclass(frozen=True)
class ClipArch:
    """The sizes that define an OpenAI-architecture CLIP."""

    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    text_width: int
    text_layers: int
    text_heads: int
    embed_dim: int
    context_length: int = 77
    vocab_size: int = 49408


ARCHS: dict[str, ClipArch] = {
    # The vision tower of LLaVA-1.5 and GLaMM (openai/clip-vit-large-patch14-336).
    "vit-l-14-336": ClipArch(336, 14, 1024, 24, 16, 768, 12, 12, 768),
    "tiny": ClipArch(56, 14, 48, 3, 4, 32, 2, 2, 24),
    # A tiny tower with LLaVA's 24x24 grid, for pipeline tests that need 576 tokens.
    "tiny-336": ClipArch(336, 14, 32, 2, 2, 32, 2, 2, 24),
}


def hf_config(arch: ClipArch):
    """A transformers ``CLIPConfig`` for ``arch`` (quick_gelu, eps 1e-5, as OpenAI's)."""
    return CLIPConfig(
        text_config=dict(hidden_size=arch.text_width, intermediate_size=4 * arch.text_width,
                         num_hidden_layers=arch.text_layers, num_attention_heads=arch.text_heads,
                         max_position_embeddings=arch.context_length, vocab_size=arch.vocab_size,
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
                         hidden_act="quick_gelu", projection_dim=arch.embed_dim),
        vision_config=dict(hidden_size=arch.vision_width, intermediate_size=4 * arch.vision_width,
                           num_hidden_layers=arch.vision_layers, num_attention_heads=arch.vision_heads,
                           image_size=arch.image_size, patch_size=arch.patch_size,
                           hidden_act="quick_gelu", projection_dim=arch.embed_dim),
        projection_dim=arch.embed_dim)


def open_clip_config(arch: ClipArch) -> dict:
    """An open_clip model config for ``arch`` (the layout of open_clip's own ``model_configs``)."""
    return {
        "embed_dim": arch.embed_dim,
        "quick_gelu": True,
        "vision_cfg": {"image_size": arch.image_size, "layers": arch.vision_layers,
                       "width": arch.vision_width, "patch_size": arch.patch_size,
                       "head_width": arch.vision_width // arch.vision_heads},
        "text_cfg": {"context_length": arch.context_length, "vocab_size": arch.vocab_size,
                     "width": arch.text_width, "heads": arch.text_heads, "layers": arch.text_layers},
    }


@functools.lru_cache(maxsize=1)
def openai_bpe() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    """OpenAI CLIP's vocabulary (token, id) with transformers' names of the two special tokens, and its merges
    in rank order, from open_clip's bundled BPE; read once per process."""
    st = SimpleTokenizer()
    renames = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = tuple((renames.get(k, k), v) for k, v in st.encoder.items())
    return vocab, tuple(pair for pair, _ in sorted(st.bpe_ranks.items(), key=lambda kv: kv[1]))


def write_clip_tokenizer(path: str | Path):
    """Write OpenAI CLIP's tokenizer (vocab.json, merges.txt) from open_clip's bundled BPE."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pairs, ranked = openai_bpe()
    vocab, merges = dict(pairs), list(ranked)
    try:  # transformers >= 5: the tokenizers-backed class takes the vocabulary directly
        tok = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    except TypeError:  # older transformers: file paths
        raw = path / "_bpe"
        raw.mkdir(exist_ok=True)
        (raw / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (raw / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
        tok = CLIPTokenizer(vocab_file=str(raw / "vocab.json"), merges_file=str(raw / "merges.txt"),
                            model_max_length=77)
        for f in raw.iterdir():
            f.unlink()
        raw.rmdir()
    tok.save_pretrained(path)
    return tok


def save_random_hf_clip(path: str | Path, arch: str = "tiny", seed: int = 0) -> Path:
    """Build a random transformers ``CLIPModel`` of ``arch`` and ``save_pretrained`` it with
    tokenizer and image processor; returns the directory."""
    a = ARCHS[arch]
    path = Path(path)
    torch.manual_seed(seed)
    config = hf_config(a)
    config.litelvlm_random = {"arch": arch, "seed": seed}  # in config.json: these weights are random
    model = CLIPModel(config).eval()
    model.save_pretrained(path)
    write_clip_tokenizer(path)
    CLIPImageProcessor(size={"shortest_edge": a.image_size},
                       crop_size={"height": a.image_size, "width": a.image_size}).save_pretrained(path)
    return path


def save_open_clip_dir(path: str | Path, arch: ClipArch, state_dict: dict[str, torch.Tensor]) -> Path:
    """Write an open_clip ``local-dir:`` folder: ``open_clip_config.json`` +
    ``open_clip_model.safetensors``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg = {"model_cfg": open_clip_config(arch),
           "preprocess_cfg": {"mean": list(OPENAI_CLIP_MEAN), "std": list(OPENAI_CLIP_STD),
                              "interpolation": "bicubic", "resize_mode": "shortest"},
           "litelvlm_arch": asdict(arch)}
    with atomic_path(path / "open_clip_config.json") as tmp:
        tmp.write_text(json.dumps(cfg, indent=2))
    with atomic_path(path / "open_clip_model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(tmp))
    return path


def save_random_open_clip(path: str | Path, arch: str = "tiny", seed: int = 0) -> Path:
    """Build a random open_clip model of ``arch`` and save it as a ``local-dir:`` folder."""
    a = ARCHS[arch]
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**open_clip_config(a))
    sd = {k: v for k, v in model.state_dict().items() if k != "attn_mask"}
    return save_open_clip_dir(path, a, sd)
