"""``litelvlm validate`` on a video model (a family whose card's ``input`` is ``video``): its input and its
budgets' LLM tokens.

* :func:`pick_video`: the first video of ``--video-dir`` (Ref-DAVIS-17 layout; default: the project's
  synthetic set, written to a temporary folder), its first clip (at most 64 frames, as
  ``eval_referdavis_infer.py`` L184-187 cuts a video) and its first expression (one per prompt, VideoGLaMM's
  protocol);
* :func:`llm_tokens`: the visual tokens the LLM receives in a run, which the FLOPs-ideal and the paper's
  analytic columns count (the video prompt: 16 frames x 144 context + 16 x 64 video tokens unpruned): an
  LLM-side method's ``round(3328 K / 576)``, a CLIP-side method's measured input (each frame's pooled kept
  tokens + the video stream).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from litelvlm.cost.tokens import selects_on_clip
from litelvlm.errors import LiteLVLMError
from litelvlm.video.datasets import load_ref_davis
from litelvlm.video.ref_davis import by_video
from litelvlm.video.synthetic import write_synthetic_videos

#: the longest clip validated: the Ref-DAVIS evaluation cuts a video into clips of at most 64 frames
#: (``eval_referdavis_infer.py`` L184-187, mbzuai-oryx/VideoGLaMM @6b15b1e)
CLIP_FRAMES = 64


def pick_video(a, tmp: str) -> tuple[object, list[np.ndarray], Path]:
    """(the first expression's record, the first clip's frames, the data folder) of ``--video-dir`` or of the
    synthetic set written under ``tmp``."""
    root = Path(a.video_dir) if a.video_dir else write_synthetic_videos(Path(tmp) / "synthetic", videos=1,
                                                                        frames=8, size=(64, 48), seed=a.seed)
    groups = by_video(load_ref_davis(root, "valid" if a.split == "val" else a.split))
    if not groups:
        raise LiteLVLMError(f"{root} has no video in its split")
    rec = next(iter(groups.values()))[0]
    frames = [np.asarray(rec.frame(i)) for i in range(min(len(rec.frames), CLIP_FRAMES))]
    return rec, frames, root


def llm_tokens(pipe, rows) -> dict[tuple[str, int], int]:
    """{(method, per-frame budget): the visual tokens the LLM receives (its K for the FLOPs counts)} of
    ``rows``."""
    out = {}
    for m, b, given in zip(rows["method"], rows["budget"], rows["visual_tokens_input"], strict=True):
        out[(m, int(b))] = int(given) if selects_on_clip(pipe.spec(m)) else pipe.llm_budget(int(b))
    return out


__all__ = ["llm_tokens", "pick_video"]
