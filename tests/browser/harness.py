"""A real Home Assistant with secmon, a real sidecar and headless Chromium, for browser tests.

`HomeAssistantProcess` runs `hass -c` on a rendered copy of dev/configuration.yaml.in (what
scripts/develop gives a user), onboards it and adds secmon through its config flow
(dev/ha_setup.py, shared with scripts/develop). `Dashboard` wraps a logged-in Playwright page and
reads what a person sees: text, pictures, icons. Processes are stopped by PID.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Response

from dev.ha_setup import HomeAssistantClient, SetupError, write_config
from tests.integration.sidecar_process import free_port

REPO = Path(__file__).resolve().parents[2]
HASS = REPO / ".venv" / "bin" / "hass"
CHROMIUM = Path(os.environ.get("SECMON_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(
    os.environ.get("SECMON_BROWSER_ARTIFACTS", str(REPO / "build" / "browser-artifacts"))
)
# Generous: other suites share the machine's two cores.
START_TIMEOUT = 300.0
WAIT_TIMEOUT = 120.0
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Home Assistant log lines that mean the configuration or an install is wrong.
_BAD_START = re.compile(
    r"Attempting install of|Unable to install package|Setup failed for|recovery mode"
)


T = TypeVar("T")


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = WAIT_TIMEOUT, every: float = 0.5
) -> T:
    """Poll `probe` until it returns something truthy; fail saying `what` was awaited."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gave up after {timeout:.0f} s waiting for {what} (last: {last!r})"
            )
        time.sleep(every)


# A secmon card's visual editor (argument: the card's element name), given the page's hass: the
# camera names it offers.
JS_EDITOR_CAMERAS = """async (card) => {
  const editor = customElements.get(card).getConfigElement();
  editor.setConfig({type: 'custom:' + card});
  editor.hass = document.querySelector('home-assistant').hass;
  for (let i = 0; i < 200; i++) {
    const labels = [...editor.shadowRoot.querySelectorAll('label.camera')];
    if (labels.length) return labels.map((l) => l.textContent.trim());
    await new Promise((r) => setTimeout(r, 100));
  }
  return [];
}"""


