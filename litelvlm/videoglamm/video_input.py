"""VideoGLaMM's prepared input: one clip and, after ``with_sentences``, its prompt
(:class:`VideoGLaMMInput`, a :class:`~litelvlm.lvlm.prepared.Prepared`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..clip.traces import TextTrace, VisionTrace
from ..errors import LiteLVLMError
from ..lvlm.prepared import Prepared
from ..pruning import SelectorInputs
from .inference import PreparedClip
from .pruning import frame_inputs


@dataclass
class VideoGLaMMInput(Prepared):
    """One clip (and, after ``with_sentences``, its prompt): everything every method and budget reuses."""

    # the frames, the 16 LLM frames' tokens, SAM 2's features of every frame
    clip: PreparedClip
    #: the paired CLIP's text trace of the sentence (made by ``with_sentences``, computed on first use)
    text: Callable[[], TextTrace] | None = field(default=None, repr=False, compare=False)
    #: the clip's CLIP trace (made by ``with_sentences``, computed on first use)
    trace: Callable[[], VisionTrace] | None = field(default=None, repr=False, compare=False)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the clip's frames."""
        return self.clip.original_size

    @property
    def num_frames(self) -> int:
        return len(self.clip.frames)

    def selector_inputs(self, frame: int = 0) -> SelectorInputs:
        """Frame ``frame``'s CLIP trace and text: what a CLIP-side method reads, one frame at a time."""
        if self.text is None or self.trace is None:
            raise LiteLVLMError("no sentence yet: call with_sentences before a CLIP-side method")
        return frame_inputs(self.trace(), self.text(), frame, self.seed)
