"""Prepare the dev Home Assistant started by scripts/develop, over its REST API.

Waits for HA, onboards it once (user `dev`, password `dev`), and adds the secmon entry through
the real config flow if there is none. Prints an access token for curl.
"""

from __future__ import annotations

import argparse
import sys

from ha_setup import HomeAssistantClient, SetupError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--sidecar", required=True)
    parser.add_argument("--cameras", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--threshold", type=float, help="set this detection threshold option")
    args = parser.parse_args()

    client = HomeAssistantClient(args.url)
    try:
        client.wait_up(limit=300)
        client.onboard_or_login()
        # The flow checks the sidecar's health; give its model time to warm up.
        print(client.ensure_secmon_when_ready(args.sidecar, args.cameras, limit=300))
        if args.threshold is not None:
            client.set_threshold(args.threshold)
            print(f"secmon detection threshold set to {args.threshold}")
    except SetupError as err:
        raise SystemExit(str(err)) from None
    assert client.token is not None
    with open(args.token_file, "w", encoding="utf-8") as f:
        f.write(client.token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
