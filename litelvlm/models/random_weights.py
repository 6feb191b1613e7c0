"""What every family's random-weight builder shares: modules created directly in a dtype, and the fast fill of
the full-size presets.

Two ways to give a random model its values (``fill``):

* ``"init"``: each module's own initialisation (torch's ``reset_parameters``, transformers' ``_init_weights``)
  draws from the global generator seeded once, module by module, on one core. The tiny and scaled test presets
  are built this way, so their weights (and every result table of the default commands) stay as they were.
* ``"fast"`` (this project's own way of building the full-size presets): the modules are created without
  initialisation (:func:`skip_init`), then every parameter is drawn with one vectorised ``normal_`` (or filled
  with its constant) per chunk of :data:`CHUNK` elements, each chunk from its own generator seeded by (seed,
  tensor, chunk) (:func:`fast_fill`): deterministic under the seed whatever the number of threads, and run on
  every core (or on the GPU, where the model is built). The distributions are those of transformers'
  ``_init_weights`` (:func:`init_plan`: N(0, 0.02) matrices and embeddings, zero biases, unit norm weights),
  so a fast-filled model has the scale of an initialised one, not its exact values.

``"auto"`` (the builders' default) is ``"fast"`` for a full-size preset and ``"init"`` for a test preset
(:func:`resolve_fill`). :func:`progress` is the bar a build or a write of a large model shows on stderr.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.init as init
from tqdm.auto import tqdm

from ..switches import check_one_of
from .family_card import Lazy

#: transformers' model base class, whose ``initialize_weights`` :func:`skip_init` also turns off (imported
#: then: this module is read by the random presets' light helpers)
PRETRAINED_MODEL = Lazy("transformers.modeling_utils", "PreTrainedModel")

#: the ways to fill a random model (module docstring)
FILLS = ("auto", "init", "fast")
#: elements per independently seeded chunk of the fast fill
CHUNK = 1 << 22
#: the standard deviation of transformers' ``_init_weights`` (``initializer_range`` of Llama, Qwen2.5-VL, SAM)
INIT_STD = 0.02
#: a build or a write of fewer bytes shows no progress bar (a test preset takes well under a second)
PROGRESS_MIN_BYTES = 256 << 20
#: torch.nn.init functions that :func:`skip_init` turns into no-ops
_INIT_FUNCTIONS = ("uniform_", "normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_",
                   "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "orthogonal_",
                   "sparse_")


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Temporarily set torch's default dtype (modules are created directly in ``dtype``)."""
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(prev)


def resolve_fill(fill: str, full_size: bool) -> str:
    """``"init"`` or ``"fast"``: ``fill`` itself; for ``"auto"`` the environment's ``LITELVLM_RANDOM_FILL``
    where it names one, else ``"fast"`` on a full-size preset only. An unknown name is a ``LiteLVLMError``."""
    check_one_of("fill", fill, FILLS)
    if fill == "auto":
        fill = os.environ.get("LITELVLM_RANDOM_FILL", "") or "auto"
        check_one_of("LITELVLM_RANDOM_FILL", fill, FILLS)
    return ("fast" if full_size else "init") if fill == "auto" else fill


#: whether a random preset named by its model string is written to the cache folder and read back (the
#: default), or built in memory (:func:`no_write`)
_WRITES = [True]


@contextlib.contextmanager
def no_write(active: bool = True) -> Iterator[None]:
    """Within (``active``): a family that offers it builds a random preset named by its model string in memory
    and writes no checkpoint folder (``validate --no-write``, where only timings are wanted: the same tensors
    as the written folder's, whose round trip the tests prove on the tiny presets)."""
    _WRITES.append(not active)
    try:
        yield
    finally:
        _WRITES.pop()


def writes_folders() -> bool:
    """False within :func:`no_write`: random presets are built in memory, no checkpoint folder written."""
    return _WRITES[-1]


def cache_suffix(fill: str) -> str:
    """What a random model's cache folder name ends with for a resolved ``fill``: ``-fast`` for a fast-filled
    one, nothing for an initialised one (the names of earlier versions, whose folders were all
    initialised)."""
    return "-fast" if fill == "fast" else ""


@contextlib.contextmanager
def skip_init() -> Iterator[None]:
    """Within: modules are created without initialising their parameters (torch.nn.init's fills and
    transformers' ``initialize_weights`` do nothing; weight tying still runs): their values are whatever
    memory held until a fill or a ``load_state_dict`` sets them. Buffers computed in a constructor (rotary
    frequencies, position ids) are as usual. Not thread-safe (it patches module attributes)."""
    saved = {name: getattr(init, name) for name in _INIT_FUNCTIONS}
    patched: list = []
    try:
        PreTrainedModel = PRETRAINED_MODEL.get()
        patched.append(
            (PreTrainedModel, "initialize_weights", PreTrainedModel.__dict__["initialize_weights"]))
    except (ImportError, KeyError):  # pragma: no cover - transformers without initialize_weights
        pass
    try:
        for name in _INIT_FUNCTIONS:
            setattr(init, name, _keep)
        for owner, name, _ in patched:
            setattr(owner, name, _nothing)
        yield
    finally:
        for name, fn in saved.items():
            setattr(init, name, fn)
        for owner, name, fn in patched:
            setattr(owner, name, fn)


