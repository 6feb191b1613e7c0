"""litelvlm.data.prefetch: items come back in order with their results or errors, loaded at most ``ahead``
items before the caller reaches them; a caller that stops early leaves nothing running."""

from __future__ import annotations

import threading

import pytest

from litelvlm.data.prefetch import prefetched


def _load(x: int) -> int:
    if x == 3:
        raise OSError("unreadable")
    return x * 10


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_results_and_errors_come_back_in_order(workers):
    got = list(prefetched(range(7), _load, workers=workers, ahead=2))
    assert [i for i, _, _ in got] == list(range(7))
    assert [r for _, r, _ in got] == [0, 10, 20, None, 40, 50, 60]
    assert [type(e).__name__ if e else None for _, _, e in got] == [None] * 3 + ["OSError"] + [None] * 3


def test_loads_run_at_most_ahead_of_the_caller():
    started: list[int] = []
    lock = threading.Lock()

    def load(x: int) -> int:
        with lock:
            started.append(x)
        return x

    it = prefetched(range(20), load, workers=2, ahead=3)
    for i, (item, _, _) in enumerate(it):
        assert item == i
        assert max(started) <= i + 4   # the one held and at most `ahead` more submitted
        if i == 5:
            break
    it.close()
    assert len(started) <= 10


def test_the_grounding_study_decodes_through_the_prefetcher():
    import inspect

    from analysis.grounding import compute

    assert "prefetched(" in inspect.getsource(compute._evaluate)
