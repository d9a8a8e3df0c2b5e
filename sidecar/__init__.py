"""secmon sidecar: RT-DETRv2 detection, per-camera event batches and LLM risk verdicts over gRPC."""

__version__ = "0.1.0"