def skip_init_unless_kept(fast: bool, device: str | torch.device) -> contextlib.AbstractContextManager:
    """Where a builder creates its modules: :func:`skip_init` when their initial values would be thrown away
    (a fast fill follows, or ``device`` is ``meta``, which holds none), else nothing (``"init"``)."""
    return skip_init() if fast or torch.device(device).type == "meta" else contextlib.nullcontext()


def _keep(tensor, *args, **kwargs):
    return tensor


def _nothing(*args, **kwargs) -> None:
    return None


def init_plan(module: torch.nn.Module,
              std: float = INIT_STD) -> list[tuple[str, torch.Tensor, float, float | None]]:
    """(name, parameter, std, constant) for every distinct floating parameter of ``module``, as transformers'
    ``_init_weights`` sets them: a norm's weight 1 and bias 0 (a module whose class name holds ``Norm``), any
    other bias 0, everything else N(0, ``std``). ``constant`` None: drawn."""
    plan = []
    seen: set[int] = set()
    for mname, mod in module.named_modules():
        norm = "Norm" in type(mod).__name__
        for pname, p in mod.named_parameters(recurse=False):
            if id(p) in seen or not p.is_floating_point():
                continue
            seen.add(id(p))
            name = f"{mname}.{pname}" if mname else pname
            if norm and pname == "weight":
                plan.append((name, p, 0.0, 1.0))
            elif pname == "bias":
                plan.append((name, p, 0.0, 0.0))
            else:
                plan.append((name, p, std, None))
    return plan


def fan_in_plan(named: Iterable[tuple[str, torch.Tensor]]) -> list[
    tuple[str, torch.Tensor, float, float | None]]:
    """The plan of :func:`litelvlm.sam2.keys.randomize`'s distributions: N(0, 1/fan_in) matrices, N(0, 0.25)
    vectors, N(0, 1) for a random-Fourier matrix (floating tensors only)."""
    plan = []
    for name, t in named:
        if not t.is_floating_point():
            continue
        if "positional_encoding_gaussian_matrix" in name or "positional_embedding" in name:
            std = 1.0
        else:
            std = t[0].numel() ** -0.5 if t.dim() > 1 else 0.5
        plan.append((name, t, std, None))
    return plan


def progress(total_bytes: int, desc: str):
    """A tqdm.auto bar over ``total_bytes`` on stderr, disabled under :data:`PROGRESS_MIN_BYTES`."""
    return tqdm(total=total_bytes, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, mininterval=1.0,
                disable=total_bytes < PROGRESS_MIN_BYTES)


def _chunk_seed(seed: int, index: int, chunk: int) -> int:
    return (seed * 1_000_003 + index * 65_537 + chunk) % (1 << 63)


def fast_fill(plan: list[tuple[str, torch.Tensor, float, float | None]], seed: int,
              desc: str = "random weights", workers: int | None = None) -> None:
    """Fill every tensor of ``plan`` (:func:`init_plan`, :func:`fan_in_plan`) in place: a constant, or N(0,
    std) drawn chunk by chunk (:data:`CHUNK` elements, each chunk's generator seeded by ``seed``, the tensor's
    place in ``plan`` and the chunk's), in ``workers`` threads (default: every core); a bar over the bytes
    filled. Tensors on the meta device (a model built only to be counted) hold no data and are left as they
    are."""
    tasks = []
    plan = [(name, t, std, const) if not t.is_meta else (name, None, std, const) for name, t, std,
            const in plan]
    for i, (_, t, std, const) in enumerate(plan):
        if t is None:
            continue
        flat = t.detach().view(-1)
        for c, start in enumerate(range(0, max(flat.numel(), 1), CHUNK)):
            tasks.append((flat[start:start + CHUNK], _chunk_seed(seed, i, c), std, const))
    total = sum(t.numel() * t.element_size() for _, t, _, _ in plan if t is not None)

    def one(task) -> int:
        part, s, std, const = task
        with torch.no_grad():
            if const is not None:
                part.fill_(const)
            else:
                gen = torch.Generator(device=part.device).manual_seed(s)
                part.normal_(0.0, std, generator=gen)
        return part.numel() * part.element_size()

    n = workers or max(1, min(32, os.cpu_count() or 1))
    with progress(total, desc) as bar, ThreadPoolExecutor(n) as pool:
        for done in pool.map(one, tasks):
            bar.update(done)


__all__ = ["CHUNK", "FILLS", "INIT_STD", "PROGRESS_MIN_BYTES", "cache_suffix", "default_dtype", "fan_in_plan",
           "fast_fill", "init_plan", "no_write", "writes_folders", "progress", "resolve_fill", "skip_init"]
