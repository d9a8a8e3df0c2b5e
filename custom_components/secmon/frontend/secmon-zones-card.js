// secmon zones card: a camera's zones drawn over its latest picture; admins draw, move and
// delete them and save (secmon/zones/set), others see them read-only.
// A plain web component (no build step); served and registered by the secmon integration.
// Zone and camera names are only ever set as textContent or input values.

const KIND_COLOURS = {
  entry_point: "#e53935",
  driveway: "#fb8c00",
  yard: "#43a047",
  public: "#1e88e5",
  other: "#8e24aa",
};
const KIND_NAMES = {
  entry_point: "Entry point",
  driveway: "Driveway",
  yard: "Yard",
  public: "Public (sidewalk, street)",
  other: "Other",
};
const SVG = "http://www.w3.org/2000/svg";
// A card opened while its entry reloads (after a save, at start) asks again a few times.
const LOAD_TRIES = 10;
const LOAD_RETRY_MS = 2000;

const h = (tag, props = {}, children = []) => {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "style") el.style.cssText = value;
    else if (key === "value") el.value = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value);
  }
  for (const child of [].concat(children)) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
};

const svg = (tag, attrs = {}) => {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  return el;
};

const colour = (kind) => KIND_COLOURS[kind] || KIND_COLOURS.other;
const round = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
const copyZones = (zones) => (zones || []).map((z) => ({ ...z, points: z.points.map((p) => [...p]) }));
const centre = (points) => [
  points.reduce((s, p) => s + p[0], 0) / points.length,
  points.reduce((s, p) => s + p[1], 0) / points.length,
];

const STYLE = `
  :host { display: block; }
  ha-card { overflow: hidden; }
  .header { padding: 12px 16px 4px; font-size: 1.2em; font-weight: 500; }
  .message { padding: 8px 16px; color: var(--secondary-text-color); }
  .error { color: var(--error-color, #db4437); }
  .stage { position: relative; margin: 8px 16px; user-select: none;
    background: var(--secondary-background-color); min-height: 120px; }
  .stage.drawing { cursor: crosshair; touch-action: none; }
  .stage img { display: block; width: 100%; height: auto; }
  .stage .noimage { aspect-ratio: 16 / 9; display: flex; align-items: center; justify-content: center;
    color: var(--secondary-text-color); }
  .overlay { position: absolute; inset: 0; width: 100%; height: 100%; overflow: visible; }
  .overlay polygon, .overlay polyline { vector-effect: non-scaling-stroke; stroke-width: 2; }
  .overlay polygon.selected { stroke-width: 4; }
  .label { position: absolute; transform: translate(-50%, -50%); pointer-events: none;
    color: #fff; font-size: 0.8em; font-weight: 500; padding: 0 4px; border-radius: 4px;
    white-space: nowrap; max-width: 45%; overflow: hidden; text-overflow: ellipsis; }
  .vertex { position: absolute; width: 16px; height: 16px; margin: -8px 0 0 -8px; border-radius: 50%;
    background: #fff; border: 2px solid var(--vertex-colour); box-sizing: border-box; cursor: grab;
    touch-action: none; }
  .vertex.first { width: 20px; height: 20px; margin: -10px 0 0 -10px; }
  .zones { display: flex; flex-direction: column; gap: 6px; padding: 4px 16px; }
  .zone { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; padding: 4px;
    border-left: 4px solid var(--zone-colour); border-radius: 2px; }
  .zone.selected { background: var(--secondary-background-color); }
  .zone input.name { flex: 1 1 120px; min-width: 0; }
  .zone input.priority { width: 4em; }
  .zone .kind-text { color: var(--secondary-text-color); }
  .actions { display: flex; flex-wrap: wrap; gap: 8px; padding: 8px 16px 12px; }
  .actions:empty { display: none; }
  .status { padding: 0 16px 12px; color: var(--secondary-text-color); min-height: 1em; }
  button { font: inherit; padding: 6px 12px; border-radius: 4px; border: 1px solid var(--divider-color);
    background: var(--card-background-color); color: var(--primary-text-color); cursor: pointer; }
  button.primary { background: var(--primary-color); color: var(--text-primary-color, #fff); border: none; }
  button:disabled { opacity: 0.5; cursor: default; }
  button.confirm-delete { background: var(--error-color, #db4437); color: #fff; border: none; }
  .zone .confirm-text { color: var(--error-color, #db4437); }
  input, select { font: inherit; padding: 4px; }
`;

