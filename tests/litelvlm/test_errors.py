"""``litelvlm.errors.storage_errno``: the OS errno of a full disk, a quota, a read-only or unwritable folder
that an error carries, whichever library raised it (an ``OSError``, its cause or context, or the text of
safetensors' ``SafetensorError``, which is no ``OSError``)."""

from __future__ import annotations

import errno
import os

import pytest
from safetensors import SafetensorError

from litelvlm.errors import storage_errno
from tests.fixtures.full_disk import STORAGE, safetensor_error


@pytest.mark.parametrize("text", ["0.8", "older"])
@pytest.mark.parametrize("name", sorted(STORAGE))
def test_a_safetensors_error_carrying_a_storage_errno_gives_it(name, text):
    code = STORAGE[name]
    assert storage_errno(safetensor_error(code, text)) == code
    assert storage_errno(OSError(code, os.strerror(code))) == code


def test_an_error_carrying_another_errno_or_none_gives_none():
    assert storage_errno(safetensor_error(errno.ENOENT)) is None
    assert storage_errno(SafetensorError("Error while serializing: invalid metadata")) is None
    assert storage_errno(ValueError("shape mismatch")) is None
    assert storage_errno(OSError("no errno")) is None
    assert storage_errno(OSError(errno.ENOENT, "No such file or directory")) is None


def test_an_errno_met_while_the_error_was_raised_counts():
    """torch.save writing to a Python file raises its own RuntimeError while the file's OSError is handled."""
    try:
        try:
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")  # noqa: B904
    except RuntimeError as e:
        assert storage_errno(e) == errno.EDQUOT
    cause = RuntimeError("wrapped")
    cause.__cause__ = safetensor_error(errno.EROFS)
    assert storage_errno(cause) == errno.EROFS
