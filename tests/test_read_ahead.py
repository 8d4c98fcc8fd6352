"""The driving video read ahead on its own thread: same frames, same errors, no thread left behind."""

import threading

import numpy as np
import pytest

from puppetry.errors import MediaError, NoFaceError
from puppetry.face.smoothing import OneEuroConfig
from puppetry.media.video import VideoReader
from puppetry.pipeline import driving as driving_module
from puppetry.pipeline.driving import DrivingStats, open_driving
from puppetry.pipeline.read_ahead import read_ahead


def _workers() -> list[threading.Thread]:
    """Driving read-ahead threads still alive."""
    return [t for t in threading.enumerate() if t.name == "puppetry-driving"]


def test_tracked_frames_equal_those_read_in_the_consumer_thread(data):
    """The read-ahead stream gives the very frames, landmarks and poses of tracking in one thread."""
    path = data / "driving" / "d3.mp4"
    with open_driving(str(path), smoothing=OneEuroConfig(), max_frames=40) as stream:
        ahead = list(stream)
    stats = DrivingStats()
    inline = list(driving_module._video_frames(VideoReader(path, max_frames=40), ahead[0].controls,
                                               OneEuroConfig(), True, stats))
    assert len(ahead) == len(inline) == 40
    for a, b in zip(ahead, inline):
        assert a.index == b.index and a.found == b.found
        assert np.array_equal(a.image, b.image)
        assert np.array_equal(a.landmarks, b.landmarks)
        assert np.array_equal(a.pose.rotation, b.pose.rotation)
    assert stream.stats.frames == stats.frames == 40 and stream.stats.lost == stats.lost
    assert stream.stats.decode_s > 0 and stream.stats.landmarks_s > 0     # timed for puppetry bench
    assert not _workers()


def test_an_error_on_the_worker_reaches_the_consumer_as_itself():
    def frames():
        yield 1
        yield 2
        raise MediaError("cannot read video 'x.mp4': broken")

    got = []
    with pytest.raises(MediaError, match="broken"):
        for item in read_ahead(frames()):
            got.append(item)
    assert got == [1, 2]


def test_no_face_in_a_driving_video_is_the_same_one_line_error(data, tmp_path):
    """A face-less driving video (a portrait's background corner, panning) raises NoFaceError after its last
    frame, through the worker."""
    import cv2

    from puppetry.media.image import read_image
    from puppetry.media.writer import VideoWriter

    corner = cv2.resize(read_image(data / "portraits" / "s1.jpg")[:64, :64], (128, 128))
    path = tmp_path / "faceless.mp4"
    with VideoWriter(path, 25.0) as writer:
        for i in range(6):
            writer.write(np.ascontiguousarray(np.roll(corner, 4 * i, axis=1)))
    with pytest.raises(NoFaceError, match="no face found in any frame of driving video"):
        list(open_driving(str(path)))
    assert not _workers()


def test_stopping_early_closes_the_iterator_on_the_worker_and_ends_it():
    closed_on = []
    produced = []

    def frames():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed_on.append(threading.current_thread().name)

    stream = read_ahead(frames(), depth=2, name="puppetry-read-ahead-test")
    taken = [next(stream) for _ in range(3)]
    assert taken == [0, 1, 2]
    assert len(produced) <= 3 + 2 + 1            # at most depth ahead, plus the one being handed over
    stream.close()
    assert closed_on == ["puppetry-read-ahead-test"]
    assert not [t for t in threading.enumerate() if t.name == "puppetry-read-ahead-test"]


def test_a_consumer_error_mid_animation_leaves_no_reader_thread(data, tmp_path, monkeypatch):
    """An engine failing on the fifth frame: the error is the engine's, and the driving thread is gone."""
    from puppetry.methods.warp.engine import WarpEngine
    from puppetry.pipeline.animate import AnimateOptions, animate

    calls = []
    render = WarpEngine.render

    def failing(self, state, frame):
        calls.append(frame.index)
        if len(calls) == 5:
            raise RuntimeError("engine failed on purpose")
        return render(self, state, frame)

    monkeypatch.setattr(WarpEngine, "render", failing)
    with pytest.raises(RuntimeError, match="on purpose"):
        animate(data / "portraits" / "s1.jpg", data / "driving" / "d0.mp4", tmp_path / "out.mp4",
                AnimateOptions(progress=False, max_frames=30))
    assert not (tmp_path / "out.mp4").exists()
    assert not _workers()


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        next(read_ahead(iter([1]), depth=0))
