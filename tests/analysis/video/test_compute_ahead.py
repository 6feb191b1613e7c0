"""``eval-video`` decodes the next video's frames while the model works on the current one
(``litelvlm.video.decoded``): the runner gets each video's decoded frames, a finished video is not decoded
again, and the tables are those of a run that decodes each frame where it is read."""

from __future__ import annotations

import threading

import pytest

import analysis.video.compute as compute
import analysis.video.options as options
from litelvlm.cli import main
from litelvlm.video.decoded import decode_video
from tests.analysis.video.test_compute_budgets import FakeEval, FakeRunner

ARGV = ["--anno-sets", "0", "--synthetic-videos", "3", "--synthetic-frames", "3", "--methods", "litelvlm",
        "--budgets", "64", "--n-boot", "10"]


class AheadRunner(FakeRunner):
    """A runner whose first video's work waits until the next video's frames are being decoded."""

    def __init__(self, seen: dict, started: dict) -> None:
        super().__init__(seen)
        self.started = started
        self.video = None

    def new_video(self, decoded=None) -> None:
        self.seen["decoded"].append(decoded)

    def ground(self, recs, method, budget, batched=True):
        videos = list(self.started)
        if recs[0].video == videos[0] and len(videos) > 1:
            # overlapped: the second video's decoding began while the first is still at work
            self.seen["overlapped"].append(self.started[videos[1]].wait(timeout=30))
        return super().ground(recs, method, budget, batched)


@pytest.fixture
def ahead(monkeypatch, tmp_path):
    ev = FakeEval()
    ev.seen |= {"decoded": [], "overlapped": [], "decodes": []}
    started: dict[str, threading.Event] = {}
    ev.runner = lambda a: AheadRunner(ev.seen, started)

    def decode(rec):
        started.setdefault(rec.video, threading.Event()).set()
        ev.seen["decodes"].append((rec.video, threading.current_thread() is threading.main_thread()))
        return decode_video(rec)

    real = compute.by_video

    def grouped(records):   # every video's event exists before the loop starts
        groups = real(records)
        for video in groups:
            started.setdefault(video, threading.Event())
        return groups

    monkeypatch.setattr(options, "video_eval", lambda model: ev)
    monkeypatch.setattr(compute, "video_eval", lambda model: ev)
    monkeypatch.setattr(compute, "decode_video", decode)
    monkeypatch.setattr(compute, "by_video", grouped)
    return ev


def test_the_next_videos_frames_are_decoded_while_the_model_works(tmp_path, ahead):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *ARGV]) == 0
    seen = ahead.seen
    assert seen["overlapped"] and all(seen["overlapped"]), seen["overlapped"]
    videos = [v for v, _ in seen["decodes"]]
    assert len(videos) == len(set(videos)) == 3 and not any(main for _, main in seen["decodes"])
    assert [d.video for d in seen["decoded"]] == videos   # each video's own frames, in order
    first = (out / "summary.csv").read_bytes()
    seen["decodes"].clear(), seen["decoded"].clear()
    assert main(["eval-video", "--out", str(out), *ARGV]) == 0   # resumed: nothing left, nothing decoded
    assert seen["decodes"] == [] and (out / "summary.csv").read_bytes() == first