class HomeAssistantProcess:
    """`hass -c` on a private config directory and loopback port."""

    def __init__(self, workdir: Path, camera_root: Path) -> None:
        """Prepare a config directory under `workdir` watching `camera_root`."""
        self.workdir = workdir
        self.camera_root = camera_root
        self.config_dir = workdir / "config"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output_path = workdir / "hass.out"
        self.client = HomeAssistantClient(self.url)
        self.token = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Home Assistant's own log file."""
        return self.config_dir / "home-assistant.log"

    def start(self) -> None:
        """Start hass; returns at once (see `set_up` for the rest)."""
        if not HASS.exists():
            raise RuntimeError(f"{HASS} is missing; run scripts/setup")
        write_config(self.config_dir, self.camera_root, self.port)
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            # Every requirement comes from scripts/setup: an install at run time must fail loudly.
            "UV_OFFLINE": "1",
            "UV_NO_CACHE": "1",
            "PIP_NO_INDEX": "1",
        }
        env.pop("PYTHONPATH", None)
        with self.output_path.open("ab") as out:
            self.process = subprocess.Popen(
                [str(HASS), "-c", str(self.config_dir)],
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process is not None and self.process.poll() is None

    def set_up(self, sidecar_address: str, detection_threshold: float | None) -> None:
        """Onboard, make a long-lived token, add secmon through its config flow."""
        try:
            self.client.wait_up(START_TIMEOUT, alive=self.alive)
            self.check_start()
            self.client.onboard_or_login()
            self.token = self.client.long_lived_token("secmon browser tests")
            self.client.token = self.token
            self.client.ensure_secmon_when_ready(
                sidecar_address, str(self.camera_root), limit=START_TIMEOUT, check=self.check_start
            )
            if detection_threshold is not None:
                self.client.set_threshold(detection_threshold)
            wait_for(
                "Home Assistant to report RUNNING",
                lambda: self.client.request("GET", "/api/config")["state"] == "RUNNING",
                timeout=START_TIMEOUT,
            )
        except (SetupError, AssertionError, OSError) as err:
            raise RuntimeError(f"Home Assistant set-up failed: {err}\n{self.logs()}") from err
        self.check_start()

    def check_start(self) -> None:
        """Raise if the log shows a package install, a failed set-up or recovery mode."""
        if bad := [line for line in self.log_lines() if _BAD_START.search(line)]:
            raise RuntimeError("Home Assistant did not start cleanly:\n" + "\n".join(bad[:20]))

    def states(self) -> dict[str, dict[str, Any]]:
        """Every entity's state, by entity id."""
        return {s["entity_id"]: s for s in self.client.request("GET", "/api/states")}

    def log_lines(self) -> list[str]:
        """Home Assistant's log so far."""
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def logs(self, tail: int = 8000) -> str:
        """The tail of the log and of the process output."""
        out = ""
        with suppress(OSError):
            out = self.output_path.read_text(errors="replace")[-tail:]
        log = "\n".join(self.log_lines())[-tail:]
        return f"--- home-assistant.log ---\n{log}\n--- output ---\n{out}"

    def stop(self) -> None:
        """SIGTERM (Home Assistant shuts down cleanly), SIGKILL if it does not go."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None


def add_dashboard(
    client: HomeAssistantClient, url_path: str, cards: list[dict[str, Any]], title: str = ""
) -> str:
    """Create (or overwrite) a storage-mode dashboard with one view of `cards`; its URL path.

    `url_path` must contain a hyphen (Home Assistant's rule for dashboards).
    """
    title = title or url_path
    dashboards = client.ws({"type": "lovelace/dashboards/list"})
    if not any(d["url_path"] == url_path for d in dashboards):
        client.ws(
            {
                "type": "lovelace/dashboards/create",
                "url_path": url_path,
                "title": title,
                "mode": "storage",
                "show_in_sidebar": True,
                "require_admin": False,
            }
        )
    client.ws(
        {
            "type": "lovelace/config/save",
            "url_path": url_path,
            "config": {"title": title, "views": [{"title": title, "path": "main", "cards": cards}]},
        }
    )
    return f"/{url_path}/main"


def secmon_devices(client: HomeAssistantClient) -> dict[str, list[dict[str, Any]]]:
    """secmon's devices by name, each with its entities (`entity_id`, `name`, `domain`, flags).

    An entity's `name` is what a dashboard row shows: its own name, or the device's name for
    the device's main entity (a camera).
    """
    devices, entities = client.ws_many(
        [{"type": "config/device_registry/list"}, {"type": "config/entity_registry/list"}]
    )
    names = {
        d["id"]: d["name_by_user"] or d["name"]
        for d in devices
        if any(domain == "secmon" for domain, _ in d["identifiers"])
    }
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in names.values()}
    for entity in entities:
        if entity["platform"] != "secmon" or entity["device_id"] not in names:
            continue
        device = names[entity["device_id"]]
        found[device].append(
            {
                "entity_id": entity["entity_id"],
                "domain": entity["entity_id"].split(".", 1)[0],
                "name": entity["name"] or entity["original_name"] or device,
                "primary": entity["entity_category"] is None
                and entity["hidden_by"] is None
                and entity["disabled_by"] is None,
            }
        )
    return found


def write_jpeg(path: Path, size: tuple[int, int] = (640, 480)) -> None:
    """A real JPEG, like a camera's upload: a scene with a few shapes, different for every path
    (secmon skips an image whose content it has seen before)."""
    from PIL import Image, ImageDraw  # only the tests that drop images need it

    rng = random.Random(str(path))
    image = Image.new("RGB", size, (88, 120, 160))
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.rectangle((0, height * 2 // 3, width, height), fill=(70, 90, 60))
    for _ in range(4):
        x, y = rng.randrange(width - 120), rng.randrange(height - 160)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x, y, x + rng.randrange(40, 120), y + rng.randrange(60, 160)), fill=colour)
    draw.ellipse((width // 12, height // 12, width // 5, height // 5), fill=(250, 230, 120))
    draw.text((10, height - 20), path.name, fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=90)


# Walks the composed tree (shadow roots included), the way a person sees the page.
_JS_WALK = """
const walk = (node, visit) => {
  visit(node);
  if (node.shadowRoot) walk(node.shadowRoot, visit);
  for (const child of node.children || []) walk(child, visit);
};
const shown = (el) => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
  && el.getBoundingClientRect().width > 0 && el.getBoundingClientRect().height > 0;
// Visible text nodes under root: {text, x, y (centre), parent}.
const textPieces = (root) => {
  const pieces = [];
  walk(root, (node) => {
    if (node.localName === 'style' || node.localName === 'script') return;
    for (const child of node.childNodes || []) {
      if (child.nodeType !== Node.TEXT_NODE) continue;
      const text = child.textContent.replace(/\\s+/g, ' ').trim();
      const parent = child.parentElement || node.host || null;
      if (!text || !parent || !shown(parent)) continue;
      const range = document.createRange();
      range.selectNodeContents(child);
      const rect = range.getBoundingClientRect();
      if (rect.width === 0 && rect.height === 0) continue;
      pieces.push({text, x: rect.left, y: rect.top + rect.height / 2, parent});
    }
  });
  return pieces;
};
// Pieces grouped into rows (centres within 8 px), rows top to bottom, each left to right.
const rows = (pieces) => {
  const sorted = [...pieces].sort((a, b) => a.y - b.y);
  const result = [];
  for (const piece of sorted) {
    const row = result[result.length - 1];
    if (row && Math.abs(row[0].y - piece.y) < 8) row.push(piece);
    else result.push([piece]);
  }
  return result.map((row) => row.sort((a, b) => a.x - b.x));
};
const cardOf = (el) => {
  for (let node = el; node; node = node.parentElement || node.getRootNode().host) {
    if (node.localName === 'ha-card') return node;
  }
  return null;
};
"""

# Visible text as a person reads it: one line per row of a card (or of the page outside cards),
# cards in page order (top to bottom, then left to right).
_JS_TEXT = (
    "() => {"
    + _JS_WALK
    + """
  const groups = new Map();
  for (const piece of textPieces(document)) {
    const card = cardOf(piece.parent);
    if (!groups.has(card)) groups.set(card, []);
    groups.get(card).push(piece);
  }
  const place = (card) => card ? card.getBoundingClientRect() : {top: -1e9, left: -1e9};
  const cards = [...groups.keys()].sort(
    (a, b) => place(a).top - place(b).top || place(a).left - place(b).left);
  return cards.flatMap(
    (card) => rows(groups.get(card)).map((row) => row.map((p) => p.text).join(' ')));
}"""
)

# Pictures a person would see as broken: an <img> that loaded nothing, or a card image that
# Home Assistant replaced with its broken-image placeholder.
_JS_IMAGES = (
    "() => {"
    + _JS_WALK
    + """
  const images = [];
  walk(document, (node) => {
    if (node.localName === 'img' && node.getAttribute('src') && shown(node)) {
      images.push({src: node.currentSrc || node.src, complete: node.complete,
                   naturalWidth: node.naturalWidth,
                   host: node.getRootNode().host?.localName || ''});
    }
    if (node.id === 'brokenImage' && shown(node)) {
      images.push({src: '(placeholder)', complete: true, naturalWidth: 0,
                   host: node.getRootNode().host?.localName || ''});
    }
  });
  return images;
}"""
)

# Every visible card: its element, its text pieces in reading order (shadow DOM included) and
# its pictures.
_JS_CARDS = (
    "() => {"
    + _JS_WALK
    + """
  const cards = [];
  walk(document, (node) => {
    if (node.localName !== 'ha-card' || !shown(node)) return;
    const images = [];
    walk(node, (inner) => {
      if (inner.localName === 'img' && inner.getAttribute('src')) {
        images.push({src: inner.currentSrc || inner.src, complete: inner.complete,
                     naturalWidth: inner.naturalWidth, shown: shown(inner)});
      }
    });
    const text = rows(textPieces(node)).flat().map((p) => p.text);
    cards.push({type: node.getRootNode().host?.localName || '', text, images});
  });
  return cards;
}"""
)

# Icons that render as nothing: an <ha-icon> with an icon name but no drawn path.
_JS_ICONS = (
    "() => {"
    + _JS_WALK
    + """
  const icons = [];
  walk(document, (node) => {
    if (node.localName !== 'ha-icon' || !node.icon || !shown(node)) return;
    const svg = node.shadowRoot && node.shadowRoot.querySelector('ha-svg-icon');
    const path = svg && (svg.path || svg.shadowRoot?.querySelector('path')?.getAttribute('d'));
    icons.push({icon: node.icon, drawn: Boolean(path)});
  });
  return icons;
}"""
)


# Every visible entity row (the generic row inside entities cards): its card's first text piece
# (a device's name on the auto-generated dashboard), its name, and what its badge draws: an icon
# with a path, or a picture.
_JS_ROWS = (
    "() => {"
    + _JS_WALK
    + """
  const drawnIcon = (root) => {
    let drawn = false, name = '';
    walk(root, (node) => {
      if (node.localName === 'ha-icon' && node.icon) name = node.icon;
      if (node.localName === 'ha-svg-icon') {
        const path = node.path || node.shadowRoot?.querySelector('path')?.getAttribute('d');
        if (path) drawn = true;
      }
    });
    return {drawn, name};
  };
  const found = [];
  walk(document, (node) => {
    if (node.localName !== 'hui-generic-entity-row' || !shown(node)) return;
    const root = node.shadowRoot;
    const badge = root && root.querySelector('state-badge');
    const info = root && root.querySelector('.info');
    const card = cardOf(node);
    const title = card ? textPieces(card)[0]?.text || '' : '';
    const picture = badge ? getComputedStyle(badge).backgroundImage : 'none';
    const icon = badge ? drawnIcon(badge) : {drawn: false, name: ''};
    found.push({card: title, name: info ? info.textContent.replace(/\\s+/g, ' ').trim() : '',
               icon: icon.name, drawn: icon.drawn || (picture && picture !== 'none')});
  });
  return found;
}"""
)


class Dashboard:
    """A logged-in page of the Home Assistant frontend, read as a person sees it."""

    def __init__(self, page: Page, base_url: str, name: str) -> None:
        """Wrap `page`; `name` prefixes its screenshots."""
        self.page = page
        self.base_url = base_url
        self.name = name
        self.console: list[str] = []
        self.failed_requests: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda err: self.console.append(f"pageerror: {err}"))
        page.on("response", self._on_response)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed_requests.append(f"HTTP {response.status} {response.url.split('?')[0]}")

    def open(self, path: str = "/lovelace/0") -> None:
        """Load a frontend path and wait until a dashboard view has rendered."""
        self.page.goto(self.base_url + path, wait_until="load", timeout=WAIT_TIMEOUT * 1000)
        self.page.locator("hui-view").first.wait_for(state="attached", timeout=WAIT_TIMEOUT * 1000)

    def text(self) -> list[str]:
        """The page's visible text (shadow DOM included), one line per row of a card."""
        lines: list[str] = self.page.evaluate(_JS_TEXT)
        return lines

    def wait_for_text(self, *needles: str, timeout: float = WAIT_TIMEOUT) -> list[str]:
        """Wait until every needle is part of the visible text; that text."""

        def probe() -> list[str] | None:
            lines = self.text()
            joined = "\n".join(lines)
            return lines if all(n in joined for n in needles) else None

        return wait_for(f"visible text {needles!r}", probe, timeout=timeout)

    def cards(self) -> list[dict[str, Any]]:
        """Visible cards: `type` (e.g. hui-entities-card), `text` (pieces), `images`."""
        cards: list[dict[str, Any]] = self.page.evaluate(_JS_CARDS)
        return cards

    def scroll_through(self) -> None:
        """Scroll from the top of the page to its bottom and back, a screen at a time, as a person
        looking for a card does: the frontend loads camera pictures only once they are on screen."""
        size = self.page.viewport_size or {"width": 800, "height": 800}
        self.page.mouse.move(size["width"] / 2, size["height"] / 2)
        for _ in range(40):
            self.page.mouse.wheel(0, size["height"] * 0.8)
            time.sleep(0.15)
        self.page.mouse.wheel(0, -1_000_000)
        time.sleep(0.3)

    def reload_until(
        self, what: str, probe: Callable[[], T | None], timeout: float = WAIT_TIMEOUT
    ) -> T:
        """Reload the page until `probe` holds (what a person does when something is missing)."""

        def reload_and_probe() -> T | None:
            if found := probe():
                return found
            self.page.reload(wait_until="load")
            self.page.locator("hui-view").first.wait_for(state="attached")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if found := probe():
                    return found
                time.sleep(1)
            return None

        return wait_for(what, reload_and_probe, timeout=timeout, every=0)

    def images(self, settle: float = 30.0) -> list[dict[str, Any]]:
        """Visible pictures, once every one has finished loading (or `settle` s passed)."""
        deadline = time.monotonic() + settle
        while True:
            images: list[dict[str, Any]] = self.page.evaluate(_JS_IMAGES)
            if all(i["complete"] for i in images) or time.monotonic() > deadline:
                return images
            time.sleep(0.5)

    def broken_images(self, settle: float = 30.0) -> list[str]:
        """Sources of visible pictures that show nothing."""
        return [
            f"{i['src']} (in {i['host'] or 'document'})"
            for i in self.images(settle)
            if not i["complete"] or i["naturalWidth"] == 0
        ]

    def missing_icons(self, settle: float = 10.0) -> list[str]:
        """Names of visible icons drawn as nothing.

        Icons load asynchronously: an icon counts as missing only if it is still empty after
        `settle` seconds.
        """
        deadline = time.monotonic() + settle
        while True:
            icons: list[dict[str, Any]] = self.page.evaluate(_JS_ICONS)
            missing = sorted({i["icon"] for i in icons if not i["drawn"]})
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.5)

    def entity_rows(self, settle: float = 10.0) -> list[dict[str, Any]]:
        """Visible entity rows: `card` (its card's title), `name`, `icon`, `drawn` (the badge
        shows an icon or a picture), once every badge is drawn (or `settle` s passed)."""
        deadline = time.monotonic() + settle
        while True:
            rows: list[dict[str, Any]] = self.page.evaluate(_JS_ROWS)
            if all(r["drawn"] for r in rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.5)

    def screenshot(self, label: str) -> Path:
        """Save a full-page screenshot under the artifacts folder; its path."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium, headless, with a fresh profile (Playwright makes a new one per launch)."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium (as root), "
            "or set SECMON_CHROMIUM to a Chromium binary"
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=list(CHROMIUM_ARGS),
        timeout=WAIT_TIMEOUT * 1000,
    )


def token_script(base_url: str, token: str) -> str:
    """JavaScript that logs the frontend in: the token in localStorage.hassTokens before load."""
    tokens = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 315360000,
        "hassUrl": base_url,
        "clientId": f"{base_url}/",
        "expires": 32503680000000,  # year 3000: the frontend never tries to refresh it
        "refresh_token": "",
    }
    return (
        f"if (location.origin === {json.dumps(base_url)}) "
        f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))});"
    )


@contextmanager
def dashboard_page(
    browser: Browser,
    home: HomeAssistantProcess,
    name: str,
    viewport: dict[str, int],
    token: str | None = None,
) -> Iterator[Dashboard]:
    """A fresh browser context at `viewport`, logged in to `home` (as the user of `token`; by
    default the harness's administrator)."""
    phone = viewport["width"] < 600
    context = browser.new_context(
        viewport={"width": viewport["width"], "height": viewport["height"]},
        device_scale_factor=2 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
        locale="en-US",
        timezone_id="UTC",
    )
    context.set_default_timeout(WAIT_TIMEOUT * 1000)
    context.add_init_script(token_script(home.url, token or home.token))
    try:
        yield Dashboard(context.new_page(), home.url, name)
    finally:
        context.close()


def reset_artifacts() -> None:
    """Empty the artifacts folder at the start of a session."""
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
