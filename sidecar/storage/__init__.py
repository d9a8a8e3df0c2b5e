"""The sidecar's durable state: one SQLite file in --data-dir, its schema and its migrations."""
