"""An event's clip from the frames the queue still holds (real SQLite, real libx264), when some
of them are gone or cannot be decoded, and when the event has more frames than a clip holds."""

from __future__ import annotations

from pathlib import Path

import av

from custom_components.secmon.storage.database import Database
from custom_components.secmon.storage.event_clip import CLIP_MAX_FRAMES, render_event_clip
from custom_components.secmon.storage.frame_queue import FrameQueue, QueuedFrame

from .helpers import image_bytes


def _frame(frame_id: str, image: bytes, at: float) -> QueuedFrame:
    return QueuedFrame(
        frame_id=frame_id,
        camera_id="cam",
        camera_name="Cam",
        path=f"/cams/Cam/{frame_id}.jpg",
        content_type="image/jpeg",
        captured_at=at,
        image=image,
    )


def test_an_event_clip_leaves_out_frames_it_cannot_show_and_holds_at_most_its_cap(
    tmp_path: Path,
) -> None:
    database = Database(tmp_path / "q.db")
    database.open()
    queue = FrameQueue(database, 1000)
    try:
        # A frame whose stored picture is damaged, one the queue no longer has, then more good
        # frames than a clip holds.
        assert queue.enqueue(_frame("damaged", b"\xff\xd8 not a picture", 0.0), "h-d").accepted
        ids = ["damaged", "gone"]
        for n in range(CLIP_MAX_FRAMES + 10):
            frame_id = f"f{n}"
            assert queue.enqueue(_frame(frame_id, image_bytes(n, (96, 72)), n), f"h{n}").accepted
            ids.append(frame_id)
        out = tmp_path / "clip.mp4"
        held = render_event_clip(queue, ids, out)
        # The cap counts the frames asked for: two of its places went to the ones left out.
        assert held == CLIP_MAX_FRAMES - 2
        with av.open(str(out)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert (stream.codec_context.width, stream.codec_context.height) == (96, 72)
            assert sum(1 for _ in container.decode(stream)) == held

        nothing = tmp_path / "nothing.mp4"
        assert render_event_clip(queue, ["damaged", "gone"], nothing) is None
        assert not nothing.exists()
    finally:
        database.close()
