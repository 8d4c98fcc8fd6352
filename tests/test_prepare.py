"""``puppetry prepare`` and the dataset reader, on real videos of ../shared/data.

One dataset with frames and masks (d0 + d20, 40 frames each, plus a corrupt file) is built once per
module; a second, landmarks-only one (d0, d20, a face-less video and a two-person video with a scene cut)
is built twice as two ``--shard`` halves and once with ``--workers 2``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from puppetry.cli import main
from puppetry.data import iter_shards, open_dataset
from puppetry.errors import MediaError
from puppetry.face import topology as T
from puppetry.face.parsing import BACKGROUND, EYES, HAIR, INNER_MOUTH, LIPS, MASK_LABELS, NECK_BODY, NOSE, SKIN

from conftest import DATA

D0 = DATA / "driving" / "d0.mp4"
D20 = DATA / "driving" / "d20.mp4"


def _report(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "report.jsonl").read_text().splitlines()]


def _by_video(records: list[dict]) -> dict[str, dict]:
    return {Path(r["video"]).name: r for r in records}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder of extra inputs: a corrupt file, a face-less video and a two-person video with a cut."""
    from puppetry.media import VideoReader, VideoWriter

    folder = tmp_path_factory.mktemp("inputs")
    (folder / "bad.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 30000, dtype=np.uint8).tobytes())
    rng = np.random.default_rng(0)
    with VideoWriter(folder / "flat.mp4", fps=25) as writer:
        for _ in range(20):
            writer.write(np.clip(128 + rng.normal(0, 20, (128, 128, 3)), 0, 255).astype(np.uint8))
    with VideoReader(D0, max_frames=40) as reader:
        a = list(reader)
    with VideoReader(D20, max_frames=40) as reader:
        b = [cv2.resize(frame, (512, 512), interpolation=cv2.INTER_AREA) for frame in reader]
    with VideoWriter(folder / "pair.mp4", fps=25) as writer:     # [d0 | d20], then a cut to [d20 | d0]
        for t in range(40):
            writer.write(np.concatenate([a[t], b[t]] if t < 20 else [b[t], a[t]], axis=1))
    return folder


@pytest.fixture(scope="module")
def full(tmp_path_factory, inputs) -> tuple[Path, int]:
    """Dataset with frames and masks of d0 and d20 (40 frames each) and a corrupt file; (root, exit code)."""
    root = tmp_path_factory.mktemp("full") / "ds"
    code = main(["prepare", str(D0), str(D20), str(inputs / "bad.mp4"), "-o", str(root), "--max-frames", "40"])
    return root, code


LM_ARGS = ["--landmarks-only", "--max-frames", "40", "--min-frames", "12", "--identity", "video"]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, inputs) -> Path:
    """Landmarks-only dataset of four videos, made as two --shard halves into the same folder."""
    root = tmp_path_factory.mktemp("sharded") / "ds"
    videos = [str(D0), str(D20), str(inputs / "flat.mp4"), str(inputs / "pair.mp4")]
    for part in ("0/2", "1/2"):
        assert main(["prepare", *videos, "-o", str(root), "--shard", part, *LM_ARGS]) == 0
    return root


def test_prepare_skips_corrupt_video_and_reports(full):
    root, code = full
    assert code == 0
    records = _by_video(_report(root))
    assert set(records) == {"d0.mp4", "d20.mp4", "bad.mp4"}
    assert records["d0.mp4"]["status"] == records["d20.mp4"]["status"] == "ok"
    assert records["d0.mp4"]["frames"] == 40 and records["d0.mp4"]["clips"] == 1
    assert records["bad.mp4"]["status"] == "skipped"
    assert "corrupt" in records["bad.mp4"]["reason"]
    header = json.loads((root / "dataset.json").read_text())
    assert header["format"] == "puppetry-dataset" and header["version"] == 1 and header["size"] == 256
    assert not [p for p in (root / "shards").iterdir() if ".tmp-" in p.name]


