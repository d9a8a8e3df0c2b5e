from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrameErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_ERROR_CODE_UNSPECIFIED: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_NOT_AN_IMAGE: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_TRUNCATED: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_EMPTY: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_TOO_MANY_PIXELS: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_TOO_LARGE: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_INVALID_REQUEST: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_INTERNAL: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_UNAVAILABLE: _ClassVar[FrameErrorCode]
    FRAME_ERROR_CODE_STORAGE_UNAVAILABLE: _ClassVar[FrameErrorCode]

class RiskLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RISK_LEVEL_UNSPECIFIED: _ClassVar[RiskLevel]
    RISK_LEVEL_LOW: _ClassVar[RiskLevel]
    RISK_LEVEL_MEDIUM: _ClassVar[RiskLevel]
    RISK_LEVEL_HIGH: _ClassVar[RiskLevel]
    RISK_LEVEL_CRITICAL: _ClassVar[RiskLevel]
FRAME_ERROR_CODE_UNSPECIFIED: FrameErrorCode
FRAME_ERROR_CODE_NOT_AN_IMAGE: FrameErrorCode
FRAME_ERROR_CODE_TRUNCATED: FrameErrorCode
FRAME_ERROR_CODE_EMPTY: FrameErrorCode
FRAME_ERROR_CODE_TOO_MANY_PIXELS: FrameErrorCode
FRAME_ERROR_CODE_TOO_LARGE: FrameErrorCode
FRAME_ERROR_CODE_INVALID_REQUEST: FrameErrorCode
FRAME_ERROR_CODE_INTERNAL: FrameErrorCode
FRAME_ERROR_CODE_UNAVAILABLE: FrameErrorCode
FRAME_ERROR_CODE_STORAGE_UNAVAILABLE: FrameErrorCode
RISK_LEVEL_UNSPECIFIED: RiskLevel
RISK_LEVEL_LOW: RiskLevel
RISK_LEVEL_MEDIUM: RiskLevel
RISK_LEVEL_HIGH: RiskLevel
RISK_LEVEL_CRITICAL: RiskLevel

class Frame(_message.Message):
    __slots__ = ("frame_id", "camera_id", "image", "content_type", "captured_at", "source_path", "camera_name", "clip_name", "clip_offset_seconds")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    CAMERA_NAME_FIELD_NUMBER: _ClassVar[int]
    CLIP_NAME_FIELD_NUMBER: _ClassVar[int]
    CLIP_OFFSET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    frame_id: str
    camera_id: str
    image: bytes
    content_type: str
    captured_at: _timestamp_pb2.Timestamp
    source_path: str
    camera_name: str
    clip_name: str
    clip_offset_seconds: float
    def __init__(self, frame_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., image: _Optional[bytes] = ..., content_type: _Optional[str] = ..., captured_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., source_path: _Optional[str] = ..., camera_name: _Optional[str] = ..., clip_name: _Optional[str] = ..., clip_offset_seconds: _Optional[float] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("x_min", "y_min", "x_max", "y_max")
    X_MIN_FIELD_NUMBER: _ClassVar[int]
    Y_MIN_FIELD_NUMBER: _ClassVar[int]
    X_MAX_FIELD_NUMBER: _ClassVar[int]
    Y_MAX_FIELD_NUMBER: _ClassVar[int]
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    def __init__(self, x_min: _Optional[float] = ..., y_min: _Optional[float] = ..., x_max: _Optional[float] = ..., y_max: _Optional[float] = ...) -> None: ...

class Detection(_message.Message):
    __slots__ = ("label", "confidence", "box", "label_id")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    LABEL_ID_FIELD_NUMBER: _ClassVar[int]
    label: str
    confidence: float
    box: Box
    label_id: int
    def __init__(self, label: _Optional[str] = ..., confidence: _Optional[float] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., label_id: _Optional[int] = ...) -> None: ...

class FrameError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: FrameErrorCode
    message: str
    def __init__(self, code: _Optional[_Union[FrameErrorCode, str]] = ..., message: _Optional[str] = ...) -> None: ...

class FrameResult(_message.Message):
    __slots__ = ("frame_id", "camera_id", "width", "height", "detections", "inference_ms", "total_ms", "error", "captured_at", "model_batch_size", "batch_id", "retryable", "zones", "tamper")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    MODEL_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    ZONES_FIELD_NUMBER: _ClassVar[int]
    TAMPER_FIELD_NUMBER: _ClassVar[int]
    frame_id: str
    camera_id: str
    width: int
    height: int
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    inference_ms: float
    total_ms: float
    error: FrameError
    captured_at: _timestamp_pb2.Timestamp
    model_batch_size: int
    batch_id: str
    retryable: bool
    zones: _containers.RepeatedCompositeFieldContainer[ZoneHit]
    tamper: CameraTamper
    def __init__(self, frame_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., inference_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., error: _Optional[_Union[FrameError, _Mapping]] = ..., captured_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., model_batch_size: _Optional[int] = ..., batch_id: _Optional[str] = ..., retryable: bool = ..., zones: _Optional[_Iterable[_Union[ZoneHit, _Mapping]]] = ..., tamper: _Optional[_Union[CameraTamper, _Mapping]] = ...) -> None: ...

class CameraTamper(_message.Message):
    __slots__ = ("kind", "score", "since")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    score: float
    since: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[str] = ..., score: _Optional[float] = ..., since: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ClientMessage(_message.Message):
    __slots__ = ("hello", "frame", "verdict_ack", "config", "home_state", "feedback")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    VERDICT_ACK_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    HOME_STATE_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    frame: Frame
    verdict_ack: VerdictAck
    config: StreamConfig
    home_state: HomeState
    feedback: Feedback
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., frame: _Optional[_Union[Frame, _Mapping]] = ..., verdict_ack: _Optional[_Union[VerdictAck, _Mapping]] = ..., config: _Optional[_Union[StreamConfig, _Mapping]] = ..., home_state: _Optional[_Union[HomeState, _Mapping]] = ..., feedback: _Optional[_Union[Feedback, _Mapping]] = ...) -> None: ...

