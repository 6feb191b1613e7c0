"""The official side of the Sa2VA tests under Sa2VA's pin (``tests/pinned_env.py``: transformers 4.57.0,
qwen-vl-utils 0.0.14), every case in one launch, so that the pinned packages are imported once a process:
``sa2va_qwen_official.py`` on each Qwen backbone whose official code is here
(``tests/litelvlm/sa2va/test_pipeline_under_the_official_pin.py``) and ``qwen2_llm_official.py`` on
Sa2VA-InternVL3's LLM (``tests/litelvlm/sa2va/internvl/test_pipeline_under_the_official_pin.py``), both
through ``tests/pinned_scripts/batch.py``."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from litelvlm.sa2va.checkpoint import random_sa2va_dir
from litelvlm.sa2va.config import get_preset
from litelvlm.sa2va.internvl.checkpoint import random_internvl_dir
from litelvlm.sa2va.protocol import ANSWERS_LIST, image_question, video_question
from tests import sa2va_official as off
from tests.pinned_env import run_pinned

#: the Qwen backbones' odd images and expression
SIZES = [(91, 137), (333, 41), (7, 300)]
SENTENCE = "the dog on the left"
#: backbone -> the random preset
BACKBONES = {"qwen3-vl": "qwen3-vl-tiny", "qwen2.5-vl": "tiny"}
#: Sa2VA-InternVL3's LLM: (attention, sequence length)
LLM_CASES = [("eager", 29), ("sdpa", 29), ("sdpa", 97)]


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype("uint8")


def qwen_cases() -> list[dict]:
    """The images of :data:`SIZES`, then a video of seven odd frames (the LLM sees the first five, each as an
    image)."""
    cases = [{"image": _image(*s, seed=k), "text": image_question(SENTENCE)} for k, s in enumerate(SIZES)]
    cases.append({"frames": [_image(61, 89, seed=10 + k) for k in range(7)],
                  "text": video_question(SENTENCE)})
    return cases


def llm_cases(folder: Path) -> list[dict]:
    """``inputs_embeds`` of :data:`LLM_CASES` at the folder's LLM width, each with its attention."""
    width = json.loads((folder / "config.json").read_text())["llm_config"]["hidden_size"]
    return [{"x": torch.randn(1, length, width, generator=torch.Generator().manual_seed(k)), "attn": attn}
            for k, (attn, length) in enumerate(LLM_CASES)]


@functools.cache
def official_side() -> SimpleNamespace:
    """``qwen``: backbone -> (folder, cases, the official results), for each backbone whose official code is
    here; ``internvl``: (folder, cases, the official results). The Qwen side is given the preset's
    ``min_pixels`` / ``max_pixels`` (the tests check that the pipeline reads the same)."""
    with tempfile.TemporaryDirectory(prefix="sa2va-pin-") as tmp:
        tmp, jobs, qwen = Path(tmp), [], {}
        for backbone in sorted(b for b in BACKBONES if off.available(b)):
            folder, p = random_sa2va_dir(BACKBONES[backbone], 0), get_preset(BACKBONES[backbone])
            qwen[backbone] = (folder, qwen_cases())
            torch.save(qwen[backbone][1], tmp / f"{backbone}.pt")
            jobs.append(["sa2va_qwen_official.py", str(off.CODE.parent / off.FOLDERS[backbone]), str(folder),
                         str(tmp / f"{backbone}.pt"), str(tmp / f"{backbone}-out.pt"), str(p.min_pixels),
                         str(p.max_pixels), ANSWERS_LIST[0]])
        folder = random_internvl_dir("internvl3-tiny", 0)
        internvl = (folder, llm_cases(folder))
        torch.save(internvl[1], tmp / "internvl.pt")
        jobs.append(["qwen2_llm_official.py", str(folder), str(tmp / "internvl.pt"),
                     str(tmp / "internvl-out.pt")])
        (tmp / "jobs.json").write_text(json.dumps(jobs))
        run_pinned("sa2va", "batch.py", str(tmp / "jobs.json"))
        return SimpleNamespace(
            qwen={b: (*v, torch.load(tmp / f"{b}-out.pt", weights_only=False)) for b, v in qwen.items()},
            internvl=(*internvl, torch.load(tmp / "internvl-out.pt", weights_only=False)))
