"""VideoGLaMM's sizes: Phi-3-mini, CLIP ViT-L/14-336, InternVideo2-1B (4-frame chunks), SAM 2 Hiera-L.

Source: mbzuai-oryx/VideoGLaMM @ 6b15b1e (``VideoGLaMM/``).

Details: docs/videoglamm.md (``litelvlm.videoglamm.config``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LiteLVLMError
from ..models.presets import named_preset
from ..sam2.config import SAM2_HIERA_L, SAM2_TINY, Sam2Size
from ..sam2.config import sam2_config as base

#: ``model_type`` and the saved class of a VideoGLaMM folder (``phi3.py`` L18-19, ``VideoGLaMM.py`` L882).
MODEL_TYPE = "VideoGPT+"
ARCHITECTURE = "VideoGLaMMForCausalLM"
#: ``model/videogpt_plus/constants.py`` L6-7 and L12.
NUM_FRAMES = 16
CHUNK_SIZE = 4
IMAGE_TOKEN_INDEX = -200

@dataclass(frozen=True)
class InternVideo2Size:
    """``PretrainInternVideo2``'s sizes (internvideo2.py L388-421) as VideoGLaMM builds it."""

    embed_dim: int = 1408
    depth: int = 40
    num_heads: int = 16
    mlp_ratio: float = 48 / 11
    img_size: int = 224
    patch_size: int = 14
    num_frames: int = 4          # the chunk size the position embedding is built for
    clip_embed_dim: int = 768    # attention-pooling output (unused by VideoGLaMM's features)

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)


@dataclass(frozen=True)
class VideoGLaMMPreset:
    """Every size of a VideoGLaMM model."""

    name: str
    llm_hidden: int
    llm_layers: int
    llm_heads: int
    llm_intermediate: int
    vocab_size: int                 # after [SEG] (the resized embedding)
    special_base: int               # first special token id of the Phi-3 tokenizer (32000)
    clip_width: int
    clip_layers: int
    clip_heads: int
    internvideo: InternVideo2Size
    sam2: Sam2Size
    sam2_image_size: int = 1024
    out_dim: int = 256
    projector_type: str = "mlp2x_gelu"
    clip_image_size: int = 336
    clip_patch_size: int = 14
    max_position_embeddings: int = 4096
    sliding_window: int = 2047      # config.json's value (transformers 4.41 reads it as 2048 visible keys)
    dtype: str = "bfloat16"

    def __post_init__(self) -> None:
        grid = self.clip_image_size // self.clip_patch_size
        if grid != 24 or self.internvideo.grid != 16:
            raise LiteLVLMError(f"VideoGLaMM preset {self.name!r}: the pooling needs a 24 x 24 CLIP grid and "
                                f"a 16 x 16 InternVideo2 grid (arch.py L164-191), got {grid} and "
                                f"{self.internvideo.grid}")
        if self.projector_type not in ("linear", "mlp2x_gelu"):
            raise LiteLVLMError(f"VideoGLaMM preset {self.name!r}: unknown projector type "
                                f"{self.projector_type!r}")

    @property
    def seg_token_id(self) -> int:
        return self.vocab_size - 1

    @property
    def clip_tokens(self) -> int:
        """CLIP patch tokens per frame before pooling (576)."""
        return (self.clip_image_size // self.clip_patch_size) ** 2

    @property
    def visual_tokens(self) -> int:
        """LLM visual tokens of a video: 16 x 144 CLIP then 16 x 64 InternVideo2 (3328)."""
        return NUM_FRAMES * 144 + NUM_FRAMES * 64


PRESETS: dict[str, VideoGLaMMPreset] = {
    # Phi-3-mini-4k-instruct's config.json: 3072 wide, 32 layers, 32 heads, MLP 8192; vocabulary 32064 resized
    # to the tokenizer's 32011 + [SEG]
    "videoglamm": VideoGLaMMPreset(name="videoglamm", llm_hidden=3072, llm_layers=32, llm_heads=32,
                                   llm_intermediate=8192, vocab_size=32012, special_base=32000,
                                   clip_width=1024,
                                   clip_layers=24, clip_heads=16, internvideo=InternVideo2Size(),
                                   sam2=SAM2_HIERA_L),
    "tiny": VideoGLaMMPreset(name="tiny", llm_hidden=64, llm_layers=2, llm_heads=4, llm_intermediate=128,
                             vocab_size=412, special_base=400, clip_width=32, clip_layers=2, clip_heads=2,
                             internvideo=InternVideo2Size(embed_dim=32, depth=3, num_heads=2,
                                                          clip_embed_dim=16),
                             sam2=SAM2_TINY, sam2_image_size=128, out_dim=32, dtype="float32"),
}


def get_preset(name: str | VideoGLaMMPreset) -> VideoGLaMMPreset:
    """The named VideoGLaMM preset (an unknown name is an error listing the known ones)."""
    return named_preset(PRESETS, name, VideoGLaMMPreset, "VideoGLaMM")


def sam2_config(p: VideoGLaMMPreset):
    """transformers ``Sam2Config`` of the SAM 2 image path with ``build_sam2``'s post-processing settings."""
    return base(p.sam2, p.sam2_image_size, stability=True)


__all__ = ["ARCHITECTURE", "CHUNK_SIZE", "IMAGE_TOKEN_INDEX", "MODEL_TYPE", "NUM_FRAMES",
           "PRESETS", "InternVideo2Size", "VideoGLaMMPreset", "get_preset", "sam2_config"]
