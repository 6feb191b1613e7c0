"""UniPixel's sizes: which Qwen2.5-VL, which SAM 2.1, the SAM input size and the hidden-state prompt length.

Source: PolyU-ChenLab/UniPixel @ 5c8e941. Importing this module is light.

Details: docs/unipixel.md (``litelvlm.unipixel.config``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LiteLVLMError
from ..models.presets import named_preset
from ..qwen.config import SPECIAL_TOKENS
from ..qwen.config import get_preset as get_qwen_preset
from ..sam2.config import SAM2_SIZES, Sam2Size, sam2_config  # noqa: F401 (UniPixel's SAM 2.1 sizes)

#: UniPixel's extra tokens (``unipixel/constants.py`` L5-7), in the order ``train.py`` L173 adds them.
EXTRA_TOKENS: tuple[str, ...] = ("<|ref|>", "<|seg|>", "<|mem|>")
#: ``PixelQwen2_5_VLConfig.model_type`` and the saved class (``unipixel/model/qwen2_5_vl.py`` L32-33, L55).
MODEL_TYPE = "pixel_qwen2_5_vl"
ARCHITECTURE = "PixelQwen2_5_VLForConditionalGeneration"
@dataclass(frozen=True)
class UniPixelPreset:
    """A UniPixel model: its Qwen2.5-VL preset, its SAM 2.1, and the ``sam2_*`` settings of
    ``config.json``."""

    name: str
    qwen: str                     # litelvlm.qwen.config preset
    sam2: str                     # litelvlm.sam2.config.SAM2_SIZES key
    sam2_config: str              # the --sam2_config string (hydra config name)
    image_size: int = 768         # --sam2_image_size
    hidden_tokens: int = 2        # --sam2_hidden_tokens
    batch_mode: bool = False      # --sam2_batch_mode

    def __post_init__(self) -> None:
        get_qwen_preset(self.qwen)
        if self.sam2 not in SAM2_SIZES:
            raise LiteLVLMError(f"UniPixel preset {self.name!r}: unknown SAM 2 size {self.sam2!r}")
        if self.image_size % 32:
            raise LiteLVLMError(f"UniPixel preset {self.name!r}: the SAM 2 input size {self.image_size} must "
                                "be a multiple of 32 (three q-pooling stages after a stride-4 patch "
                                "embedding)")

    @property
    def sam2_size(self) -> Sam2Size:
        return SAM2_SIZES[self.sam2]

    def token_ids(self) -> dict[str, int]:
        """``ref_token_id``, ``seg_token_id``, ``mem_token_id``: the ids after the Qwen tokenizer's last
        token."""
        q = get_qwen_preset(self.qwen)
        first = q.special_base + len(SPECIAL_TOKENS)  # Qwen's tokenizer length (151665 for the real sizes)
        return {f"{t.strip('<|>')}_token_id": first + i for i, t in enumerate(EXTRA_TOKENS)}


PRESETS: dict[str, UniPixelPreset] = {
    # scripts/launch_3b.sh L102-114
    "3b": UniPixelPreset(name="3b", qwen="3b", sam2="sam2.1_hiera_b+", sam2_config="configs/sam2.1_hiera_b+"),
    # scripts/launch_7b.sh L102-114
    "7b": UniPixelPreset(name="7b", qwen="7b", sam2="sam2.1_hiera_b+", sam2_config="configs/sam2.1_hiera_b+"),
    "tiny":
    UniPixelPreset(name="tiny", qwen="tiny", sam2="tiny", sam2_config="litelvlm/sam2_tiny", image_size=128),
}
#: ``config.json``'s ``sam2_config`` (a hydra config name under UniPixel's ``sam2/``) -> the SAM 2 size it
#: builds
SAM2_CONFIG_NAMES: dict[str, str] = {"configs/sam2.1_hiera_b+": "sam2.1_hiera_b+",
                                     "litelvlm/sam2_tiny": "tiny"}


def sam2_size_of(sam2_config_name: str) -> Sam2Size:
    """The SAM 2 size a ``config.json`` ``sam2_config`` names (an unknown one is an error listing the known
    ones)."""
    if sam2_config_name not in SAM2_CONFIG_NAMES:
        raise LiteLVLMError(f"sam2_config {sam2_config_name!r} is not a SAM 2 this project builds; known: "
                            + ", ".join(sorted(SAM2_CONFIG_NAMES)))
    return SAM2_SIZES[SAM2_CONFIG_NAMES[sam2_config_name]]


def get_preset(name: str | UniPixelPreset) -> UniPixelPreset:
    """The named UniPixel preset (an unknown name is an error listing the known ones)."""
    return named_preset(PRESETS, name, UniPixelPreset, "UniPixel")
