"""Weight quantization of chosen ``nn.Linear`` layers: bitsandbytes 8-bit (LLM.int8()) or 4-bit NF4, torchao
int8 weight-only. GLaMM's LLM decoder layers (:func:`quantize_llm_layers`), and CLIP's encoder layers
(:func:`quantize_clip`, this project's option for asking whether quantization changes what LiteLVLM keeps).

Details: docs/quantization.md (``litelvlm.models.quantize``).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import LiteLVLMError
from ..machine.optional import optional_import
from ..switches import QUANTIZE_BACKENDS, QUANTIZE_MODES

log = logging.getLogger(__name__)

#: the module paths (in ``GlammModel``) whose ``nn.Linear`` layers are quantized; nothing else is
QUANTIZED_PREFIX = "llava.model.language_model.layers."
#: the same for a transformers ``CLIPModel``: the vision and text encoder layers (embeddings, the final
#: norms and the projections keep their dtype)
CLIP_PREFIXES = ("vision_model.encoder.layers.", "text_model.encoder.layers.")
#: bitsandbytes' 4-bit block: a layer whose input size is not a multiple of it runs slower kernels (and
#: keeps the model's dtype if bitsandbytes fails to quantize it)
NF4_BLOCK = 64
#: LLM.int8()'s outlier threshold (``BitsAndBytesConfig.llm_int8_threshold``'s default)
INT8_THRESHOLD = 6.0


@dataclass(frozen=True)
class QuantReport:
    """What :func:`quantize_llm_layers` did: the mode and backend, how many layers it quantized, which it
    kept."""

    mode: str
    backend: str
    quantized: int
    kept: tuple[str, ...] = ()
    version: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kept"] = list(self.kept)
        return d


def check_quantize(mode: str, backend: str = "bitsandbytes") -> None:
    """Refuse an unknown ``--quantize`` / ``--quantize-backend`` or a pair no backend offers, before any
    work."""
    if mode not in QUANTIZE_MODES:
        raise LiteLVLMError(f"--quantize {mode!r}: choose one of {', '.join(QUANTIZE_MODES)}")
    if backend not in QUANTIZE_BACKENDS:
        raise LiteLVLMError(f"--quantize-backend {backend!r}: choose one of {', '.join(QUANTIZE_BACKENDS)}")
    if mode == "nf4" and backend == "torchao":
        raise LiteLVLMError("--quantize nf4 is bitsandbytes' 4-bit NF4; torchao serves --quantize int8 only "
                            "(use --quantize-backend bitsandbytes)")


#: bitsandbytes' loggers that warn at import of what this project does not use (on a CPU with avx512_bf16:
#: "Failed to load CPU gemm_4bit_forward from kernels-community", an optional hub kernel it falls back from)
QUIET_LOGGERS = ("bitsandbytes.backends.cpu.ops",)


def _import(backend: str):
    """Import ``backend`` (un-hiding it where the command line deferred it,
    :func:`litelvlm.cli.defer_quantization_backends`) with its import-time notices about optional kernels
    silenced."""
    if backend in sys.modules and sys.modules[backend] is None:
        del sys.modules[backend]
    try:
        if backend == "bitsandbytes":
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
            lib = optional_import("bitsandbytes")
        else:
            # torchao's enums, warned once each
            logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
            lib = optional_import("torchao")
    except ImportError as e:
        raise LiteLVLMError(f"--quantize-backend {backend} needs the {backend} package: "
                            "pip install 'litelvlm[quantize]'") from e
    return lib


def quantized_linears(model: nn.Module,
                      prefixes: tuple[str, ...] = (QUANTIZED_PREFIX,)) -> list[tuple[str, nn.Linear]]:
    """(path, layer) of every ``nn.Linear`` under ``prefixes`` (default: GLaMM's decoder layers): the layers
    quantization replaces."""
    return [(n, m) for n, m in model.named_modules() if n.startswith(prefixes) and type(m) is nn.Linear]


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent), name, module)


def _bnb_layer(bnb, lin: nn.Linear, mode: str, device: torch.device) -> nn.Module:
    """One bitsandbytes layer holding ``lin``'s weights, quantized as they move to ``device``."""
    w = lin.weight.data.to("cpu")  # bitsandbytes quantizes a CPU tensor as it is moved (also to the CPU)
    if mode == "int8":
        new = bnb.nn.Linear8bitLt(lin.in_features, lin.out_features, bias=lin.bias is not None,
                                  has_fp16_weights=False, threshold=INT8_THRESHOLD, device="meta")
        new.weight = bnb.nn.Int8Params(w, requires_grad=False, has_fp16_weights=False)
    else:
        new = bnb.nn.Linear4bit(lin.in_features, lin.out_features, bias=lin.bias is not None,
                                compute_dtype=lin.weight.dtype, compress_statistics=True, quant_type="nf4",
                                device="meta")
        new.weight = bnb.nn.Params4bit(w, requires_grad=False, compress_statistics=True, quant_type="nf4",
                                       blocksize=NF4_BLOCK, module=new)
    if lin.bias is not None:
        new.bias = nn.Parameter(lin.bias.data.to("cpu"), requires_grad=False)
    return new.to(device)


def quantize_llm_layers(model: nn.Module, mode: str, backend: str = "bitsandbytes",
                   device: str | torch.device | None = None) -> QuantReport:
    """Quantize the LLM decoder layers' ``nn.Linear`` weights of ``model`` (under :data:`QUANTIZED_PREFIX`) in
    place and move the whole model to ``device`` (default: where it is). ``mode="none"`` only moves it."""
    return quantize_linears(model, (QUANTIZED_PREFIX,), mode, backend, device)


def quantize_clip(model: nn.Module, mode: str, backend: str = "bitsandbytes",
                  device: str | torch.device | None = None) -> QuantReport:
    """Quantize the encoder layers of a transformers ``CLIPModel`` (vision and text, :data:`CLIP_PREFIXES`)
    in place; the embeddings, final norms and projections keep their dtype."""
    return quantize_linears(model, CLIP_PREFIXES, mode, backend, device)


def quantize_linears(model: nn.Module, prefixes: tuple[str, ...], mode: str, backend: str = "bitsandbytes",
                     device: str | torch.device | None = None) -> QuantReport:
    """Quantize every ``nn.Linear`` under ``prefixes`` in ``model`` in place and move the whole model to
    ``device`` (default: where it is). ``mode="none"`` only moves it."""
    check_quantize(mode, backend)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if mode == "none":
        model.to(device)
        return QuantReport(mode, "", 0)
    lib = _import(backend)
    layers = quantized_linears(model, prefixes)
    kept: list[str] = []
    if backend == "torchao":
        quantization = optional_import("torchao.quantization")
        model.to(device)
        quantization.quantize_(model, quantization.Int8WeightOnlyConfig(), filter_fn=lambda m, fqn: (
            type(m) is nn.Linear and fqn.startswith(prefixes)))
    else:
        odd = [n for n, m in layers if mode == "nf4" and m.in_features % NF4_BLOCK]
        if odd:  # bitsandbytes 0.50 quantizes them and warns of a slower kernel; older releases may fail
            log.warning("nf4: %d layers have an input size that is not a multiple of bitsandbytes' block of "
                        "%d (%s): slower kernels, and any that fails to quantize keeps the model's dtype",
                        len(odd), NF4_BLOCK, ", ".join(odd[:3]))
        for name, lin in layers:
            try:
                _set(model, name, _bnb_layer(lib, lin, mode, device))
            except (RuntimeError, ValueError, AssertionError) as e:
                if name not in odd:
                    raise
                kept.append(name)
                log.warning("nf4: %s keeps the model's dtype (bitsandbytes: %s)", name, e)
        model.to(device)  # everything else (bitsandbytes' layers are there already)
    n = len(layers) - len(kept)
    log.info("quantized %d linear layers to %s with %s %s", n, mode, backend, lib.__version__)
    return QuantReport(mode, backend, n, tuple(kept), str(lib.__version__))


__all__ = ["CLIP_PREFIXES", "NF4_BLOCK", "QUANTIZED_PREFIX", "QUANTIZE_BACKENDS", "QUANTIZE_MODES",
           "QuantReport",
           "check_quantize", "quantize_clip", "quantize_llm_layers", "quantize_linears", "quantized_linears"]
