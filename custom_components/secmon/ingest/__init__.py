"""Camera folder -> frame: the watcher finds settled images, the ingestor checks them and writes
them to the frame queue (storage/). Image checks and drawing live in imaging.py."""