class Feedback(_message.Message):
    __slots__ = ("event_id", "camera_id", "labels", "started_at", "verdict", "note", "given_at", "risk_score", "identities")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    GIVEN_AT_FIELD_NUMBER: _ClassVar[int]
    RISK_SCORE_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    camera_id: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    started_at: _timestamp_pb2.Timestamp
    verdict: str
    note: str
    given_at: _timestamp_pb2.Timestamp
    risk_score: int
    identities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., verdict: _Optional[str] = ..., note: _Optional[str] = ..., given_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., risk_score: _Optional[int] = ..., identities: _Optional[_Iterable[str]] = ...) -> None: ...

class HomeState(_message.Message):
    __slots__ = ("alarm", "people_home", "people_tracked", "people_known", "vacation", "vacation_known", "changed_at")
    ALARM_FIELD_NUMBER: _ClassVar[int]
    PEOPLE_HOME_FIELD_NUMBER: _ClassVar[int]
    PEOPLE_TRACKED_FIELD_NUMBER: _ClassVar[int]
    PEOPLE_KNOWN_FIELD_NUMBER: _ClassVar[int]
    VACATION_FIELD_NUMBER: _ClassVar[int]
    VACATION_KNOWN_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    alarm: str
    people_home: int
    people_tracked: int
    people_known: bool
    vacation: bool
    vacation_known: bool
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, alarm: _Optional[str] = ..., people_home: _Optional[int] = ..., people_tracked: _Optional[int] = ..., people_known: bool = ..., vacation: bool = ..., vacation_known: bool = ..., changed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("hello", "result", "verdict", "status", "config_reply")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_REPLY_FIELD_NUMBER: _ClassVar[int]
    hello: HelloReply
    result: FrameResult
    verdict: Verdict
    status: SidecarStatus
    config_reply: ConfigReply
    def __init__(self, hello: _Optional[_Union[HelloReply, _Mapping]] = ..., result: _Optional[_Union[FrameResult, _Mapping]] = ..., verdict: _Optional[_Union[Verdict, _Mapping]] = ..., status: _Optional[_Union[SidecarStatus, _Mapping]] = ..., config_reply: _Optional[_Union[ConfigReply, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("client_id", "client_version", "config", "time_zone")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    client_version: str
    config: StreamConfig
    time_zone: str
    def __init__(self, client_id: _Optional[str] = ..., client_version: _Optional[str] = ..., config: _Optional[_Union[StreamConfig, _Mapping]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class HelloReply(_message.Message):
    __slots__ = ("server_version", "status", "max_frames_in_flight", "config_warnings")
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_WARNINGS_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    status: SidecarStatus
    max_frames_in_flight: int
    config_warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, server_version: _Optional[str] = ..., status: _Optional[_Union[SidecarStatus, _Mapping]] = ..., max_frames_in_flight: _Optional[int] = ..., config_warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class ConfigReply(_message.Message):
    __slots__ = ("config_warnings",)
    CONFIG_WARNINGS_FIELD_NUMBER: _ClassVar[int]
    config_warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, config_warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamConfig(_message.Message):
    __slots__ = ("detection_threshold", "batching", "known_plates", "known_plates_set", "enrichers_off", "enrichers_off_set", "camera_notes", "camera_notes_set", "camera_zones", "camera_zones_set")
    DETECTION_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    KNOWN_PLATES_FIELD_NUMBER: _ClassVar[int]
    KNOWN_PLATES_SET_FIELD_NUMBER: _ClassVar[int]
    ENRICHERS_OFF_FIELD_NUMBER: _ClassVar[int]
    ENRICHERS_OFF_SET_FIELD_NUMBER: _ClassVar[int]
    CAMERA_NOTES_FIELD_NUMBER: _ClassVar[int]
    CAMERA_NOTES_SET_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ZONES_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ZONES_SET_FIELD_NUMBER: _ClassVar[int]
    detection_threshold: float
    batching: BatchingConfig
    known_plates: _containers.RepeatedCompositeFieldContainer[KnownPlate]
    known_plates_set: bool
    enrichers_off: _containers.RepeatedScalarFieldContainer[str]
    enrichers_off_set: bool
    camera_notes: _containers.RepeatedCompositeFieldContainer[CameraNote]
    camera_notes_set: bool
    camera_zones: _containers.RepeatedCompositeFieldContainer[CameraZones]
    camera_zones_set: bool
    def __init__(self, detection_threshold: _Optional[float] = ..., batching: _Optional[_Union[BatchingConfig, _Mapping]] = ..., known_plates: _Optional[_Iterable[_Union[KnownPlate, _Mapping]]] = ..., known_plates_set: bool = ..., enrichers_off: _Optional[_Iterable[str]] = ..., enrichers_off_set: bool = ..., camera_notes: _Optional[_Iterable[_Union[CameraNote, _Mapping]]] = ..., camera_notes_set: bool = ..., camera_zones: _Optional[_Iterable[_Union[CameraZones, _Mapping]]] = ..., camera_zones_set: bool = ...) -> None: ...

class CameraZones(_message.Message):
    __slots__ = ("camera_id", "zones")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    ZONES_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    zones: _containers.RepeatedCompositeFieldContainer[Zone]
    def __init__(self, camera_id: _Optional[str] = ..., zones: _Optional[_Iterable[_Union[Zone, _Mapping]]] = ...) -> None: ...

class Zone(_message.Message):
    __slots__ = ("name", "kind", "priority", "points")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    priority: int
    points: _containers.RepeatedCompositeFieldContainer[ZonePoint]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., priority: _Optional[int] = ..., points: _Optional[_Iterable[_Union[ZonePoint, _Mapping]]] = ...) -> None: ...

class ZonePoint(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class ZoneHit(_message.Message):
    __slots__ = ("zone", "kind", "detections")
    ZONE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    zone: str
    kind: str
    detections: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, zone: _Optional[str] = ..., kind: _Optional[str] = ..., detections: _Optional[_Iterable[int]] = ...) -> None: ...

class CameraNote(_message.Message):
    __slots__ = ("camera_id", "note")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    note: str
    def __init__(self, camera_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class KnownPlate(_message.Message):
    __slots__ = ("plate", "name")
    PLATE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    plate: str
    name: str
    def __init__(self, plate: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class BatchingConfig(_message.Message):
    __slots__ = ("window_seconds", "idle_seconds", "fast_path_labels", "fast_path_confidence", "labels_of_interest", "fast_path_disabled", "max_frames_per_batch")
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FAST_PATH_LABELS_FIELD_NUMBER: _ClassVar[int]
    FAST_PATH_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    LABELS_OF_INTEREST_FIELD_NUMBER: _ClassVar[int]
    FAST_PATH_DISABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_PER_BATCH_FIELD_NUMBER: _ClassVar[int]
    window_seconds: float
    idle_seconds: float
    fast_path_labels: _containers.RepeatedScalarFieldContainer[str]
    fast_path_confidence: float
    labels_of_interest: _containers.RepeatedScalarFieldContainer[str]
    fast_path_disabled: bool
    max_frames_per_batch: int
    def __init__(self, window_seconds: _Optional[float] = ..., idle_seconds: _Optional[float] = ..., fast_path_labels: _Optional[_Iterable[str]] = ..., fast_path_confidence: _Optional[float] = ..., labels_of_interest: _Optional[_Iterable[str]] = ..., fast_path_disabled: bool = ..., max_frames_per_batch: _Optional[int] = ...) -> None: ...

class LabelCount(_message.Message):
    __slots__ = ("label", "count", "max_confidence")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    label: str
    count: int
    max_confidence: float
    def __init__(self, label: _Optional[str] = ..., count: _Optional[int] = ..., max_confidence: _Optional[float] = ...) -> None: ...

class Verdict(_message.Message):
    __slots__ = ("verdict_id", "event_id", "batch_id", "camera_id", "camera_name", "risk_score", "risk_level", "summary", "reasoning", "fast_path", "fallback", "started_at", "ended_at", "labels", "frame_ids", "snapshot_frame_id", "snapshot_detections", "close_reason", "model", "llm_ms", "completion_tokens", "created_at", "caption", "scene_attributes", "objects", "enrichers", "enrichment_ms", "anomaly", "baseline_days", "prompt", "zones")
    VERDICT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_NAME_FIELD_NUMBER: _ClassVar[int]
    RISK_SCORE_FIELD_NUMBER: _ClassVar[int]
    RISK_LEVEL_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    REASONING_FIELD_NUMBER: _ClassVar[int]
    FAST_PATH_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FRAME_IDS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    CLOSE_REASON_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LLM_MS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    SCENE_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    ENRICHERS_FIELD_NUMBER: _ClassVar[int]
    ENRICHMENT_MS_FIELD_NUMBER: _ClassVar[int]
    ANOMALY_FIELD_NUMBER: _ClassVar[int]
    BASELINE_DAYS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    ZONES_FIELD_NUMBER: _ClassVar[int]
    verdict_id: str
    event_id: str
    batch_id: str
    camera_id: str
    camera_name: str
    risk_score: int
    risk_level: RiskLevel
    summary: str
    reasoning: str
    fast_path: bool
    fallback: bool
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    labels: _containers.RepeatedCompositeFieldContainer[LabelCount]
    frame_ids: _containers.RepeatedScalarFieldContainer[str]
    snapshot_frame_id: str
    snapshot_detections: _containers.RepeatedCompositeFieldContainer[Detection]
    close_reason: str
    model: str
    llm_ms: float
    completion_tokens: int
    created_at: _timestamp_pb2.Timestamp
    caption: str
    scene_attributes: _containers.RepeatedCompositeFieldContainer[Attribute]
    objects: _containers.RepeatedCompositeFieldContainer[EnrichedObject]
    enrichers: _containers.RepeatedCompositeFieldContainer[EnricherRun]
    enrichment_ms: float
    anomaly: float
    baseline_days: float
    prompt: str
    zones: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, verdict_id: _Optional[str] = ..., event_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., camera_name: _Optional[str] = ..., risk_score: _Optional[int] = ..., risk_level: _Optional[_Union[RiskLevel, str]] = ..., summary: _Optional[str] = ..., reasoning: _Optional[str] = ..., fast_path: bool = ..., fallback: bool = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Iterable[_Union[LabelCount, _Mapping]]] = ..., frame_ids: _Optional[_Iterable[str]] = ..., snapshot_frame_id: _Optional[str] = ..., snapshot_detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., close_reason: _Optional[str] = ..., model: _Optional[str] = ..., llm_ms: _Optional[float] = ..., completion_tokens: _Optional[int] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., caption: _Optional[str] = ..., scene_attributes: _Optional[_Iterable[_Union[Attribute, _Mapping]]] = ..., objects: _Optional[_Iterable[_Union[EnrichedObject, _Mapping]]] = ..., enrichers: _Optional[_Iterable[_Union[EnricherRun, _Mapping]]] = ..., enrichment_ms: _Optional[float] = ..., anomaly: _Optional[float] = ..., baseline_days: _Optional[float] = ..., prompt: _Optional[str] = ..., zones: _Optional[_Iterable[str]] = ...) -> None: ...

class Attribute(_message.Message):
    __slots__ = ("name", "value", "score")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    score: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class IdentityMatch(_message.Message):
    __slots__ = ("camera_id", "camera_name", "seen_at", "similarity")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_NAME_FIELD_NUMBER: _ClassVar[int]
    SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    camera_name: str
    seen_at: _timestamp_pb2.Timestamp
    similarity: float
    def __init__(self, camera_id: _Optional[str] = ..., camera_name: _Optional[str] = ..., seen_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., similarity: _Optional[float] = ...) -> None: ...

class EnrichedObject(_message.Message):
    __slots__ = ("label", "frame_id", "confidence", "box", "attributes", "identity_id", "identity", "visits_24h", "matches", "plate", "plate_score", "known_plate", "posture", "distance", "movement")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    VISITS_24H_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    PLATE_FIELD_NUMBER: _ClassVar[int]
    PLATE_SCORE_FIELD_NUMBER: _ClassVar[int]
    KNOWN_PLATE_FIELD_NUMBER: _ClassVar[int]
    POSTURE_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_FIELD_NUMBER: _ClassVar[int]
    label: str
    frame_id: str
    confidence: float
    box: Box
    attributes: _containers.RepeatedCompositeFieldContainer[Attribute]
    identity_id: int
    identity: str
    visits_24h: int
    matches: _containers.RepeatedCompositeFieldContainer[IdentityMatch]
    plate: str
    plate_score: float
    known_plate: str
    posture: str
    distance: str
    movement: str
    def __init__(self, label: _Optional[str] = ..., frame_id: _Optional[str] = ..., confidence: _Optional[float] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., attributes: _Optional[_Iterable[_Union[Attribute, _Mapping]]] = ..., identity_id: _Optional[int] = ..., identity: _Optional[str] = ..., visits_24h: _Optional[int] = ..., matches: _Optional[_Iterable[_Union[IdentityMatch, _Mapping]]] = ..., plate: _Optional[str] = ..., plate_score: _Optional[float] = ..., known_plate: _Optional[str] = ..., posture: _Optional[str] = ..., distance: _Optional[str] = ..., movement: _Optional[str] = ...) -> None: ...

class EnricherRun(_message.Message):
    __slots__ = ("name", "status", "reason", "ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: str
    reason: str
    ms: float
    def __init__(self, name: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., ms: _Optional[float] = ...) -> None: ...

class VerdictAck(_message.Message):
    __slots__ = ("verdict_ids",)
    VERDICT_IDS_FIELD_NUMBER: _ClassVar[int]
    verdict_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, verdict_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AnalyzeRequest(_message.Message):
    __slots__ = ("frame", "threshold")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    frame: Frame
    threshold: float
    def __init__(self, frame: _Optional[_Union[Frame, _Mapping]] = ..., threshold: _Optional[float] = ...) -> None: ...

class AnalyzeResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: FrameResult
    def __init__(self, result: _Optional[_Union[FrameResult, _Mapping]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: SidecarStatus
    def __init__(self, status: _Optional[_Union[SidecarStatus, _Mapping]] = ...) -> None: ...

class LatencyStats(_message.Message):
    __slots__ = ("count", "mean_ms", "p50_ms", "p95_ms", "max_ms")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_MS_FIELD_NUMBER: _ClassVar[int]
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P95_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MS_FIELD_NUMBER: _ClassVar[int]
    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    def __init__(self, count: _Optional[int] = ..., mean_ms: _Optional[float] = ..., p50_ms: _Optional[float] = ..., p95_ms: _Optional[float] = ..., max_ms: _Optional[float] = ...) -> None: ...

class GpuStatus(_message.Message):
    __slots__ = ("name", "utilization_percent", "memory_used_bytes", "memory_total_bytes", "temperature_c", "power_w")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    name: str
    utilization_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    temperature_c: float
    power_w: float
    def __init__(self, name: _Optional[str] = ..., utilization_percent: _Optional[float] = ..., memory_used_bytes: _Optional[int] = ..., memory_total_bytes: _Optional[int] = ..., temperature_c: _Optional[float] = ..., power_w: _Optional[float] = ...) -> None: ...

class SidecarStatus(_message.Message):
    __slots__ = ("server_version", "ready", "detector_model", "device", "dtype", "default_threshold", "max_batch", "max_delay_ms", "queue_depth", "frames_received", "frames_processed", "frames_failed", "model_batches", "mean_model_batch_size", "inference_latency", "frame_latency", "uptime_seconds", "active_streams", "gpus", "errors_by_code", "llm_model", "open_batches", "pending_verdicts", "verdicts_produced", "fallback_verdicts", "llm_latency", "storage_error", "storage_errors", "damaged_state_file", "max_frame_bytes", "max_pixels", "max_frames_in_flight", "batch_costs", "batching_policy", "decode_workers", "max_decoded_frames", "rss_bytes", "peak_rss_bytes", "compile_mode", "enrichment", "tampered_cameras", "random_models")
    class ErrorsByCodeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_MODEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    FRAMES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FAILED_FIELD_NUMBER: _ClassVar[int]
    MODEL_BATCHES_FIELD_NUMBER: _ClassVar[int]
    MEAN_MODEL_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_LATENCY_FIELD_NUMBER: _ClassVar[int]
    FRAME_LATENCY_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_STREAMS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_BY_CODE_FIELD_NUMBER: _ClassVar[int]
    LLM_MODEL_FIELD_NUMBER: _ClassVar[int]
    OPEN_BATCHES_FIELD_NUMBER: _ClassVar[int]
    PENDING_VERDICTS_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_PRODUCED_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_VERDICTS_FIELD_NUMBER: _ClassVar[int]
    LLM_LATENCY_FIELD_NUMBER: _ClassVar[int]
    STORAGE_ERROR_FIELD_NUMBER: _ClassVar[int]
    STORAGE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    DAMAGED_STATE_FILE_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    BATCH_COSTS_FIELD_NUMBER: _ClassVar[int]
    BATCHING_POLICY_FIELD_NUMBER: _ClassVar[int]
    DECODE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    MAX_DECODED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    PEAK_RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    COMPILE_MODE_FIELD_NUMBER: _ClassVar[int]
    ENRICHMENT_FIELD_NUMBER: _ClassVar[int]
    TAMPERED_CAMERAS_FIELD_NUMBER: _ClassVar[int]
    RANDOM_MODELS_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    ready: bool
    detector_model: str
    device: str
    dtype: str
    default_threshold: float
    max_batch: int
    max_delay_ms: float
    queue_depth: int
    frames_received: int
    frames_processed: int
    frames_failed: int
    model_batches: int
    mean_model_batch_size: float
    inference_latency: LatencyStats
    frame_latency: LatencyStats
    uptime_seconds: float
    active_streams: int
    gpus: _containers.RepeatedCompositeFieldContainer[GpuStatus]
    errors_by_code: _containers.ScalarMap[str, int]
    llm_model: str
    open_batches: int
    pending_verdicts: int
    verdicts_produced: int
    fallback_verdicts: int
    llm_latency: LatencyStats
    storage_error: str
    storage_errors: int
    damaged_state_file: str
    max_frame_bytes: int
    max_pixels: int
    max_frames_in_flight: int
    batch_costs: _containers.RepeatedCompositeFieldContainer[BatchSizeCost]
    batching_policy: str
    decode_workers: int
    max_decoded_frames: int
    rss_bytes: int
    peak_rss_bytes: int
    compile_mode: str
    enrichment: EnrichmentStatus
    tampered_cameras: int
    random_models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, server_version: _Optional[str] = ..., ready: bool = ..., detector_model: _Optional[str] = ..., device: _Optional[str] = ..., dtype: _Optional[str] = ..., default_threshold: _Optional[float] = ..., max_batch: _Optional[int] = ..., max_delay_ms: _Optional[float] = ..., queue_depth: _Optional[int] = ..., frames_received: _Optional[int] = ..., frames_processed: _Optional[int] = ..., frames_failed: _Optional[int] = ..., model_batches: _Optional[int] = ..., mean_model_batch_size: _Optional[float] = ..., inference_latency: _Optional[_Union[LatencyStats, _Mapping]] = ..., frame_latency: _Optional[_Union[LatencyStats, _Mapping]] = ..., uptime_seconds: _Optional[float] = ..., active_streams: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[GpuStatus, _Mapping]]] = ..., errors_by_code: _Optional[_Mapping[str, int]] = ..., llm_model: _Optional[str] = ..., open_batches: _Optional[int] = ..., pending_verdicts: _Optional[int] = ..., verdicts_produced: _Optional[int] = ..., fallback_verdicts: _Optional[int] = ..., llm_latency: _Optional[_Union[LatencyStats, _Mapping]] = ..., storage_error: _Optional[str] = ..., storage_errors: _Optional[int] = ..., damaged_state_file: _Optional[str] = ..., max_frame_bytes: _Optional[int] = ..., max_pixels: _Optional[int] = ..., max_frames_in_flight: _Optional[int] = ..., batch_costs: _Optional[_Iterable[_Union[BatchSizeCost, _Mapping]]] = ..., batching_policy: _Optional[str] = ..., decode_workers: _Optional[int] = ..., max_decoded_frames: _Optional[int] = ..., rss_bytes: _Optional[int] = ..., peak_rss_bytes: _Optional[int] = ..., compile_mode: _Optional[str] = ..., enrichment: _Optional[_Union[EnrichmentStatus, _Mapping]] = ..., tampered_cameras: _Optional[int] = ..., random_models: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchSizeCost(_message.Message):
    __slots__ = ("size", "forward_ms", "samples", "batches")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    FORWARD_MS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    size: int
    forward_ms: float
    samples: int
    batches: int
    def __init__(self, size: _Optional[int] = ..., forward_ms: _Optional[float] = ..., samples: _Optional[int] = ..., batches: _Optional[int] = ...) -> None: ...

class EnrichmentStatus(_message.Message):
    __slots__ = ("enrichers", "device", "budget_bytes", "margin_bytes", "in_use_bytes", "high_water_bytes", "loads", "evictions", "skips", "out_of_memory", "models", "batches_enriched", "enrichment_latency")
    ENRICHERS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_BYTES_FIELD_NUMBER: _ClassVar[int]
    MARGIN_BYTES_FIELD_NUMBER: _ClassVar[int]
    IN_USE_BYTES_FIELD_NUMBER: _ClassVar[int]
    HIGH_WATER_BYTES_FIELD_NUMBER: _ClassVar[int]
    LOADS_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    SKIPS_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_MEMORY_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    BATCHES_ENRICHED_FIELD_NUMBER: _ClassVar[int]
    ENRICHMENT_LATENCY_FIELD_NUMBER: _ClassVar[int]
    enrichers: _containers.RepeatedScalarFieldContainer[str]
    device: str
    budget_bytes: int
    margin_bytes: int
    in_use_bytes: int
    high_water_bytes: int
    loads: int
    evictions: int
    skips: int
    out_of_memory: int
    models: _containers.RepeatedCompositeFieldContainer[ZooModel]
    batches_enriched: int
    enrichment_latency: LatencyStats
    def __init__(self, enrichers: _Optional[_Iterable[str]] = ..., device: _Optional[str] = ..., budget_bytes: _Optional[int] = ..., margin_bytes: _Optional[int] = ..., in_use_bytes: _Optional[int] = ..., high_water_bytes: _Optional[int] = ..., loads: _Optional[int] = ..., evictions: _Optional[int] = ..., skips: _Optional[int] = ..., out_of_memory: _Optional[int] = ..., models: _Optional[_Iterable[_Union[ZooModel, _Mapping]]] = ..., batches_enriched: _Optional[int] = ..., enrichment_latency: _Optional[_Union[LatencyStats, _Mapping]] = ...) -> None: ...

class ZooModel(_message.Message):
    __slots__ = ("name", "spec", "loaded", "resident", "priority", "weights_bytes", "working_set_bytes", "leases", "loads", "evictions", "out_of_memory", "load_ms", "disabled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_BYTES_FIELD_NUMBER: _ClassVar[int]
    WORKING_SET_BYTES_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    LOADS_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_MEMORY_FIELD_NUMBER: _ClassVar[int]
    LOAD_MS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: str
    loaded: bool
    resident: bool
    priority: int
    weights_bytes: int
    working_set_bytes: int
    leases: int
    loads: int
    evictions: int
    out_of_memory: int
    load_ms: float
    disabled: str
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[str] = ..., loaded: bool = ..., resident: bool = ..., priority: _Optional[int] = ..., weights_bytes: _Optional[int] = ..., working_set_bytes: _Optional[int] = ..., leases: _Optional[int] = ..., loads: _Optional[int] = ..., evictions: _Optional[int] = ..., out_of_memory: _Optional[int] = ..., load_ms: _Optional[float] = ..., disabled: _Optional[str] = ...) -> None: ...
