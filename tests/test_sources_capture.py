"""Camera sources on real footage: OpenCV file playback (paced, as fast as possible, looped),
the latest-frame slot, and the capture supervisor's timeouts, loss and recovery.

A FIFO stands in for a camera that hangs: FFmpeg blocks opening it with no writer, and blocks
reading it when the writer goes silent, exactly like a network camera that stops answering.
"""

import os
import threading
import time

import cv2
import numpy as np
import pytest
from conftest import WAIT_S

from runtime.sources import Frame, SourceEnded, SourceError
from runtime.sources.capture import MAX_STUCK_READERS, Capture
from runtime.config import classify_source as classify
from runtime.sources.opencv import OpenCVSource
from runtime.sources.slot import LatestSlot

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, vtest_avi):
    """The first 20 frames of vtest.avi (real footage), MJPG at vtest's own 10 fps."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    cap = cv2.VideoCapture(str(vtest_avi))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 576))
    for _ in range(20):
        ok, frame = cap.read()
        assert ok
        out.write(frame)
    out.release()
    cap.release()
    return path


def test_classify():
    assert classify("0") == classify("/dev/video2") == "device"
    assert classify("rtsp://10.0.0.2/stream") == classify("HTTP://cam/mjpg") == "network"
    assert classify("clip.avi") == "file"
    assert classify("picamera2") == classify("picamera2:1") == "picamera2"


def test_file_plays_at_its_own_rate_then_ends(clip):
    src = OpenCVSource(str(clip))
    src.open()
    assert src.fps == pytest.approx(10)
    t0 = time.monotonic()
    frames = [src.read()[0] for _ in range(20)]
    elapsed = time.monotonic() - t0
    with pytest.raises(SourceEnded):
        src.read()
    src.close()
    assert frames[0].shape == (576, 768, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])
    # Paced like a camera: 20 frames at 10 fps cannot arrive in much less than 1.9 s.
    assert elapsed >= 1.8


def test_as_fast_as_possible_and_loop(clip):
    src = OpenCVSource(str(clip), loop=True, as_fast_as_possible=True, width=384, height=288)
    src.open()
    first = src.read()[0]
    frames = [src.read()[0] for _ in range(29)]
    src.close()
    assert first.shape == (288, 384, 3)
    assert np.array_equal(first, frames[19])  # frame 21 is frame 1 again: it looped


def test_missing_file_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        OpenCVSource(str(tmp_path / "gone.avi")).open()


def test_slot_keeps_the_newest_and_counts_drops():
    slot = LatestSlot()
    img = np.zeros((2, 2, 3), np.uint8)
    for i in range(5):
        slot.put(Frame(img, i, time.monotonic(), time.time()))
    assert slot.peek().seq == 4
    assert slot.take(0.01).seq == 4
    assert slot.take(0.01) is None
    assert (slot.put_count, slot.dropped) == (5, 4)


class Consumer:
    """Takes frames from the slot as the pipeline does, `delay` seconds per frame (`pauses`: longer
    after some frames, by sequence number)."""

    def __init__(self, slot, delay=0.0, pauses=None):
        self.slot, self.delay, self.pauses, self.seqs = slot, delay, pauses or {}, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            frame = self.slot.take(0.05)
            if frame is not None:
                self.seqs.append(frame.seq)
                time.sleep(self.pauses.get(frame.seq, self.delay))

    def stop(self):
        self._stop.set()
        self._thread.join(2)


def _capture(make, slot, events, **kw):
    # Timeouts far beyond any open or frame of these files, so that a loaded machine adds no loss to
    # the events a test expects; the tests of the timeouts set their own.
    opts = dict(open_timeout_s=30.0, read_timeout_s=30.0, backoff_min_s=0.1, backoff_max_s=0.3,
                on_event=lambda kind, message, detail: events.append((kind, detail)))
    opts.update(kw)
    return Capture(make, slot, **opts)


def _wait(cond, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_paced_capture_drops_for_a_slow_consumer_and_ends(clip):
    slot, events = LatestSlot(), []
    cap = _capture(lambda: OpenCVSource(str(clip)), slot, events)
    t0 = time.monotonic()
    cap.start()
    frame = slot.take(WAIT_S)
    # The first frame, unless this thread came late: then the ones before it were dropped (nobody else takes).
    assert 1 <= frame.seq <= slot.dropped + 1
    assert t0 < frame.monotonic <= time.monotonic() and frame.image.shape == (576, 768, 3)
    consumer = Consumer(slot, delay=1.0)  # 1 frame/s from a 10 fps camera
    assert _wait(lambda: cap.ended and slot.peek() is None)
    consumer.stop()
    cap.stop()
    assert slot.put_count == 20
    assert 1 + len(consumer.seqs) + slot.dropped == 20 and slot.dropped >= 5  # dropped, counted, never queued
    assert consumer.seqs == sorted(consumer.seqs)
    assert [k for k, _ in events] == ["source_ended"]


def test_as_fast_as_possible_capture_waits_for_the_consumer(clip):
    """A recording read as fast as possible: every frame reaches the consumer, none is dropped."""
    slot, events = LatestSlot(), []
    # The consumer stops for longer than the read timeout once: that wait must not count as a
    # stalled camera. (The timeout is long enough for any frame's own decode, on any machine.)
    cap = _capture(lambda: OpenCVSource(str(clip), as_fast_as_possible=True), slot, events, read_timeout_s=3.0)
    consumer = Consumer(slot, delay=0.01, pauses={5: 4.0})
    cap.start()
    assert _wait(lambda: cap.ended and len(consumer.seqs) == 20)
    consumer.stop()
    cap.stop()
    assert consumer.seqs == list(range(1, 21)) and slot.dropped == 0
    assert [k for k, _ in events] == ["source_ended"]  # waiting on a consumer is not a stall


def test_file_deleted_then_restored_is_lost_then_recovered(tmp_path, clip):
    """The source dies mid-stream (the file disappears while looping) and comes back."""
    path = tmp_path / "cam.avi"
    path.write_bytes(clip.read_bytes())
    slot, events = LatestSlot(), []
    cap = _capture(lambda: OpenCVSource(str(path), loop=True, as_fast_as_possible=True), slot, events)
    consumer = Consumer(slot)
    cap.start()
    try:
        assert _wait(lambda: cap.state == "streaming")
        path.rename(tmp_path / "away.avi")
        assert _wait(lambda: cap.state == "lost")
        before = slot.put_count
        time.sleep(0.5)  # retries with backoff meanwhile, no frames
        assert slot.put_count == before
        (tmp_path / "away.avi").rename(path)
        assert _wait(lambda: cap.state == "streaming" and slot.put_count > before + 5)
    finally:
        cap.stop()
        consumer.stop()
    kinds = [k for k, _ in events]
    assert kinds == ["source_lost", "source_recovered"], kinds  # one loss per outage, not per retry
    assert "no such file" in events[0][1]["reason"]
    assert events[1][1]["down_s"] >= 0.5


def _release_hung_opens(fifo, cap):
    """Wake readers blocked opening the FIFO: rename it (so OpenCV's next backend finds nothing
    to reopen) and open the same inode for writing until every abandoned reader has returned."""
    released = fifo.with_name("released.fifo")
    fifo.rename(released)
    deadline = time.monotonic() + 10
    while any(not r.done.is_set() for r in cap._stuck) and time.monotonic() < deadline:
        try:
            os.close(os.open(released, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: no reader waiting right now
            pass
        time.sleep(0.05)


def test_open_that_hangs_times_out_and_stuck_readers_stay_bounded(tmp_path):
    fifo = tmp_path / "cam.fifo"
    os.mkfifo(fifo)
    slot, events = LatestSlot(), []
    cap = _capture(lambda: OpenCVSource(str(fifo)), slot, events, open_timeout_s=0.3)
    cap.start()
    try:
        assert _wait(lambda: len(cap._stuck) == MAX_STUCK_READERS)
        time.sleep(1.0)  # no further readers are started while that many are stuck
        assert len(cap._stuck) == MAX_STUCK_READERS
        assert cap.state == "lost"
        assert events[0][0] == "source_lost" and "open timed out" in events[0][1]["reason"]
    finally:
        t0 = time.monotonic()
        cap.stop()
        assert time.monotonic() - t0 < 1.0  # stopping never waits on a hung camera call
        # OpenCV serialises FFmpeg opens process-wide: hung opens must end before other tests open videos.
        _release_hung_opens(fifo, cap)
    assert all(r.done.is_set() for r in cap._stuck)


def test_read_that_stalls_is_detected(tmp_path, clip):
    fifo = tmp_path / "cam.fifo"
    os.mkfifo(fifo)
    data = clip.read_bytes()
    release = threading.Event()

    def camera():  # sends half the stream, then goes silent with the connection open
        fd = os.open(fifo, os.O_WRONLY)
        try:
            os.write(fd, data[: len(data) // 2])
            release.wait(WAIT_S)
        finally:
            os.close(fd)

    threading.Thread(target=camera, daemon=True).start()
    slot, events = LatestSlot(), []
    # The read timeout runs from the open: long enough for the first frames to come first, on any machine.
    cap = _capture(lambda: OpenCVSource(str(fifo), as_fast_as_possible=True), slot, events, read_timeout_s=3.0)
    consumer = Consumer(slot)
    cap.start()
    try:
        assert _wait(lambda: slot.put_count > 0)
        assert _wait(lambda: events)
        assert events[0][0] == "source_lost" and "no frame for 3 s" in events[0][1]["reason"]
    finally:
        release.set()
        cap.stop()
        consumer.stop()
