"""The entry's SQLite database: the frame queue (frames waiting for the sidecar) and the verdict
store (history and each camera's current verdict)."""
