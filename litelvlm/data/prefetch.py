"""Images decoded ahead of the model (this project's loader): :func:`prefetched` runs a loading function on
worker threads a few items ahead of the caller, who receives the results in order, so that decoding and the
EXIF and size checks overlap the device's work on the images before (PIL releases the GIL while it decodes).
The images are the same as loading them one by one: only when they are decoded changes."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: worker threads decoding ahead
WORKERS = 2
#: items decoded ahead of the one the caller holds
AHEAD = 4


def prefetched(items: Iterable[T], load: Callable[[T], R], workers: int = WORKERS,
               ahead: int = AHEAD) -> Iterator[tuple[T, R | None, Exception | None]]:
    """(item, ``load(item)`` or None, the exception it raised or None) for each of ``items`` in order, loaded
    on ``workers`` threads at most ``ahead`` items ahead; ``workers`` 0 loads each when it is reached."""
    if workers <= 0:
        for item in items:
            yield (item, *_call(load, item))
        return
    queue: deque[tuple[T, Future]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="litelvlm-decode") as pool:
        source = iter(items)
        try:
            for item in source:
                queue.append((item, pool.submit(_call, load, item)))
                if len(queue) > ahead:
                    done, future = queue.popleft()
                    yield (done, *future.result())
            while queue:
                done, future = queue.popleft()
                yield (done, *future.result())
        finally:  # the caller stopped early: nothing more is started, the pending loads are dropped
            for _, future in queue:
                future.cancel()


def _call(load: Callable[[T], R], item: T) -> tuple[R | None, Exception | None]:
    try:
        return load(item), None
    except Exception as err:  # handed to the caller, which decides (eval-grounding skips the image, named)
        return None, err


__all__ = ["AHEAD", "WORKERS", "prefetched"]
