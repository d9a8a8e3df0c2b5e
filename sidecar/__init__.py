"""secmon sidecar: RT-DETRv2 object detection (and, later, LLM risk verdicts) served over gRPC."""

__version__ = "0.1.0"
