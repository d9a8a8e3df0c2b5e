"""What each client's cameras saw in the last few minutes, in memory, so that the prompt of a
batch can say what the same home's other cameras saw around it.

Frames with detections are noted as they join batches (by capture time, so a replayed frame lands
where it belongs); the identities enrichment found are noted when a batch's verdict is made. It is
bounded: per camera the newest `MAX_SIGHTINGS` notes within `WINDOW_S` of that camera's newest,
per client `MAX_CAMERAS` cameras. A restart forgets it (it only ever describes minutes).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..domain import FrameObservation

WINDOW_S = 5 * 60.0
MAX_SIGHTINGS = 256
MAX_CAMERAS = 64


@dataclass(frozen=True, slots=True)
class Sighting:
    at: datetime
    labels: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OtherCamera:
    """What one other camera saw in the window before (and during) a batch."""

    camera_id: str
    camera_name: str
    first_at: datetime
    last_at: datetime
    labels: tuple[tuple[str, int], ...]  # (label, detections), most first
    identities: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()


@dataclass(slots=True)
class _Camera:
    name: str
    sightings: deque[Sighting] = field(default_factory=lambda: deque(maxlen=MAX_SIGHTINGS))


class RecentActivity:
    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window = timedelta(seconds=window_s)
        self._clients: dict[str, dict[str, _Camera]] = {}

    def note_frame(
        self, client_id: str, frame: FrameObservation, zones: Iterable[str] = ()
    ) -> None:
        if frame.detections:
            self._note(
                client_id, frame.camera_id, frame.camera_name,
                Sighting(frame.captured_at, tuple(d.label for d in frame.detections),
                         zones=tuple(dict.fromkeys(zones))),
            )

    def note_identities(
        self, client_id: str, camera_id: str, camera_name: str, at: datetime,
        identities: Iterable[str],
    ) -> None:
        found = tuple(dict.fromkeys(i for i in identities if i))
        if found:
            self._note(client_id, camera_id, camera_name, Sighting(at, identities=found))

    def _note(self, client_id: str, camera_id: str, name: str, sighting: Sighting) -> None:
        cameras = self._clients.setdefault(client_id, {})
        camera = cameras.get(camera_id)
        if camera is None:
            if len(cameras) >= MAX_CAMERAS:  # forget the camera quiet the longest
                quiet = min(cameras, key=lambda c: _newest(cameras[c]))
                del cameras[quiet]
            camera = cameras[camera_id] = _Camera(name)
        camera.name = name
        camera.sightings.append(sighting)
        newest = _newest(camera)
        while camera.sightings and camera.sightings[0].at < newest - self.window:
            camera.sightings.popleft()

    def others(
        self, client_id: str, camera_id: str, start: datetime, end: datetime
    ) -> list[OtherCamera]:
        """The client's other cameras' activity from `window` before `start` to `end`, the most
        recent camera first."""
        found: list[OtherCamera] = []
        for other_id, camera in self._clients.get(client_id, {}).items():
            if other_id == camera_id:
                continue
            seen = [s for s in camera.sightings if start - self.window <= s.at <= end]
            if not seen:
                continue
            labels = Counter(label for s in seen for label in s.labels)
            found.append(
                OtherCamera(
                    camera_id=other_id,
                    camera_name=camera.name,
                    first_at=min(s.at for s in seen),
                    last_at=max(s.at for s in seen),
                    labels=tuple(sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))),
                    identities=tuple(dict.fromkeys(i for s in seen for i in s.identities)),
                    zones=tuple(dict.fromkeys(z for s in seen for z in s.zones)),
                )
            )
        return sorted(found, key=lambda o: o.last_at, reverse=True)


def _newest(camera: _Camera) -> datetime:
    return max(s.at for s in camera.sightings)  # a camera always keeps its newest sighting
