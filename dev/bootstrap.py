"""Prepare the dev Home Assistant started by scripts/develop (run from the repository root).

python -m dev.bootstrap write-config --config-dir DIR --cameras ROOT --port PORT
    renders dev/configuration.yaml.in into DIR and links the integration (before HA starts)
python -m dev.bootstrap setup --url URL --sidecar HOST:PORT --cameras ROOT --token-file FILE
    waits for HA, onboards it once (user `dev`, password `dev`), adds the secmon entry through
    the real config flow if there is none, and writes an access token for curl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dev.ha_setup import HomeAssistantClient, SetupError, write_config


def setup(args: argparse.Namespace) -> None:
    client = HomeAssistantClient(args.url)
    client.wait_up(limit=300)
    client.onboard_or_login()
    # The flow checks the sidecar's health; give its model time to warm up.
    print(client.ensure_secmon_when_ready(args.sidecar, args.cameras, limit=300))
    if args.threshold is not None:
        client.set_threshold(args.threshold)
        print(f"secmon detection threshold set to {args.threshold}")
    assert client.token is not None
    with open(args.token_file, "w", encoding="utf-8") as f:
        f.write(client.token)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    config = commands.add_parser("write-config")
    config.add_argument("--config-dir", required=True, type=Path)
    config.add_argument("--cameras", required=True, type=Path)
    config.add_argument("--port", required=True, type=int)
    run = commands.add_parser("setup")
    run.add_argument("--url", required=True)
    run.add_argument("--sidecar", required=True)
    run.add_argument("--cameras", required=True)
    run.add_argument("--token-file", required=True)
    run.add_argument("--threshold", type=float, help="set this detection threshold option")
    args = parser.parse_args()
    try:
        if args.command == "write-config":
            if not write_config(args.config_dir, args.cameras, args.port):
                print(
                    f"bootstrap: keeping your {args.config_dir / 'configuration.yaml'}"
                    " (delete it to get a fresh one from dev/configuration.yaml.in)",
                    file=sys.stderr,
                )
        else:
            setup(args)
    except SetupError as err:
        raise SystemExit(str(err)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
