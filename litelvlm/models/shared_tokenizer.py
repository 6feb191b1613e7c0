"""A folder's tokenizer, loaded once per process and shared by every model loaded from that folder.

Loading a tokenizer reads and converts its vocabulary (CLIP's ``tokenizer.json`` is 3.6 MB; about 0.35
CPU-s each time), and a notebook or a study loads the same folder again and again. :func:`shared_tokenizer`
keeps the last few it loaded, keyed by the folder, the loader and the size and modification time of every file
in the folder, so a rewritten folder loads afresh. A loader whose tokenizer reads nothing of its folder after
loading (CLIP's) may key it by its files' contents instead (``by_content``): two folders with the same
tokenizer files (random models written into a fresh cache) then share one. The tokenizer returned is shared:
treat it as read-only (the library never adds tokens to a loaded one).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: how many tokenizers a process keeps
KEEP = 8
_LOADED: OrderedDict[tuple, Any] = OrderedDict()


def _signature(folder: Path) -> tuple:
    """(name, size, modification time) of every file in ``folder``: a rewritten file changes it."""
    out = []
    with os.scandir(folder) as entries:
        for e in entries:
            if e.is_file():
                st = e.stat()
                out.append((e.name, st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


#: files a tokenizer never reads: the weights (what ``by_content`` leaves out of its digest)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".gguf", ".onnx",
                   ".npz", ".tflite", ".ot")


def _read_digest(path: str) -> str:
    """The BLAKE2 digest of the file at ``path``."""
    return hashlib.blake2b(Path(path).read_bytes()).hexdigest()


#: (path, size, modification and change times, inode) -> digest: an unchanged file is hashed once; at most
#: KEEP_DIGESTS are kept (a long session writing fresh folders starts over)
_DIGESTS: dict[tuple, str] = {}
KEEP_DIGESTS = 4096


def _content_signature(folder: Path) -> tuple:
    """(name, BLAKE2 digest) of every file in ``folder`` but the weights: the same files give the same
    signature in any folder. A file whose size, times and inode stand is hashed once per process."""
    out = []
    with os.scandir(folder) as entries:
        for e in entries:
            if e.is_file() and not e.name.endswith(WEIGHT_SUFFIXES):
                st = e.stat()
                key = (e.path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                if key not in _DIGESTS:
                    if len(_DIGESTS) >= KEEP_DIGESTS:
                        _DIGESTS.clear()
                    _DIGESTS[key] = _read_digest(e.path)
                out.append((e.name, _DIGESTS[key]))
    return tuple(sorted(out))


def shared_tokenizer(folder: str | os.PathLike, load: Callable[[], T], kind: str,
                     by_content: bool = False) -> T:
    """``load()``'s tokenizer of the local ``folder``, loaded once per process for the same ``kind`` (the
    loader and its options, in words) and the same files (``by_content``: the same files' contents, in any
    folder); anything but a local folder (a hub id) is loaded each time."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        return load()
    key = ((kind, "content", _content_signature(path)) if by_content
           else (str(path.resolve()), kind, _signature(path)))
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    tok = load()
    _LOADED[key] = tok
    while len(_LOADED) > KEEP:
        _LOADED.popitem(last=False)
    return tok


def forget_tokenizers() -> None:
    """Drop every shared tokenizer and every remembered file digest (the next load reads its folder again)."""
    _LOADED.clear()
    _DIGESTS.clear()