// The first secmon camera (by name) when the card names none; its entry when it names only the camera.
const findCamera = async (hass, config) => {
  if (config.camera_id && config.entry_id) return { camera_id: config.camera_id, config_entry_id: config.entry_id };
  const page = await hass.callWS({ type: "secmon/events/list", limit: 1 });
  const cameras = page.cameras || [];
  return config.camera_id ? cameras.find((c) => c.camera_id === config.camera_id) : cameras[0];
};

class SecmonZonesCard extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._data = null;
    this._zones = [];
    this._dirty = false;
    this._drawing = null;
    this._selected = null;
    this._drag = null;
    this._error = null;
    this._status = "";
    this._saving = false;
    // The camera's entity_picture last asked for (it changes with each new frame), and the
    // picture shown: the same frame without the saved zones outlined (the card draws the
    // zones itself, so the edited outlines never sit next to stale saved ones).
    this._picture = null;
    this._pictureBlob = null;
    this._confirmDelete = null;
  }

  disconnectedCallback() {
    if (this._pictureBlob) URL.revokeObjectURL(this._pictureBlob);
    this._pictureBlob = null;
    this._picture = null;
  }

  static getConfigElement() {
    return document.createElement("secmon-zones-card-editor");
  }

  static getStubConfig() {
    return {};
  }

  setConfig(config) {
    const changed = config.camera_id !== this._config?.camera_id || config.entry_id !== this._config?.entry_id;
    this._config = { ...config };
    if (changed && this._hass) this._load();
    this._render();
  }

  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) this._load();
    else this._updatePicture();
  }

  get hass() {
    return this._hass;
  }

  getCardSize() {
    return 6 + this._zones.length;
  }

  get _canEdit() {
    return Boolean(this._data && this._data.can_edit);
  }

  async _load(tries = LOAD_TRIES) {
    this._data = null;
    this._error = null;
    this._render();
    try {
      const camera = await findCamera(this._hass, this._config);
      if (!camera && tries > 1) {
        setTimeout(() => this._load(tries - 1), LOAD_RETRY_MS);
        return;
      }
      if (!camera) {
        this._error = this._config.camera_id
          ? `secmon has no camera ${this._config.camera_id}.`
          : "secmon has no camera yet.";
        this._render();
        return;
      }
      this._data = await this._hass.callWS({
        type: "secmon/zones/get",
        entry_id: camera.config_entry_id,
        camera_id: camera.camera_id,
      });
      this._zones = copyZones(this._data.zones);
      this._dirty = false;
      this._drawing = null;
      this._selected = null;
    } catch (err) {
      if (err.translation_key === "entry_not_loaded" && tries > 1) {
        setTimeout(() => this._load(tries - 1), LOAD_RETRY_MS);
        return;
      }
      this._error = `Could not load the zones: ${err.message || err}`;
    }
    this._picture = null;
    this._render();
  }

  _pictureUrl() {
    const entityId = this._data?.entity_id;
    const state = entityId && this._hass?.states?.[entityId];
    return state?.attributes?.entity_picture || null;
  }

  _updatePicture() {
    const key = this._pictureUrl();
    if (!this._data || key === this._picture) return;
    this._picture = key;
    if (!key) {
      this._showPicture(null);
      return;
    }
    this._fetchPicture(key);
  }

  async _fetchPicture(key) {
    let url = null;
    try {
      const response = await this._hass.fetchWithAuth(this._data.plain_picture_path);
      if (response.ok) url = URL.createObjectURL(await response.blob());
    } catch (_err) {
      // Shown as no picture; the next frame tries again.
    }
    if (key !== this._picture) {
      if (url) URL.revokeObjectURL(url);
      return;
    }
    this._showPicture(url);
  }

  _showPicture(url) {
    if (this._pictureBlob) URL.revokeObjectURL(this._pictureBlob);
    this._pictureBlob = url;
    const img = this.shadowRoot.querySelector(".stage img");
    if (img && url) img.src = url;
    else this._render();
  }

  _point(ev) {
    const rect = this._stage.getBoundingClientRect();
    return [round((ev.clientX - rect.left) / rect.width), round((ev.clientY - rect.top) / rect.height)];
  }

  _changed() {
    this._dirty = true;
    this._status = "";
  }

  _onStageClick(ev) {
    if (!this._drawing || ev.target.classList.contains("vertex")) return;
    if (this._drawing.points.length >= (this._data.max_points || 64)) return;
    this._drawing.points.push(this._point(ev));
    this._renderOverlay();
    this._renderActions();
  }

  _startDraw() {
    this._drawing = { points: [] };
    this._selected = null;
    this._status = "Click the picture to place the zone's corners, then close the zone.";
    this._render();
  }

  _closeDrawing() {
    const points = this._drawing?.points || [];
    if (points.length < 3) return;
    const taken = new Set(this._zones.map((z) => z.name));
    let n = this._zones.length + 1;
    while (taken.has(`Zone ${n}`)) n += 1;
    this._zones.push({ name: `Zone ${n}`, kind: "other", priority: 1, points });
    this._selected = this._zones.length - 1;
    this._drawing = null;
    this._changed();
    this._status = "Name the zone, choose its kind, then save.";
    this._render();
    const input = this.shadowRoot.querySelector(`.zone[data-index="${this._selected}"] input.name`);
    if (input) {
      input.focus();
      input.select();
    }
  }

  _onVertexDown(ev, zoneIndex, pointIndex) {
    ev.stopPropagation();
    ev.preventDefault();
    if (this._drawing) {
      if (pointIndex === 0 && zoneIndex === null) this._closeDrawing();
      return;
    }
    this._drag = { zoneIndex, pointIndex, pointerId: ev.pointerId };
    this._selected = zoneIndex;
    try {
      this._stage.setPointerCapture(ev.pointerId);
    } catch (_err) {
      // The pointer is gone already: the drag ends with it.
    }
  }

  _onPointerMove(ev) {
    if (!this._drag || ev.pointerId !== this._drag.pointerId) return;
    this._zones[this._drag.zoneIndex].points[this._drag.pointIndex] = this._point(ev);
    this._changed();
    this._renderOverlay();
  }

  _onPointerUp(ev) {
    if (!this._drag || ev.pointerId !== this._drag.pointerId) return;
    this._drag = null;
    this._render();
  }

  _delete(index) {
    this._zones.splice(index, 1);
    this._selected = null;
    this._confirmDelete = null;
    this._changed();
    this._render();
  }

  _askDelete(index) {
    this._confirmDelete = index;
    this._render();
  }

  _cancel() {
    this._confirmDelete = null;
    this._zones = copyZones(this._data.zones);
    this._drawing = null;
    this._selected = null;
    this._dirty = false;
    this._status = "";
    this._error = null;
    this._render();
  }

  async _save() {
    this._saving = true;
    this._error = null;
    this._render();
    try {
      const result = await this._hass.callWS({
        type: "secmon/zones/set",
        entry_id: this._data.entry_id,
        camera_id: this._data.camera_id,
        zones: this._zones.map((z) => ({
          name: z.name,
          kind: z.kind,
          priority: Number(z.priority),
          points: z.points,
        })),
      });
      this._data = { ...this._data, zones: result.zones };
      this._zones = copyZones(result.zones);
      this._dirty = false;
      this._selected = null;
      this._status = "Saved.";
    } catch (err) {
      this._error = `Not saved: ${err.message || err}`;
    }
    this._saving = false;
    this._render();
  }

  _renderOverlay() {
    const overlay = this._overlay;
    if (!overlay) return;
    const layer = svg("svg", { class: "overlay", viewBox: "0 0 1 1", preserveAspectRatio: "none" });
    const html = [];
    this._zones.forEach((zone, index) => {
      const c = colour(zone.kind);
      layer.append(svg("polygon", {
        points: zone.points.map((p) => p.join(",")).join(" "),
        fill: c,
        "fill-opacity": "0.25",
        stroke: c,
        class: index === this._selected ? "selected" : "",
        "data-name": zone.name,
      }));
      const [x, y] = centre(zone.points);
      html.push(h("div", {
        class: "label",
        text: zone.name,
        style: `left:${x * 100}%;top:${y * 100}%;background:${c}`,
      }));
      if (this._canEdit && !this._drawing) {
        zone.points.forEach((p, pointIndex) => {
          html.push(h("div", {
            class: "vertex",
            style: `left:${p[0] * 100}%;top:${p[1] * 100}%;--vertex-colour:${c}`,
            onpointerdown: (ev) => this._onVertexDown(ev, index, pointIndex),
          }));
        });
      }
    });
    if (this._drawing) {
      const points = this._drawing.points;
      layer.append(svg("polyline", {
        points: points.map((p) => p.join(",")).join(" "),
        fill: "none",
        stroke: "#ffeb3b",
        class: "drawing",
      }));
      points.forEach((p, pointIndex) => {
        html.push(h("div", {
          class: pointIndex === 0 ? "vertex first" : "vertex",
          style: `left:${p[0] * 100}%;top:${p[1] * 100}%;--vertex-colour:#ffeb3b`,
          onpointerdown: (ev) => this._onVertexDown(ev, null, pointIndex),
        }));
      });
    }
    overlay.replaceChildren(layer, ...html);
  }

  _renderActions() {
    const actions = this._actions;
    if (!actions) return;
    if (!this._canEdit) {
      actions.replaceChildren();
      return;
    }
    const buttons = [];
    if (this._drawing) {
      buttons.push(
        h("button", {
          class: "close-zone primary",
          text: "Close zone",
          disabled: this._drawing.points.length < 3 ? "" : null,
          onclick: () => this._closeDrawing(),
        }),
        h("button", { class: "stop-drawing", text: "Stop drawing", onclick: () => {
          this._drawing = null;
          this._status = "";
          this._render();
        } }),
      );
    } else {
      buttons.push(h("button", {
        class: "add-zone",
        text: "Add zone",
        disabled: this._zones.length >= (this._data.max_zones || 32) ? "" : null,
        onclick: () => this._startDraw(),
      }));
    }
    buttons.push(
      h("button", {
        class: "save primary",
        text: this._saving ? "Saving…" : "Save",
        disabled: !this._dirty || this._saving || this._drawing ? "" : null,
        onclick: () => this._save(),
      }),
      h("button", {
        class: "cancel",
        text: "Cancel",
        disabled: !this._dirty && !this._drawing ? "" : null,
        onclick: () => this._cancel(),
      }),
    );
    actions.replaceChildren(...buttons);
  }

  _zoneRow(zone, index) {
    const c = colour(zone.kind);
    const selected = index === this._selected;
    if (!this._canEdit) {
      return h("div", { class: "zone", "data-index": String(index), style: `--zone-colour:${c}` }, [
        h("span", { class: "name-text", text: zone.name }),
        h("span", { class: "kind-text", text: `${KIND_NAMES[zone.kind] || zone.kind} · priority ${zone.priority}` }),
      ]);
    }
    const kinds = (this._data.kinds || Object.keys(KIND_COLOURS)).map((kind) =>
      h("option", { value: kind, text: KIND_NAMES[kind] || kind, selected: kind === zone.kind ? "" : null }),
    );
    return h("div", {
      class: selected ? "zone selected" : "zone",
      "data-index": String(index),
      style: `--zone-colour:${c}`,
    }, [
      h("input", {
        class: "name",
        type: "text",
        "aria-label": "Zone name",
        value: zone.name,
        oninput: (ev) => {
          zone.name = ev.target.value;
          this._changed();
          this._renderOverlay();
          this._renderActions();
        },
        onfocus: () => {
          if (this._selected !== index) {
            this._selected = index;
            this._renderOverlay();
          }
        },
      }),
      h("select", {
        class: "kind",
        "aria-label": "Kind",
        onchange: (ev) => {
          zone.kind = ev.target.value;
          this._changed();
          this._render();
        },
      }, kinds),
      h("input", {
        class: "priority",
        type: "number",
        step: "1",
        "aria-label": "Priority",
        value: String(zone.priority),
        oninput: (ev) => {
          zone.priority = Number.parseInt(ev.target.value, 10) || 0;
          this._changed();
          this._renderActions();
        },
      }),
      ...(this._confirmDelete === index
        ? [
            h("span", { class: "confirm-text", text: `Delete “${zone.name}”?` }),
            h("button", { class: "confirm-delete", text: "Delete", onclick: () => this._delete(index) }),
            h("button", {
              class: "keep",
              text: "Keep",
              onclick: () => {
                this._confirmDelete = null;
                this._render();
              },
            }),
          ]
        : [h("button", { class: "delete", text: "Delete", onclick: () => this._askDelete(index) })]),
    ]);
  }

  _render() {
    if (!this._config) return;
    const title = this._config.title || (this._data ? `Zones · ${this._data.camera_name}` : "Zones");
    const parts = [h("style", { text: STYLE }), h("div", { class: "header", text: title })];
    if (!this._data) {
      parts.push(h("div", { class: this._error ? "message error" : "message", text: this._error || "Loading…" }));
      this.shadowRoot.replaceChildren(h("ha-card", {}, parts));
      this._stage = this._overlay = this._actions = null;
      return;
    }
    const picture = this._pictureBlob
      ? h("img", { src: this._pictureBlob, alt: this._data.camera_name, draggable: "false" })
      : h("div", { class: "noimage", text: this._pictureUrl() ? "Loading the picture…" : "No picture of this camera yet" });
    this._overlay = h("div", { class: "overlay" });
    this._stage = h("div", {
      class: this._drawing ? "stage drawing" : "stage",
      onclick: (ev) => this._onStageClick(ev),
      onpointermove: (ev) => this._onPointerMove(ev),
      onpointerup: (ev) => this._onPointerUp(ev),
      onpointercancel: (ev) => this._onPointerUp(ev),
    }, [picture, this._overlay]);
    this._actions = h("div", { class: "actions" });
    parts.push(
      this._stage,
      h("div", { class: "zones" }, this._zones.length
        ? this._zones.map((zone, index) => this._zoneRow(zone, index))
        : [h("div", { class: "message", text: this._canEdit ? "No zones yet: add one." : "No zones." })]),
      this._actions,
      h("div", { class: this._error ? "status error" : "status", text: this._error || this._status }),
    );
    this.shadowRoot.replaceChildren(h("ha-card", {}, parts));
    this._renderOverlay();
    this._renderActions();
    this._updatePicture();
  }
}

