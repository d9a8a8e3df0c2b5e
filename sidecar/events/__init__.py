"""Event batching and verdicts: detections -> per-camera batches -> LLM risk verdicts -> the stream."""
