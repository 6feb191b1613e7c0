"""Writing a safetensors file straight from the tensors' memory: the bytes ``safetensors.torch.save_file``
writes (same header, same tensor order), without the copy of every tensor it makes first (``_tobytes``), so
writing a shard of a full-size model costs no second copy of it; a progress bar may follow the bytes written.

The layout (safetensors' format): 8 bytes little-endian header length, the JSON header (``__metadata__``
first, then each tensor's dtype, shape and data offsets, compact separators) padded with spaces to a multiple
of 8, then the tensors' bytes, ordered by dtype (safetensors' ``Dtype`` order, largest first) and then by
name. A dtype this module does not know is written by ``save_file`` itself.
"""

from __future__ import annotations

import contextlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..runs.io import atomic_path

#: torch dtype -> (safetensors name, rank in safetensors' ``Dtype`` enum: the tensors are written highest
#: first)
DTYPES: dict[torch.dtype, tuple[str, int]] = {
    torch.bool: ("BOOL", 0), torch.uint8: ("U8", 4), torch.int8: ("I8", 5), torch.int16: ("I16", 9),
    torch.float16: ("F16", 11), torch.bfloat16: ("BF16", 12), torch.int32: ("I32", 13),
    torch.float32: ("F32", 15), torch.float64: ("F64", 16), torch.int64: ("I64", 17)}


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | Path,
                     metadata: dict[str, str] | None = None, bar=None) -> None:
    """Write ``tensors`` to ``path`` as ``safetensors.torch.save_file`` does (byte for byte), each tensor's
    bytes written from its own memory (a GPU tensor is copied to the CPU one at a time); ``bar`` (a tqdm)
    advances by the bytes of each tensor written."""
    if any(t.dtype not in DTYPES for t in tensors.values()):
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
        if bar is not None:
            bar.update(sum(t.numel() * t.element_size() for t in tensors.values()))
        return
    order = sorted(tensors, key=lambda k: (-DTYPES[tensors[k].dtype][1], k))
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for k in order:
        t = tensors[k]
        n = t.numel() * t.element_size()
        header[k] = {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape),
                     "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        for k in order:
            t = tensors[k].detach()
            if t.numel():
                f.write(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
            if bar is not None:
                bar.update(t.numel() * t.element_size())


def save_shards(shards: dict[str, dict[str, torch.Tensor]], folder: Path,
                metadata: dict[str, str] | None = None, bar=None) -> None:
    """Write each ``{file name: tensors}`` of ``shards`` under ``folder`` with :func:`save_safetensors`, the
    files in parallel threads (one per core, at most 8: the copies into the page cache run side by side), each
    file written aside and moved into place once every file is complete (nothing is left of a failed
    write)."""
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(folder / name)) for name in shards]
        workers = max(1, min(len(shards), os.cpu_count() or 1, 8))
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda job: save_safetensors(job[1], job[0], metadata=metadata, bar=bar),
                          zip(tmps, shards.values())))


__all__ = ["DTYPES", "save_safetensors", "save_shards"]