class SecmonZonesCardEditor extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._cameras = null;
  }

  setConfig(config) {
    this._config = { ...config };
    this._render();
  }

  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) {
      hass
        .callWS({ type: "secmon/events/list", limit: 1 })
        .then((page) => {
          this._cameras = page.cameras || [];
          this._render();
        })
        .catch(() => {
          this._cameras = [];
          this._render();
        });
    }
  }

  _changed(config) {
    this._config = config;
    this.dispatchEvent(new CustomEvent("config-changed", { detail: { config }, bubbles: true, composed: true }));
  }

  _render() {
    if (!this._config) return;
    const config = this._config;
    const cameras = (this._cameras || []).map((camera) =>
      h("label", { class: "camera" }, [
        h("input", {
          type: "radio",
          name: "camera",
          value: camera.camera_id,
          checked: camera.camera_id === config.camera_id ? "" : null,
          onchange: () =>
            this._changed({ ...this._config, camera_id: camera.camera_id, entry_id: camera.config_entry_id }),
        }),
        ` ${camera.name}`,
      ]),
    );
    this.shadowRoot.replaceChildren(
      h("style", { text: "label { display: block; margin: 6px 0; } input[type=text] { width: 100%; }" }),
      h("label", {}, [
        "Title",
        h("input", {
          type: "text",
          name: "title",
          value: config.title || "",
          onchange: (ev) => this._changed({ ...this._config, title: ev.target.value }),
        }),
      ]),
      h("div", {}, [
        h("div", { text: "Camera" }),
        ...(this._cameras === null ? [h("div", { text: "Loading cameras…" })] : cameras),
      ]),
    );
  }
}

const defineCards = () => {
  if (customElements.get("secmon-zones-card")) return;
  customElements.define("secmon-zones-card", SecmonZonesCard);
  customElements.define("secmon-zones-card-editor", SecmonZonesCardEditor);
  window.customCards = window.customCards || [];
  window.customCards.push({
    type: "secmon-zones-card",
    name: "secmon zones",
    description: "Draw a camera's zones on its latest picture.",
    preview: false,
  });
};

const whenFrontendStarted = (then) =>
  customElements.get("home-assistant") ? then() : setTimeout(() => whenFrontendStarted(then), 50);
whenFrontendStarted(defineCards);
