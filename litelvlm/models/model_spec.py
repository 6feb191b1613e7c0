"""The model-string language, read in one place (as open_clip's ``parse_model_name`` reads its own).

A model string is one of:

* ``<name>-random[:SEED]``: random weights of an architecture, written to the cache and loaded back
  through the real path (CLIP towers: :data:`RANDOM_CLIPS`; Qwen2.5-VL: :data:`RANDOM_QWENS`, e.g.
  ``qwen2.5-vl-7b-random:1``; each model family's presets: its card's ``presets``,
      :mod:`litelvlm.registry.families`);
* an open_clip string: ``ARCH:TAG``, ``ARCH:/path/ckpt.pt``, ``local-dir:/path`` or ``hf-hub:org/name``;
* a hub id or a local folder (transformers' ``save_pretrained`` layout, or a family's released checkpoint
layout).

This module imports nothing heavy; what a string names on disk (a folder's files and markers) is read by
the code that loads it.
"""

from __future__ import annotations

from ..errors import LiteLVLMError

#: The default CLIP model of the hf backend (LLaVA-1.5's and GLaMM's vision tower): the paper's CLIP.
DEFAULT_HF_MODEL = "openai/clip-vit-large-patch14-336"
#: The default ``--model`` of every command that takes a CLIP: random weights on the paper's 24x24 grid at
#: 336 px, which run offline (one rule for every command; each help text names the paper's model too).
COMMAND_CLIP_MODEL = "tiny336-random"
#: How every command's ``--model`` help names the defaults and the paper's models.
CLIP_MODEL_HELP = (f"default: {COMMAND_CLIP_MODEL}, random weights that run offline; the paper's CLIP is "
                   f"{DEFAULT_HF_MODEL}")
#: Random CLIP towers: ``<name>-random`` -> the ``litelvlm.clip.random_init`` preset it builds.
RANDOM_CLIPS = {"tiny-random": "tiny", "tiny336-random": "tiny-336", "vit-l-14-336-random": "vit-l-14-336"}
#: Random Qwen2.5-VL models: ``<name>-random`` -> the ``litelvlm.qwen.config.PRESETS`` preset it builds.
RANDOM_QWENS = {"qwen2.5-vl-3b-random": "3b", "qwen2.5-vl-7b-random": "7b", "qwen2.5-vl-tiny-random": "tiny"}
#: Prefixes that make a string an open_clip one.
OPEN_CLIP_PREFIXES = ("local-dir:", "hf-hub:")


class ModelSpec(str):
    """One model string, read once: the string itself (so it writes, compares and hashes as its text wherever
    a str goes: a ``config.json``, a table, a message), with ``name``, the part before the first ``:`` (the
    whole string without one), and ``rest``, the part after it (a seed, an open_clip tag or checkpoint path, a
    ``local-dir:`` folder). The command line makes it (argparse ``type=``, :meth:`argument`) and it travels as
    this value down to the loader; a library entry point handed a plain str converts it once, at its edge
    (:meth:`of`)."""

    name: str
    rest: str

    def __new__(cls, model: str) -> ModelSpec:
        """Only :meth:`parse` makes one (a copy or an unpickled spec comes here too, with its text)."""
        out = super().__new__(cls, model)
        name, _, rest = out.partition(":")
        out.name, out.rest = name, rest
        return out

    def __getnewargs__(self) -> tuple[str]:
        return (str(self),)

    @classmethod
    def parse(cls, model: str) -> ModelSpec:
        """Read ``model`` (any string; what it names is not looked up)."""
        return cls(str(model))

    @classmethod
    def of(cls, model: object) -> ModelSpec:
        """``model`` as a spec, at the edge of code a Python caller may hand a str: a spec passes as it is, a
        resolved model (:class:`litelvlm.registry.resolved_model.ResolvedModel`) gives its own ``spec``."""
        if isinstance(model, ModelSpec):
            return model
        spec = getattr(model, "spec", None)
        return spec if isinstance(spec, ModelSpec) else cls.parse(str(model))

    @classmethod
    def argument(cls, text: str) -> ModelSpec:
        """:meth:`parse` as an argparse ``type``: the one reading of a ``--model`` string."""
        return cls.parse(text)

    @property
    def text(self) -> str:
        """The string as written (a plain str)."""
        return str.__str__(self)

    @property
    def is_random(self) -> bool:
        """A random-weights name (``<arch>-random[:SEED]``, or the in-memory ``random-<arch>`` models)."""
        return self.name.endswith("-random") or self.name.startswith("random-")

    @property
    def random_clip(self) -> str | None:
        """The random CLIP preset this string builds, if it names one."""
        return RANDOM_CLIPS.get(self.name)

    @property
    def random_qwen(self) -> str | None:
        """The random Qwen2.5-VL preset this string builds, if it names one."""
        return RANDOM_QWENS.get(self.name)

    def random_seed(self, default: int = 0) -> int:
        """The SEED of ``<name>-random[:SEED]`` (when absent, ``default``: a family card's ``seed`` passes its
        preset's default); anything but a whole number is an error."""
        if not (self.rest or "0").isdigit():
            raise LiteLVLMError(f"model {self.text!r}: the seed after ':' must be a whole number, got "
                                f"{self.rest!r}")
        return int(self.rest) if self.rest else default

    @property
    def local_dir(self) -> str | None:
        """The folder of a ``local-dir:`` string."""
        return self.rest if self.name == "local-dir" else None

    @property
    def folder(self) -> str:
        """The path the string names, if it is a folder: the ``local-dir:`` folder, else the string itself."""
        return self.text if self.local_dir is None else self.local_dir

    @property
    def open_clip_style(self) -> bool:
        """``local-dir:``, ``hf-hub:`` or ``ARCH:TAG`` / ``ARCH:/path`` (a ``:`` after a name that is neither
        a random model nor a path). A folder with ``open_clip_config.json`` is open_clip's too: the loader
        looks."""
        if self.text.startswith(OPEN_CLIP_PREFIXES):
            return True
        return ":" in self.text and not self.name.endswith("-random") and "/" not in self.name

    @property
    def open_clip_name(self) -> tuple[str, str | None]:
        """(model name, pretrained) as ``open_clip.create_model_and_transforms`` takes them:
        ``ARCH:TAG_OR_PATH`` is split at its first ``:``; ``local-dir:`` and ``hf-hub:`` strings pass through
        whole."""
        if self.text.startswith(OPEN_CLIP_PREFIXES) or ":" not in self.text:
            return self.text, None
        return self.name, self.rest or None

    @property
    def is_small(self) -> bool:
        """A small model by its name (``tiny*``, a toy model, the tiny random Qwen2.5-VL); a family's small
        presets are its card's (:func:`litelvlm.registry.families.is_small`). Such models run fastest on one
        thread."""
        last = self.text.rsplit("/", 1)[-1].lower()
        return last.startswith("tiny") or "toy" in last or self.random_qwen == "tiny"
