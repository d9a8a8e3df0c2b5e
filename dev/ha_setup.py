"""Set up a real Home Assistant for secmon: its configuration, onboarding, tokens and config flows.

Shared by scripts/develop (through dev/bootstrap.py) and the browser tests (tests/browser), so a
test sees the Home Assistant a developer gets. Runs in .venv (Home Assistant's runtime): the
REST calls use the standard library, the websocket calls aiohttp.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "dev" / "configuration.yaml.in"
USER = "dev"
PASSWORD = "dev"
# Files the configuration !includes; Home Assistant's UI editors write them.
INCLUDED_FILES = ("automations.yaml", "scripts.yaml", "scenes.yaml")


class SetupError(RuntimeError):
    """Home Assistant did not do what a setup step asked of it."""


def write_config(config_dir: Path, camera_root: Path, port: int) -> bool:
    """Render configuration.yaml from dev/configuration.yaml.in (only if there is none: a user's
    changes are kept across runs) and link the integration. True if it was written."""
    (config_dir / "custom_components").mkdir(parents=True, exist_ok=True)
    link = config_dir / "custom_components" / "secmon"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(REPO / "custom_components" / "secmon")
    for name in INCLUDED_FILES:
        path = config_dir / name
        if not path.exists():
            path.write_text("[]\n" if name == "automations.yaml" else "{}\n", encoding="utf-8")
    target = config_dir / "configuration.yaml"
    if target.exists():
        return False
    text = TEMPLATE.read_text(encoding="utf-8")
    text = text.replace("@CAMERAS@", str(camera_root)).replace("@HA_PORT@", str(port))
    target.write_text(text, encoding="utf-8")
    return True


class HomeAssistantClient:
    """A small client for one Home Assistant's HTTP and websocket APIs."""

    def __init__(self, base: str) -> None:
        """Talk to the Home Assistant at `base` (e.g. http://127.0.0.1:8123)."""
        self.base = base.rstrip("/")
        self.client_id = f"{self.base}/"
        self.token: str | None = None

    def request(self, method: str, path: str, body: Any = None, *, form: bool = False) -> Any:
        """One REST call; JSON in and out. Raises urllib.error.HTTPError on an error status."""
        data = None
        headers = {}
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read().decode()
        return json.loads(text) if text else None

    def wait_up(self, limit: float, *, alive: Callable[[], bool] | None = None) -> None:
        """Wait until the HTTP server answers; `alive()` returning False aborts the wait."""
        deadline = time.monotonic() + limit
        while True:
            try:
                self.request("GET", "/api/onboarding")
                return
            except urllib.error.HTTPError:
                return  # answering at all is enough (onboarding done -> 404)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if alive is not None and not alive():
                    raise SetupError(f"Home Assistant at {self.base} exited") from None
                if time.monotonic() > deadline:
                    raise SetupError(f"Home Assistant did not come up at {self.base}") from None
                time.sleep(1)

    def onboard_or_login(self) -> None:
        """Onboard a fresh instance (user, core config, analytics, integration) or log in."""
        steps: list[dict[str, Any]] = []
        try:
            steps = self.request("GET", "/api/onboarding")
        except urllib.error.HTTPError:
            steps = []
        done = {s["step"] for s in steps if s.get("done")}
        if steps and "user" not in done:
            reply = self.request(
                "POST",
                "/api/onboarding/users",
                {
                    "client_id": self.client_id,
                    "name": "Developer",
                    "username": USER,
                    "password": PASSWORD,
                    "language": "en",
                },
            )
            self._token_from_code(reply["auth_code"])
        else:
            self.login(USER, PASSWORD)
        for step, body in (
            ("core_config", {}),
            ("analytics", {}),
            ("integration", {"client_id": self.client_id, "redirect_uri": self.client_id}),
        ):
            if steps and step not in done:
                self.request("POST", f"/api/onboarding/{step}", body)

    def login(self, username: str, password: str) -> None:
        """Log in as `username` through the login flow, as the frontend does."""
        flow = self.request(
            "POST",
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.client_id,
            },
        )
        reply = self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": username, "password": password},
        )
        self._token_from_code(reply["result"])

    def _token_from_code(self, code: str) -> None:
        reply = self.request(
            "POST",
            "/auth/token",
            {"grant_type": "authorization_code", "code": code, "client_id": self.client_id},
            form=True,
        )
        self.token = reply["access_token"]

    def long_lived_token(self, name: str, lifespan_days: int = 3650) -> str:
        """A long-lived access token (what a user creates on their profile page)."""
        token = self.ws(
            {"type": "auth/long_lived_access_token", "client_name": name, "lifespan": lifespan_days}
        )
        assert isinstance(token, str)
        return token

    def ws(self, message: dict[str, Any]) -> Any:
        """One websocket API command; returns its result, raises SetupError with its error."""
        return self.ws_many([message])[0]

    def ws_many(self, messages: list[dict[str, Any]]) -> list[Any]:
        """Websocket API commands in order over one connection; their results.

        Runs its own event loop on a worker thread, so callers may have a loop of their own.
        """
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self._ws_many(messages)).result()

    async def _ws_many(self, messages: list[dict[str, Any]]) -> list[Any]:
        if self.token is None:
            raise SetupError("not logged in")
        url = self.base.replace("http", "ws", 1) + "/api/websocket"
        results = []
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.ws_connect(url) as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            reply = await ws.receive_json()
            if reply.get("type") != "auth_ok":
                raise SetupError(f"websocket authentication failed: {reply}")
            for number, message in enumerate(messages, start=1):
                await ws.send_json({**message, "id": number})
                while True:
                    reply = await ws.receive_json()
                    if reply.get("id") == number and reply.get("type") == "result":
                        break
                if not reply.get("success"):
                    raise SetupError(f"{message['type']} failed: {reply.get('error')}")
                results.append(reply.get("result"))
        return results

    def ensure_secmon(self, address: str, camera_root: str) -> str:
        """Add secmon through its config flow, or point an existing entry at `address`."""
        entries = self.request("GET", "/api/config/config_entries/entry?domain=secmon")
        if entries and entries[0]["title"] == f"Sidecar {address}":
            return f"secmon already configured ({entries[0]['title']})"
        if entries:  # configured for another sidecar port: point it here (reconfigure flow)
            flow = self.request(
                "POST",
                "/api/config/config_entries/flow",
                {"handler": "secmon", "entry_id": entries[0]["entry_id"]},
            )
            result = self.request(
                "POST",
                f"/api/config/config_entries/flow/{flow['flow_id']}",
                {"address": address, "camera_root": camera_root},
            )
            if result.get("type") != "abort" or result.get("reason") != "reconfigure_successful":
                raise SetupError(f"secmon reconfigure flow did not finish: {result}")
            return f"secmon reconfigured for Sidecar {address}"
        flow = self.request("POST", "/api/config/config_entries/flow", {"handler": "secmon"})
        result = self.request(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"address": address, "camera_root": camera_root},
        )
        if result.get("type") != "create_entry":
            raise SetupError(f"secmon config flow did not finish: {result}")
        return f"secmon configured through the config flow ({result['title']})"

    def ensure_secmon_when_ready(
        self,
        address: str,
        camera_root: str,
        limit: float,
        *,
        check: Callable[[], None] | None = None,
    ) -> str:
        """ensure_secmon, retried while the sidecar warms up (the flow checks its health).

        `check()` runs before each retry; it raises to give up early.
        """
        deadline = time.monotonic() + limit
        while True:
            try:
                return self.ensure_secmon(address, camera_root)
            except urllib.error.HTTPError as err:
                raise SetupError(f"secmon setup failed: {err} {err.read().decode()}") from None
            except SetupError:
                if time.monotonic() > deadline:
                    raise
                if check is not None:
                    check()
                time.sleep(2)

    def finish_context_step(self, result: dict[str, Any]) -> dict[str, Any]:
        """The options' second step (the home's context for the AI), left as it is."""
        if result.get("type") == "form" and result.get("step_id") == "context":
            response: dict[str, Any] = self.request(
                "POST", f"/api/config/config_entries/options/flow/{result['flow_id']}", {}
            )
            return response
        return result

    def set_threshold(self, threshold: float) -> None:
        """Set the detection threshold through the options flow (other options: defaults)."""
        [entry] = self.request("GET", "/api/config/config_entries/entry?domain=secmon")
        flow = self.request(
            "POST", "/api/config/config_entries/options/flow", {"handler": entry["entry_id"]}
        )
        defaults = {
            field["name"]: field.get("default")
            for field in flow["data_schema"]
            if field.get("default") is not None
        }
        result = self.request(
            "POST",
            f"/api/config/config_entries/options/flow/{flow['flow_id']}",
            {**defaults, "detection_threshold": threshold},
        )
        result = self.finish_context_step(result)
        if result.get("type") != "create_entry":
            raise SetupError(f"secmon options flow did not finish: {result}")