def test_reader_landmarks_match_source_and_crop(full, detect):
    from puppetry.media import VideoReader

    ds = open_dataset(full[0])
    assert ds.size == 256 and ds.has_frames and len(ds.clips) == 2
    assert ds.identities == sorted(c.id for c in ds.clips)          # default: each clip its own identity
    clip = next(c for c in ds.clips if c.video.endswith("d0.mp4"))
    assert clip.num_frames == 40 and clip.fps == pytest.approx(25.0) and clip.shard.is_file()
    lm = ds.landmarks(clip.id)
    shapes = {k: v.shape for k, v in lm.items()}
    assert shapes["landmarks478"] == (40, 478, 3) and shapes["landmarks68"] == (40, 68, 2)
    assert shapes["pose"] == (40, 3) and shapes["rotation"] == (40, 3, 3) and shapes["crop_box"] == (40, 4)
    assert lm["landmarks478"].dtype == np.float32 and lm["frame_index"].dtype == np.int32
    np.testing.assert_array_equal(lm["frame_index"], np.arange(40))
    xy = lm["landmarks478"][..., :2]
    assert xy.min() >= 0 and xy.max() <= 256                         # inside the crop
    face = (xy.max(1) - xy.min(1)).max(-1)                             # face box side per frame
    assert 0.4 < face.mean() / 256 < 0.75                              # crop about 1.8 x the face
    assert np.isfinite(lm["pose"]).all() and np.abs(lm["pose"]).max() < 40   # d0 looks at the camera
    np.testing.assert_allclose(np.linalg.det(lm["rotation"]), 1.0, atol=1e-3)

    # Back in source pixels, the stored landmarks are where an independent detection finds the face,
    # and the stored frame is the crop of the source frame.
    x0, y0, x1, y1 = lm["crop_box"][0]
    assert (lm["crop_box"] == lm["crop_box"][0]).all() and x1 - x0 == y1 - y0
    with VideoReader(D0, max_frames=1) as reader:
        source = next(iter(reader))
    found = detect(source)[0]
    back = xy[0] * (x1 - x0) / 256 + np.array([x0, y0])
    assert np.median(np.linalg.norm(back - found[:, :2], axis=-1)) < 3.0
    region = source[max(int(y0), 0):int(y1), max(int(x0), 0):int(x1)]
    if region.shape[0] == region.shape[1] == x1 - x0:
        expected = cv2.resize(region, (256, 256), interpolation=cv2.INTER_AREA)
        assert np.abs(ds.frame(clip.id, 0).astype(int) - expected).mean() < 4


def test_dlib68_agrees_with_face_mesh(full):
    ds = open_dataset(full[0])
    for clip in ds.clips:
        lm = ds.landmarks(clip.id)
        dlib68, mesh68 = lm["landmarks68"], lm["landmarks478"][:, T.IBUG68, :2]
        eye_distance = np.linalg.norm(mesh68[:, 36] - mesh68[:, 45], axis=-1)[:, None]
        error = np.linalg.norm(dlib68 - mesh68, axis=-1) / eye_distance
        corners = [36, 39, 42, 45, 48, 54]                              # eye and mouth corners
        assert np.abs(dlib68[:, corners] - mesh68[:, corners]).max() < 10      # pixels in a 256 crop
        assert np.median(error[:, 36:48]) < 0.05 and np.median(error[:, 48:68]) < 0.05
        assert np.median(error[:, :17]) < 0.25                           # jaw lines differ most
        assert dlib68.min() >= 0 and dlib68.max() <= 256


def test_frames_and_masks_stream_and_make_sense(full):
    ds = open_dataset(full[0])
    clip = next(c for c in ds.clips if c.video.endswith("d0.mp4"))
    frames, masks = list(ds.frames(clip.id)), list(ds.masks(clip.id))
    assert len(frames) == len(masks) == 40
    assert frames[0].shape == (256, 256, 3) and frames[0].dtype == np.uint8
    assert masks[0].shape == (256, 256) and masks[0].dtype == np.uint8 and masks[0].max() < len(MASK_LABELS)
    np.testing.assert_array_equal(ds.frame(clip.id, 17), frames[17])
    np.testing.assert_array_equal(ds.mask(clip.id, 17), masks[17])
    assert frames[0].std() > 20                                           # a picture, not a flat fill

    lm = ds.landmarks(clip.id)["landmarks478"]
    hits = {name: [] for name in ("eyes", "nose", "lips", "skin", "hair", "body", "corners")}
    for t, labels in enumerate(masks):
        def at(*points):                                                  # label under the mean of landmarks
            x, y = lm[t, list(points), :2].mean(0)
            return labels[int(y), int(x)]

        hits["eyes"].append(at(468) == EYES and at(473) == EYES)           # iris centres
        hits["nose"].append(at(4) == NOSE)                                 # nose tip
        hits["lips"].append(at(0, 13) == LIPS and at(17, 14) == LIPS)      # upper and lower lip middles
        hits["skin"].append(at(50) == SKIN and at(280) == SKIN)            # cheeks
        top, chin = lm[t, T.FOREHEAD, :2], lm[t, T.CHIN, :2]
        above = (top + 0.1 * (top - chin)).astype(int)
        below = (chin + 0.15 * (chin - top)).astype(int)
        hits["hair"].append(labels[above[1], above[0]] == HAIR)
        hits["body"].append(labels[min(below[1], 255), below[0]] == NECK_BODY)
        hits["corners"].append(labels[2, 2] == BACKGROUND and labels[2, 253] == BACKGROUND)
    for name, values in hits.items():
        assert np.mean(values) >= 0.9, name
    open_mouth = [(m == INNER_MOUTH).sum() for m in masks]
    assert max(open_mouth) > 50                                           # d0 talks: the mouth opens


