"""Detection: frame bytes -> validated, decoded, resized pixels -> model batches -> detections."""
