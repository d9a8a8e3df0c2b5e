"""The encoded images of frames that joined event batches, kept (bounded, least recently added
dropped first) until their batch is enriched. Memory only: after a restart a batch's images are
gone and its enrichment is skipped with that reason; the verdict still goes out."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class FrameImages:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._images: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, camera_id: str, frame_id: str, image: bytes) -> None:
        if len(image) > self.max_bytes:
            return
        key = (camera_id, frame_id)
        with self._lock:
            if key in self._images:
                return
            self._images[key] = image
            self._bytes += len(image)
            while self._bytes > self.max_bytes:
                _key, dropped = self._images.popitem(last=False)
                self._bytes -= len(dropped)

    def get_many(self, camera_id: str, frame_ids: Iterable[str]) -> dict[str, bytes]:
        with self._lock:
            return {
                f: self._images[(camera_id, f)] for f in frame_ids if (camera_id, f) in self._images
            }

    def discard(self, camera_id: str, frame_ids: Iterable[str]) -> None:
        with self._lock:
            for f in frame_ids:
                image = self._images.pop((camera_id, f), None)
                if image is not None:
                    self._bytes -= len(image)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._images)
