"""Odd and damaged clips, on real files written with PyAV: each is sampled or refused with
InvalidClipError, never an other exception (which the ingestor would not count) nor a crash."""

from __future__ import annotations

from pathlib import Path

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
