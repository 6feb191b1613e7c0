"""Sa2VA-Qwen2.5-VL's sizes and constants: which Qwen2.5-VL, which SAM 2, the added tokens, the pixel bounds.

Source: bytedance/Sa2VA @ 9832e1a. Importing this module is light.

Details: docs/sa2va.md (`litelvlm.sa2va.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import LiteLVLMError
from ..models.channel_stats import IMAGENET_MEAN, IMAGENET_STD
from ..models.presets import named_preset
from ..qwen.config import SPECIAL_TOKENS, QwenPreset
from ..qwen.config import get_preset as get_qwen_preset
from ..sam2.config import SAM2_HIERA_L, SAM2_SIZES, Sam2Size, sam2_size
from ..sam2.config import sam2_config as build
from .card import CARD
from .qwen3_config import QWEN3_SPECIAL_TOKENS
from .qwen3_config import get_preset as get_qwen3_preset

#: ``sa2va_qwen25_3b.py`` L53: the tokens Sa2VA adds, in that order (ids 151665..151669 in the released
#: models)
EXTRA_TOKENS: tuple[str, ...] = ("[SEG]", "<p>", "</p>", "<vp>", "</vp>")
SEG_TOKEN = "[SEG]"
#: ``Sa2VAChatConfigQwen.model_type`` and the saved class (``configuration_sa2va_chat.py`` L12-13,
#: ``modeling_sa2va_qwen.py`` L31)
MODEL_TYPE = "sa2va_chat"
ARCHITECTURE = "Sa2VAChatModelQwen"
#: the config's ``template`` (``sa2va_qwen25_3b.py`` L32)
TEMPLATE = "qwen_chat"
#: ``sam2.py`` L134-135: SAM 2's input normalisation (on ``uint8 / 255``): ImageNet's
SAM_MEAN, SAM_STD = IMAGENET_MEAN, IMAGENET_STD
#: the LVLMs a Sa2VA preset is built on: backbone -> (the lookup of its ``qwen`` preset, its special tokens):
#: Qwen2.5-VL (:mod:`litelvlm.qwen.config`) and Qwen3-VL (:mod:`litelvlm.sa2va.qwen3_config`)
BACKBONES = {"qwen2.5-vl": (get_qwen_preset, SPECIAL_TOKENS),
             "qwen3-vl": (get_qwen3_preset, QWEN3_SPECIAL_TOKENS)}


@dataclass(frozen=True)
class Sa2VAPreset:
    """A Sa2VA-Qwen2.5-VL model: its Qwen2.5-VL preset, its SAM 2, SAM 2's input size, the LLM's pixel
    bounds."""

    name: str
    qwen: str                     # litelvlm.qwen.config preset
    sam2: str                     # a litelvlm.sam2.config.SAM2_SIZES key ("sam2_hiera_l" released)
    image_size: int = 1024        # SAM2(image_size=1024), DirectResize(1024)
    min_pixels: int = 512 * 28 * 28
    max_pixels: int = 2048 * 28 * 28
    #: the LVLM (a :data:`BACKBONES` key) whose preset ``qwen`` names
    backbone: str = "qwen2.5-vl"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise LiteLVLMError(f"Sa2VA preset {self.name!r}: unknown backbone {self.backbone!r}; known: "
                                f"{', '.join(BACKBONES)}")
        self._llm()
        if self.sam2 not in SAM2_SIZES:
            raise LiteLVLMError(f"Sa2VA preset {self.name!r}: unknown SAM 2 size {self.sam2!r}")
        if self.image_size % 32:
            raise LiteLVLMError(f"Sa2VA preset {self.name!r}: the SAM 2 input size {self.image_size} must be "
                                "a multiple of 32")

    @property
    def sam2_size(self) -> Sam2Size:
        return sam2_size_of(self.sam2)

    @property
    def full_size(self) -> bool:
        """Whether this is a released size (fast-filled when random), not one of the tests' small presets."""
        return self.name not in CARD.small_presets

    def _llm(self):
        """(the backbone's preset ``qwen`` names, the backbone's special tokens)."""
        lookup, specials = BACKBONES[self.backbone]
        return lookup(self.qwen), specials

    @property
    def vocab_size(self) -> int:
        """The embedding rows after ``resize_token_embeddings(len(tokenizer))``: Qwen's tokens plus the five
        added."""
        q, specials = self._llm()
        return q.special_base + len(specials) + len(EXTRA_TOKENS)

    def qwen_preset(self) -> QwenPreset:
        """The backbone's preset (Qwen2.5-VL's or Qwen3-VL's) with its rows resized to :attr:`vocab_size` (as
        Sa2VA's training leaves them)."""
        return replace(self._llm()[0], vocab_size=self.vocab_size)

    def token_ids(self) -> dict[str, int]:
        """Each added token's id: right after the Qwen tokenizer's last token, in :data:`EXTRA_TOKENS`
        order."""
        q, specials = self._llm()
        first = q.special_base + len(specials)
        return {t: first + i for i, t in enumerate(EXTRA_TOKENS)}


