"""``litelvlm validate`` on a video model (a family whose card's ``input`` is ``video``): its input and its
budgets' LLM tokens.

* :func:`pick_video`: the first video of ``--video-dir`` (Ref-DAVIS-17 layout; default: the project's
  synthetic set, written to a temporary folder), its first clip (at most 64 frames, as
  ``eval_referdavis_infer.py`` L184-187 cuts a video) and its first expression (one per prompt, VideoGLaMM's
  protocol);
* :func:`llm_tokens`: the visual tokens the LLM receives in a run, which the FLOPs-ideal and the paper's
  analytic columns count (the video prompt: 16 frames x 144 context + 16 x 64 video tokens unpruned): an
  LLM-side method's ``round(3328 K / 576)``, a CLIP-side method's measured input (each frame's pooled kept
  tokens + the video stream);
* :func:`use_arrangement`: ``--arrangement`` (how a frame's K kept CLIP tokens meet the square-only
  pooling, ``litelvlm.videoglamm.pruning``; default ``pool``, the official pooling) given to the video
  pipeline, refused for an image model; :func:`arrangement_lines`: its label and, where pruning shortened
  no prompt, the null result (docs/video.md, "Which arrangement, and why").
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from litelvlm.cost.tokens import selects_on_clip
from litelvlm.errors import LiteLVLMError
from litelvlm.switches import ARRANGEMENTS
from litelvlm.video.datasets import load_ref_davis
from litelvlm.video.ref_davis import by_video
from litelvlm.video.runner import FRAME_PATCHES
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


#: the arrangement of a video run without ``--arrangement``: the official pooling (docs/video.md, "Which
#: arrangement, and why")
DEFAULT_ARRANGEMENT = "pool"
#: what each arrangement makes the LLM read of a frame's K kept CLIP tokens (``litelvlm.videoglamm.pruning``)
READS = {"pool": "the official pooling: the LLM reads 12 x 12 = 144 tokens a frame whatever K",
         "pool-min": "this project's reading: the LLM reads min(sqrt(K), 12)^2 tokens a frame",
         "direct": "this project's reading: the LLM reads the K projected tokens of a frame, unpooled"}


def arrangement_of(a) -> str:
    """The arrangement of a video run: ``--arrangement``, or :data:`DEFAULT_ARRANGEMENT`."""
    return a.arrangement or DEFAULT_ARRANGEMENT


def use_arrangement(a, pipe, methods: list[str]) -> None:
    """Give the video pipeline its arrangement (before the video's forwards); refuse ``--arrangement`` for an
    image model, an unknown one, and a non-square budget of a pooling one for the CLIP-side ``methods`` (the
    pipeline refuses a ``direct`` prompt past the LLM's positions when it assembles it)."""
    if a.model.card.input != "video":   # the model as its options resolved it
        if a.arrangement is not None:
            raise LiteLVLMError(f"--arrangement: {a.model} is an image model; the arrangement is a video "
                                "model's (how a frame's kept CLIP tokens meet its square-only pooling)")
        return
    arrangement = arrangement_of(a)
    if arrangement not in ARRANGEMENTS:
        raise LiteLVLMError(f"--arrangement must be one of {', '.join(ARRANGEMENTS)}; got "
                            f"{arrangement!r}")
    bad = sorted({k for b in a.budgets if math.isqrt(k := b.count(FRAME_PATCHES)) ** 2 != k}, reverse=True)
    if arrangement != "direct" and bad and any(selects_on_clip(pipe.spec(m)) for m in methods):
        raise LiteLVLMError(f"--arrangement {arrangement} pools a square grid: budgets {bad} are not squares "
                            "(196, 81, ...); use --arrangement direct")
    pipe.arrangement = arrangement


def arrangement_lines(a, pipe, rows) -> list[str]:
    """A video run's arrangement as one line (what the LLM reads a frame, and a prompt at each budget of the
    CLIP-side methods), then, where a pruning method's rows hold ``none``'s visual tokens (input and kept),
    one null-result line with the arrangement that would shorten the prompt; nothing for an image model."""
    if a.model.card.input != "video" or rows.empty:
        return []
    arrangement = arrangement_of(a)
    base = rows["method"].map(lambda m: pipe.spec(m).baseline)
    clip = rows["method"].map(lambda m: selects_on_clip(pipe.spec(m))) & ~base
    n = int(rows.loc[base, "visual_tokens_input"].iloc[0]) if base.any() else None
    by_k = rows[clip].drop_duplicates("budget")
    tokens = "; ".join([*([f"unpruned {n}"] if n is not None else []),
                        *(f"K={int(r.budget)} {int(r.visual_tokens_input)}" for r in by_k.itertuples())])
    said = (f"visual tokens the LLM reads a prompt: {tokens}" if len(by_k) else
            "no CLIP-side method ran, so it changes nothing here (LLM-side methods prune the LLM's tokens)")
    lines = [f"arrangement {arrangement} ({READS[arrangement]}): {said}"]
    same = (rows["visual_tokens_input"] == n) & (rows["visual_tokens_kept"] == n)
    idle = [m for m, d in rows[~base].groupby("method", sort=False) if same[d.index].all()]
    if n is not None and idle:
        fix = ("run --arrangement pool-min (this project's reading) to see what pruning saves"
               if arrangement == "pool" else "a per-frame budget under 144 shrinks the prompt")
        lines.append(f"null result: {', '.join(idle)}'s pruning changes no LLM token ({n} visual tokens in "
                     f"every row, as `none`'s; arrangement {arrangement}); {fix}")
    return lines


def with_arrangement(rows, a):
    """``rows`` with the run's ``arrangement`` column after ``budget`` (a video model's; ``rows`` as they are
    for an image model)."""
    if a.model.card.input != "video":   # the model as its options resolved it
        return rows
    out = rows.copy()
    out.insert(int(out.columns.get_loc("budget")) + 1, "arrangement", arrangement_of(a))
    return out


__all__ = ["DEFAULT_ARRANGEMENT", "READS", "arrangement_lines", "arrangement_of", "llm_tokens", "pick_video",
           "use_arrangement", "with_arrangement"]
