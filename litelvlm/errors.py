"""User-facing errors: the CLI prints them on stderr and exits with status 2; the storage errors that become
one (:func:`storage_errno`); and the library's warning category. This module imports nothing heavy: a
warnings filter that names the category imports it."""

from __future__ import annotations

import errno
import re


class LiteLVLMError(Exception):
    """Bad input or configuration that the user can fix (a path, an argument, a model name)."""


class UnsupportedModelError(LiteLVLMError):
    """The model lacks a token or module that the requested computation needs (e.g. a CLS token)."""


class RandomWeightsWarning(UserWarning):
    """A model with random weights was loaded through the library API (``load_clip("tiny336-random")``,
    ``GlammPipeline.from_model_string("tiny-random:0")``): its outputs are not findings."""


#: the errnos of a folder that cannot take a write: a full disk or quota, a read-only filesystem, no
#: permission
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES})

#: an OS error in a message: Rust's ``(os error 28)`` and ``Os { code: 28, ... }`` (safetensors), Python's
#: ``[Errno 28]``
_ERRNO_TEXT = re.compile(r"\(os error (\d+)\)|\bOs \{ code: (\d+)|\[Errno (\d+)\]")


def storage_errno(error: BaseException) -> int | None:
    """The errno of :data:`STORAGE_ERRNOS` that ``error`` carries, whichever library raised it (an
    ``OSError``'s own, one in its message, or one its cause or context carries), else None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        code = error.errno if isinstance(error, OSError) else None
        if code is None and (found := _ERRNO_TEXT.search(str(error))):
            code = int(next(g for g in found.groups() if g is not None))
        if code in STORAGE_ERRNOS:
            return code
        error = error.__cause__ or error.__context__
    return None