PRESETS: dict[str, Sa2VAPreset] = {
    # ByteDance/Sa2VA-Qwen2_5-VL-3B: sa2va_qwen25_3b.py L28 + modeling_sa2va_qwen.py
    "3b": Sa2VAPreset(name="3b", qwen="3b", sam2="sam2_hiera_l"),
    # ByteDance/Sa2VA-Qwen2_5-VL-7B: sa2va_qwen25_7b.py L28
    "7b": Sa2VAPreset(name="7b", qwen="7b", sam2="sam2_hiera_l"),
    # tests: the tiny Qwen, the pixel bounds a sixteenth of the released (32..128 merged tokens: grids every
    # method's windows fit), and the tiny SAM 2 at 128 px
    "tiny": Sa2VAPreset(name="tiny", qwen="tiny", sam2="tiny", image_size=128, min_pixels=32 * 28 * 28,
                        max_pixels=128 * 28 * 28),
    # ByteDance/Sa2VA-Qwen3-VL-4B: sa2va_qwen3_4b.py L28 (Qwen/Qwen3-VL-4B-Instruct) + models_qwen3vl/
    # modeling_sa2va_qwen.py (the same SAM 2, text_hidden_fcs and pixel bounds, L43-63)
    "qwen3-vl-4b": Sa2VAPreset(name="qwen3-vl-4b", qwen="4b", sam2="sam2_hiera_l", backbone="qwen3-vl"),
    # tests: the tiny Qwen3-VL, the tiny SAM 2 at 128 px, the bounds of the tiny preset above
    "qwen3-vl-tiny": Sa2VAPreset(name="qwen3-vl-tiny", qwen="tiny", sam2="tiny", image_size=128,
                                 min_pixels=32 * 28 * 28, max_pixels=128 * 28 * 28, backbone="qwen3-vl"),
}
#: Random Sa2VA models: ``<name>-random`` -> the preset it builds (the model strings of this family)
RANDOM_SA2VAS = CARD.presets
#: the default model string of this family's commands: random weights of the tiny preset
DEFAULT_MODEL = CARD.default_model


def sam2_size_of(name: str) -> Sam2Size:
    """The SAM 2 size a preset (or a random folder's ``litelvlm_random`` record) names (``sam2.py`` L137-151,
    L166-168, L181-229, L274-283: the released Hiera-L is :data:`litelvlm.sam2.config.SAM2_HIERA_L`)."""
    return sam2_size(name)


def get_preset(name: str | Sa2VAPreset) -> Sa2VAPreset:
    """The named Sa2VA preset (an unknown name is an error listing the known ones)."""
    return named_preset(PRESETS, name, Sa2VAPreset, "Sa2VA")


def sam2_config(size: Sam2Size, image_size: int):
    """transformers ``Sam2Config`` of Sa2VA's SAM 2 (the image path): the Hiera/FPN/SAM heads of
    :func:`litelvlm.sam2.config.sam2_config` with Sa2VA's ``dynamic_multimask_via_stability`` (``sam2.py``
    L120-124: only read when one mask is asked, which a prompt without points never does)."""
    return build(size, image_size, stability=True)


__all__ = ["ARCHITECTURE", "BACKBONES", "DEFAULT_MODEL", "EXTRA_TOKENS", "MODEL_TYPE", "PRESETS",
           "RANDOM_SA2VAS",
           "SAM2_HIERA_L",
           "SEG_TOKEN", "Sa2VAPreset", "TEMPLATE", "get_preset", "sam2_config", "sam2_size_of"]
