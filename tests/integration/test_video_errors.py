"""Odd and damaged clips, on real files written with PyAV: each is sampled or refused with
InvalidClipError, never an other exception (which the ingestor would not count) nor a crash."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from custom_components.secmon.ingest.video import InvalidClipError, frames_at, sample_clip

from .clips import write_test_clip


def _allow_all(_path: str) -> bool:
    return True


@pytest.mark.parametrize(("suffix", "codec"), [("mp4", "mpeg4"), ("mov", "libx264")])
def test_a_clip_cut_off_anywhere_is_sampled_or_invalid(
    tmp_path: Path, suffix: str, codec: str
) -> None:
    """An upload that stopped part way: every prefix of the clip is either sampled or refused as
    invalid, and a snapshot asked of it is a frame or nothing. Cut inside the index at the end,
    the container opens with a video stream that has no codec: decoding that stream crashed the
    process, and sampling it raised an AttributeError."""
    whole = tmp_path / f"whole.{suffix}"
    write_test_clip(whole, frames=30, codec=codec)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    outcomes: set[str] = set()
    for length in range(0, len(data), 32):
        cut.write_bytes(data[:length])
        try:
            clip = sample_clip(cut, _allow_all, 10**8, rate=2.0, max_frames=20)
        except InvalidClipError:
            outcomes.add("invalid")
        else:
            assert clip.frames
            outcomes.add("sampled")
        found = frames_at(cut, [0.5, 2.0])
        assert set(found) <= {0.5, 2.0}
        assert all(jpeg.startswith(b"\xff\xd8") for jpeg in found.values())
    cut.write_bytes(data)
    assert sample_clip(cut, _allow_all, 10**8, rate=2.0, max_frames=20).frames
    assert "invalid" in outcomes


def test_a_file_with_only_sound_is_not_a_clip(tmp_path: Path) -> None:
    path = tmp_path / "doorbell.mp4"
    with av.open(str(path), mode="w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        sound = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono"
        )
        sound.sample_rate = 8000
        for packet in stream.encode(sound):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(InvalidClipError, match="no video stream"):
        sample_clip(path, _allow_all, 10**8, rate=2.0, max_frames=20)


def test_a_raw_motion_jpeg_stream_is_sampled_and_its_length_found_from_its_frames(
    tmp_path: Path,
) -> None:
    """A bare MJPEG stream (no container, so no duration) named like a clip: frames are still
    sampled, at most max_frames of them, and the duration comes from the frames kept."""
    raw = tmp_path / "raw.mjpeg"
    write_test_clip(raw, frames=60, fps=10, codec="mjpeg")
    path = tmp_path / "alarm.avi"
    raw.rename(path)
    with av.open(str(path)) as container:
        assert container.duration is None
    clip = sample_clip(path, _allow_all, 10**8, rate=2.0, max_frames=3)
    assert clip.codec == "mjpeg"
    assert len(clip.frames) == 3
    offsets = [frame.offset for frame in clip.frames]
    assert offsets == sorted(offsets)
    assert offsets[0] == 0.0
    assert clip.duration == pytest.approx(offsets[-1] + 0.5)
    assert clip.start_source == "file_mtime"
    assert clip.started_at == pytest.approx(clip.mtime - clip.duration)


def test_a_creation_time_that_is_not_a_time_falls_back_to_the_file_time(tmp_path: Path) -> None:
    """NUT keeps the tag as written: a camera's "garbage" creation time is not trusted."""
    path = tmp_path / "alarm.mkv"
    write_test_clip(tmp_path / "alarm.nut", frames=10, codec="mpeg4", creation_time="garbage")
    (tmp_path / "alarm.nut").rename(path)
    with av.open(str(path)) as container:
        assert container.metadata["creation_time"] == "garbage"
    clip = sample_clip(path, _allow_all, 10**8, rate=2.0, max_frames=20)
    assert clip.start_source == "file_mtime"
    assert clip.started_at == pytest.approx(clip.mtime - (clip.duration or 0.0))


def test_asking_a_clip_for_no_frames_gives_none(tmp_path: Path) -> None:
    path = tmp_path / "alarm.mp4"
    write_test_clip(path, frames=10, codec="mpeg4")
    assert frames_at(path, []) == {}
    assert set(frames_at(path, [0.2, 0.2, 0.5])) == {0.2, 0.5}