def test_resume_skips_done_videos_and_ignores_stale_temps(full, inputs, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(full[0], root)
    shards = root / "shards"
    d0_tar = next(shards.glob("*d0-*.tar"))
    d20_sidecar = next(shards.glob("*d20-*.json"))
    stamp = d0_tar.stat().st_mtime_ns
    lines = len(_report(root))

    args = ["prepare", str(D0), str(D20), str(inputs / "bad.mp4"), "-o", str(root), "--max-frames", "40"]
    assert main(args) == 0                                   # nothing to do: everything is done or skipped
    assert len(_report(root)) == lines and d0_tar.stat().st_mtime_ns == stamp

    # An interrupted run: d20's sidecar never written, half-written temporaries left behind.
    d20_sidecar.unlink()
    stale_d0 = shards / f"{d0_tar.name}.tmp-999-deadbeef"
    stale_d0.write_bytes(b"partial")
    stale_d20 = shards / f"{d20_sidecar.stem}.tar.tmp-999-deadbeef"
    stale_d20.write_bytes(b"partial")
    assert len(open_dataset(root).clips) == 1                # readers ignore unfinished shards and temps
    assert main(args) == 0
    records = _report(root)[lines:]
    assert [Path(r["video"]).name for r in records] == ["d20.mp4"] and records[0]["status"] == "ok"
    assert d0_tar.stat().st_mtime_ns == stamp and d20_sidecar.exists()
    assert not stale_d20.exists()                            # the redone video's leftovers are cleaned
    ds = open_dataset(root)
    assert len(ds.clips) == 2 and all(len(ds.landmarks(c.id)["pose"]) == c.num_frames for c in ds.clips)


def test_other_options_refuse_to_resume(full, capsys):
    code = main(["prepare", str(D0), "-o", str(full[0]), "--max-frames", "40", "--size", "128"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("puppetry: error: ") and "other options" in err[0] and "size" in err[0]


def test_missing_input_is_one_line_error(tmp_path, capsys):
    code = main(["prepare", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "ds")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"puppetry: error: input '{tmp_path / 'nope.mp4'}' not found"]
    assert not (tmp_path / "ds").exists()
    assert main(["prepare", str(D0), "-o", str(tmp_path / "ds"), "--shard", "2/2"]) == 2
    assert "--shard" in capsys.readouterr().err


def test_all_skipped_is_an_error(inputs, tmp_path, capsys):
    code = main(["prepare", str(inputs / "bad.mp4"), "-o", str(tmp_path / "ds")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("puppetry: error: no video could be prepared")


def test_shards_split_videos_once_and_tracking_separates_people(sharded):
    records = _report(sharded)
    names = sorted(Path(r["video"]).name for r in records)
    assert names == ["d0.mp4", "d20.mp4", "flat.mp4", "pair.mp4"]       # each video exactly once
    by_name = _by_video(records)
    assert by_name["flat.mp4"]["status"] == "skipped" and "no face" in by_name["flat.mp4"]["reason"]
    ds = open_dataset(sharded)
    assert not ds.has_frames and len(list((sharded / "shards").glob("*.tar"))) == 3
    with pytest.raises(MediaError, match="landmarks-only"):
        next(ds.frames(ds.clips[0].id))

    # The two-person video with a cut gives four one-person clips, none across the cut.
    pair = [c for c in ds.clips if c.video.endswith("pair.mp4")]
    assert len(pair) == 4 and len({c.identity for c in pair}) == 1     # --identity video
    for clip in pair:
        lm = ds.landmarks(clip.id)
        index = lm["frame_index"]
        assert index[0] >= 20 or index[-1] < 20
        x0, _, x1, _ = lm["crop_box"][0]
        centres = lm["landmarks478"][..., 0].mean(-1) * (x1 - x0) / 256 + x0   # face centre, source x
        assert (centres < 512).all() or (centres > 512).all()
        assert lm["detected"].all()

    ranks = [[c.id for c in iter_shards(sharded, r, 2)] for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == sorted(c.id for c in ds.clips) and not set(ranks[0]) & set(ranks[1])


def test_two_workers_give_the_same_clips(sharded, inputs, tmp_path):
    root = tmp_path / "ds"
    videos = [str(D0), str(D20), str(inputs / "flat.mp4"), str(inputs / "pair.mp4")]
    assert main(["prepare", *videos, "-o", str(root), "--workers", "2", *LM_ARGS]) == 0
    one, two = open_dataset(sharded), open_dataset(root)
    assert [(c.id, c.num_frames) for c in one.clips] == [(c.id, c.num_frames) for c in two.clips]
    for clip in one.clips:
        a, b = one.landmarks(clip.id), two.landmarks(clip.id)
        np.testing.assert_array_equal(a["frame_index"], b["frame_index"])
        np.testing.assert_allclose(a["landmarks478"], b["landmarks478"], atol=0.05)


def test_not_a_dataset(tmp_path):
    with pytest.raises(MediaError, match="not a prepared dataset"):
        open_dataset(tmp_path)
    os.makedirs(tmp_path / "x")
    with pytest.raises(ValueError):
        list(iter_shards(tmp_path, 2, 2))


# ------------------------------------------------------------------------------------------------ audio
def _video_with_click(tmp_path: Path, click_frame: int, frames: int = 60, fps: int = 30) -> Path:
    """d20's first ``frames`` frames (a face in each) with a silent AAC track holding one click at the start
    of frame ``click_frame``."""
    import av

    from puppetry.media.video import read_video
    from puppetry.media.writer import VideoWriter

    rate = 48000
    wav = tmp_path / "click.wav"
    samples = np.zeros(int(rate * (frames / fps + 0.5)), np.int16)
    at = click_frame * rate // fps
    samples[at:at + 96] = 30000                                           # a 2 ms click
    with av.open(str(wav), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    video = tmp_path / "click.mp4"
    pictures, _ = read_video(D20, frames)
    with VideoWriter(video, fps=fps, audio_from=wav) as writer:
        for picture in pictures:
            writer.write(picture)
    return video


def test_clips_keep_their_audio_aligned_to_their_frames(tmp_path):
    """A click at the start of source frame 37 lands at frame 37's time in each clip's audio, to the sample
    within AAC's coding (``--every 2``: a clip frame spans two source frames)."""
    from puppetry.media.audio import read_audio

    video = _video_with_click(tmp_path, 37)
    whole = read_audio(video, 16000)
    peak = int(np.argmax(np.abs(whole.samples)))
    assert abs(peak / 16000 - 37 / 30) < 0.002, peak / 16000                # the track itself is in sync
    out = tmp_path / "ds"
    assert main(["-q", "prepare", str(video), str(D0), "-o", str(out), "--landmarks-only", "--every", "2",
                 "--min-frames", "8"]) == 0
    ds = open_dataset(out)
    clips = {Path(c.video).name: c for c in ds.clips}
    clip = clips["click.mp4"]
    meta, audio = ds.meta(clip.id), ds.audio(clip.id)
    assert meta["has_audio"] and audio.rate == meta["audio_rate"] == 16000
    fps = clip.fps * meta["every"]
    assert len(audio.samples) == round(clip.num_frames * meta["every"] / fps * 16000)
    start = meta["frame_index_start"] / fps
    peak = int(np.argmax(np.abs(audio.samples)))
    assert abs(start + peak / 16000 - 37 / 30) < 0.002, (start, peak)
    frame_index = ds.landmarks(clip.id)["frame_index"]
    t = int(peak / 16000 * clip.fps)                                        # the clip frame it falls in
    assert frame_index[t] <= 37 < frame_index[t] + meta["every"]
    silent = clips["d0.mp4"]                                                # d0 has no soundtrack
    assert not ds.meta(silent.id)["has_audio"] and ds.audio(silent.id) is None


def test_a_damaged_soundtrack_leaves_the_clip_without_audio(tmp_path, caplog):
    from puppetry.media.audio import read_audio

    video = _video_with_click(tmp_path, 10, frames=30)
    raw = bytearray(video.read_bytes())
    tag = raw.find(b"mp4a")
    raw[tag:tag + 4] = b"zzzz"
    raw[raw.find(b"\x40\x15", raw.find(b"esds", tag))] = 0                 # no codec FFmpeg can name
    video.write_bytes(bytes(raw))
    with pytest.raises(MediaError, match="codec cannot be identified"):
        read_audio(video)
    out = tmp_path / "ds"
    with caplog.at_level("WARNING", logger="puppetry"):
        assert main(["-q", "prepare", str(video), "-o", str(out), "--landmarks-only", "--min-frames", "8"]) == 0
    ds = open_dataset(out)
    assert ds.clips and all(ds.audio(c.id) is None for c in ds.clips)
    assert "without audio" in caplog.text
