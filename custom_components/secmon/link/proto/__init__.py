"""Generated from protos/secmon/v1/secmon.proto by scripts/gen-protos. Do not edit."""
