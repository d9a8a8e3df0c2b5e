// secmon timeline card: the security events of chosen cameras, newest first, live.
// A plain web component (no build step); served and registered by the secmon integration.
// Text from events (summaries, reasoning, captions, plates, camera names) is only ever set as
// textContent.

const LEVEL_COLOURS = {
  low: "#43a047",
  medium: "#fb8c00",
  high: "#e53935",
  critical: "#8e24aa",
};
const DEFAULT_PAGE = 10;

const h = (tag, props = {}, children = []) => {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "style") el.style.cssText = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value);
  }
  for (const child of [].concat(children)) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
};

// What the image models saw: one line per identified object, e.g.
// "person 7 · 3 visits today · also seen at Back Yard 14:02".
const identityLines = (hass, objects) =>
  (objects || [])
    .filter((obj) => obj.identity)
    .map((obj) => {
      const parts = [obj.identity];
      if (obj.visits_24h > 1) parts.push(`${obj.visits_24h} visits today`);
      const seen = (obj.also_seen || [])
        .map((m) => `${m.camera_name || m.camera_id}${m.seen_at ? ` ${formatTime(hass, m.seen_at)}` : ""}`);
      if (seen.length) parts.push(`also seen at ${seen.join(", ")}`);
      return parts.join(" · ");
    });

const plateText = (plate) => (plate.known ? `${plate.plate} (${plate.known})` : plate.plate);

const formatTime = (hass, iso, fallbackSeconds) => {
  const date = iso ? new Date(iso) : new Date(fallbackSeconds * 1000);
  const locale = hass?.locale?.language || navigator.language;
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay
    ? date.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : date.toLocaleString(locale, {
        month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
      });
};

const labelText = (labels) =>
  Object.entries(labels || {}).map(([label, count]) => (count > 1 ? `${label} ×${count}` : label));

// An event is "unusual" from this anomaly up: the sidecar's anomaly is 1 / (1 + batches a week with
// the label at this camera and hour of the week), so 0.67 is under one such batch in two weeks (its
// baseline calls that "rare"). The sidecar sends 0 while its baseline is still learning.
const UNUSUAL_ANOMALY = 0.67;
const isUnusual = (event) => Number(event.anomaly || 0) >= UNUSUAL_ANOMALY;
const unusualTitle = (event) =>
  `Unusual here at this hour (anomaly ${Number(event.anomaly).toFixed(2)}, ${Math.round(event.baseline_days || 0)} days of history)`;

const contextChips = (event) => [
  ...(isUnusual(event) ? [h("span", { class: "chip unusual", text: "unusual", title: unusualTitle(event) })] : []),
  ...(event.zones || []).map((z) => h("span", { class: "chip zone", text: z, title: "zone" })),
];

const STYLE = `
  :host { display: block; }
  ha-card { overflow: hidden; }
  .header { display: flex; align-items: center; justify-content: space-between;
    padding: 12px 16px 4px; font-size: 1.2em; font-weight: 500; }
  .live { font-size: 0.7em; color: var(--secondary-text-color); }
  .empty { padding: 16px; color: var(--secondary-text-color); }
  .events { display: flex; flex-direction: column; }
  .event { display: flex; gap: 12px; padding: 8px 16px; cursor: pointer; align-items: stretch;
    border-left: 4px solid var(--level-colour); border-bottom: 1px solid var(--divider-color); }
  .event:hover { background: var(--secondary-background-color); }
  .thumb { width: 128px; height: 72px; flex: none; object-fit: cover; border-radius: 4px;
    background: var(--secondary-background-color); }
  .thumb.none { display: flex; align-items: center; justify-content: center; font-size: 0.8em;
    color: var(--secondary-text-color); }
  .body { flex: 1; min-width: 0; display: flex; flex-direction: column; gap: 2px; }
  .top { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
  .score { background: var(--level-colour); color: #fff; border-radius: 10px; padding: 0 8px;
    font-size: 0.85em; font-weight: 500; white-space: nowrap; }
  .camera { font-weight: 500; }
  .time { color: var(--secondary-text-color); font-size: 0.85em; margin-left: auto; }
  .summary { overflow: hidden; text-overflow: ellipsis; display: -webkit-box;
    -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
  .chips { display: flex; gap: 4px; flex-wrap: wrap; }
  .chip { font-size: 0.75em; border-radius: 8px; padding: 0 6px;
    background: var(--secondary-background-color); color: var(--primary-text-color); }
  .chip.zone { background: none; border: 1px solid var(--divider-color); }
  .chip.unusual { background: var(--warning-color, #ffa600); color: #000; font-weight: 500; }
  .more { display: block; margin: 8px auto 12px; }
  button { font: inherit; cursor: pointer; border-radius: 4px; padding: 6px 12px;
    border: 1px solid var(--divider-color); background: var(--card-background-color);
    color: var(--primary-text-color); }
  button:disabled { cursor: default; opacity: 0.5; }
  .overlay { position: fixed; inset: 0; background: rgba(0, 0, 0, 0.6); z-index: 10;
    display: flex; align-items: center; justify-content: center; }
  .dialog { background: var(--card-background-color); color: var(--primary-text-color);
    width: min(900px, 96vw); max-height: 92vh; overflow: auto; border-radius: 8px;
    border-top: 6px solid var(--level-colour); }
  .dialog .title { display: flex; gap: 8px; align-items: center; padding: 12px 16px; }
  .dialog .title .close { margin-left: auto; }
  .dialog .full { width: 100%; max-height: 60vh; object-fit: contain; display: block;
    background: #000; }
  .dialog .text { padding: 8px 16px; display: flex; flex-direction: column; gap: 8px; }
  .reasoning { white-space: pre-wrap; color: var(--secondary-text-color); }
  .caption { font-style: italic; }
  .identity { color: var(--secondary-text-color); font-size: 0.9em; }
  .frames { display: flex; gap: 4px; overflow-x: auto; padding: 0 16px 8px; }
  .frames img { height: 72px; border-radius: 4px; }
  .feedback { display: flex; gap: 8px; padding: 8px 16px 16px; align-items: center;
    flex-wrap: wrap; }
  .feedback .status { color: var(--secondary-text-color); font-size: 0.9em; }
  @media (max-width: 600px) {
    .event { padding: 8px; gap: 8px; }
    .thumb { width: 96px; height: 64px; }
    .time { margin-left: 0; width: 100%; }
    .dialog { width: 100vw; max-height: 100vh; border-radius: 0; }
  }
`;

// The classes are made once Home Assistant's frontend has started: it replaces HTMLElement and the
// element registry (scoped registries), and an element defined before that is lost to it.
const defineCards = () => {
class SecmonTimelineCard extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._events = [];
    this._nextBefore = null;
    this._loaded = false;
    this._loading = false;
    this._error = null;
    this._unsubscribe = null;
    this._selected = null;
    this._feedbackStatus = "";
  }

  static getConfigElement() {
    return document.createElement("secmon-timeline-card-editor");
  }

  static getStubConfig() {
    return { title: "Security events" };
  }

  setConfig(config) {
    if (config.cameras !== undefined && !Array.isArray(config.cameras)) {
      throw new Error("cameras must be a list of camera ids");
    }
    if (config.zone !== undefined && typeof config.zone !== "string") {
      throw new Error("zone must be a zone name");
    }
    const changed =
      JSON.stringify(config.cameras || []) !== JSON.stringify(this._config?.cameras || []) ||
      (config.zone || "") !== (this._config?.zone || "");
    this._config = { page_size: DEFAULT_PAGE, ...config };
    if (changed && this._hass) this._restart();
    this._render();
  }

  set hass(hass) {
    const first = !this._hass;
    this._hass = hass;
    if (first) this._restart();
  }

  get hass() {
    return this._hass;
  }

  getCardSize() {
    return 1 + Math.min(this._events.length, this._config?.page_size || DEFAULT_PAGE);
  }

  connectedCallback() {
    if (this._hass && !this._unsubscribe) this._restart();
  }

  disconnectedCallback() {
    this._stopLive();
  }

  _filter() {
    const cameras = this._config?.cameras;
    const zone = (this._config?.zone || "").trim();
    return { ...(cameras && cameras.length ? { cameras } : {}), ...(zone ? { zone } : {}) };
  }

  async _restart() {
    this._stopLive();
    this._events = [];
    this._nextBefore = null;
    this._loaded = false;
    this._startLive();
    await this._loadPage();
  }

  async _startLive() {
    try {
      this._unsubscribe = await this._hass.connection.subscribeMessage(
        (message) => this._onLive(message),
        { type: "secmon/events/subscribe", ...this._filter() },
      );
    } catch (err) {
      this._error = `Live updates unavailable: ${err.message || err}`;
      this._render();
    }
  }

  _stopLive() {
    if (this._unsubscribe) {
      const unsubscribe = this._unsubscribe;
      this._unsubscribe = null;
      Promise.resolve(unsubscribe).then((fn) => fn && fn()).catch(() => {});
    }
  }

  _onLive(message) {
    const event = message.event;
    const index = this._events.findIndex((e) => e.event_id === event.event_id);
    if (index >= 0) this._events.splice(index, 1);
    this._events.unshift(event);
    if (this._selected && this._selected.event_id === event.event_id) this._selected = event;
    this._render();
  }

  async _loadPage() {
    if (this._loading) return;
    this._loading = true;
    this._render();
    try {
      const page = await this._hass.callWS({
        type: "secmon/events/list",
        limit: this._config.page_size || DEFAULT_PAGE,
        before: this._nextBefore,
        ...this._filter(),
      });
      const known = new Set(this._events.map((e) => e.event_id));
      this._events.push(...page.events.filter((e) => !known.has(e.event_id)));
      this._nextBefore = page.next_before;
      this._error = null;
    } catch (err) {
      this._error = `Could not load events: ${err.message || err}`;
    }
    this._loading = false;
    this._loaded = true;
    this._render();
  }

  _render() {
    if (!this.shadowRoot) return;
    const root = this.shadowRoot;
    root.replaceChildren(h("style", { text: STYLE }));
    const card = h("ha-card", {}, [
      h("div", { class: "header" }, [
        h("span", { text: this._config?.title || "Security events" }),
        h("span", { class: "live", text: this._unsubscribe ? "● live" : "" }),
      ]),
    ]);
    if (this._error) card.append(h("div", { class: "empty", text: this._error }));
    if (this._loaded && !this._events.length && !this._error) {
      const zone = (this._config.zone || "").trim();
      const text = zone ? `No security events in the zone ${zone} yet.` : "No security events yet.";
      card.append(h("div", { class: "empty", text }));
    }
    card.append(h("div", { class: "events" }, this._events.map((e) => this._row(e))));
    if (this._nextBefore !== null && this._nextBefore !== undefined) {
      card.append(
        h("button", {
          class: "more",
          text: this._loading ? "Loading…" : "Show older events",
          onclick: () => this._loadPage(),
        }),
      );
    }
    root.append(card);
    if (this._selected) root.append(this._dialog(this._selected));
  }

  _row(event) {
    const colour = LEVEL_COLOURS[event.risk_level] || LEVEL_COLOURS.low;
    const thumbUrl = event.thumbnail_url || event.snapshot_url;
    const thumb = thumbUrl
      ? h("img", { class: "thumb", src: this._hass.hassUrl(thumbUrl), alt: "", loading: "lazy" })
      : h("div", { class: "thumb none", text: "no picture" });
    return h(
      "div",
      {
        class: "event",
        style: `--level-colour: ${colour}`,
        "data-event-id": event.event_id,
        role: "button",
        tabindex: "0",
        onclick: () => this._open(event),
        onkeydown: (ev) => (ev.key === "Enter" ? this._open(event) : null),
      },
      [
        thumb,
        h("div", { class: "body" }, [
          h("div", { class: "top" }, [
            h("span", { class: "score", text: `${event.risk_level} ${event.risk_score}` }),
            h("span", { class: "camera", text: event.camera_name }),
            h("span", { class: "time", text: formatTime(this._hass, event.started_at, event.stored_at) }),
          ]),
          h("div", { class: "summary", text: event.summary || "(no summary)" }),
          h("div", { class: "chips" }, [
            ...contextChips(event),
            ...labelText(event.labels).map((t) => h("span", { class: "chip", text: t })),
          ]),
        ]),
      ],
    );
  }

  _open(event) {
    this._selected = event;
    this._feedbackStatus = "";
    this._render();
  }

  _close() {
    this._selected = null;
    this._render();
  }

  async _feedback(event, verdict) {
    this._feedbackStatus = "Sending…";
    this._render();
    try {
      await this._hass.callService("secmon", "feedback", { event_id: event.event_id, verdict });
      this._feedbackStatus = verdict === "false_alarm" ? "Marked as a false alarm." : "Marked as confirmed.";
    } catch (err) {
      this._feedbackStatus = `Feedback failed: ${err.message || err}`;
    }
    this._render();
  }

  _dialog(event) {
    const colour = LEVEL_COLOURS[event.risk_level] || LEVEL_COLOURS.low;
    const canFeedback = Boolean(this._hass.services?.secmon?.feedback);
    const url = (path) => this._hass.hassUrl(path);
    return h(
      "div",
      { class: "overlay", onclick: (ev) => (ev.target === ev.currentTarget ? this._close() : null) },
      h("div", { class: "dialog", role: "dialog", style: `--level-colour: ${colour}` }, [
        h("div", { class: "title" }, [
          h("span", { class: "score", text: `${event.risk_level} ${event.risk_score}` }),
          h("span", { class: "camera", text: event.camera_name }),
          h("span", { class: "time", text: formatTime(this._hass, event.started_at, event.stored_at) }),
          h("button", { class: "close", text: "Close", onclick: () => this._close() }),
        ]),
        event.snapshot_url ? h("img", { class: "full", src: url(event.snapshot_url), alt: "snapshot" }) : null,
        event.clip_url
          ? h("video", { class: "full clip", src: url(event.clip_url), controls: true, preload: "none", playsinline: true })
          : null,
        h("div", { class: "text" }, [
          h("div", { class: "summary-full", text: event.summary || "(no summary)" }),
          event.reasoning ? h("div", { class: "reasoning", text: event.reasoning }) : null,
          h("div", { class: "chips" }, [
            ...contextChips(event),
            ...labelText(event.labels).map((t) => h("span", { class: "chip", text: t })),
          ]),
          isUnusual(event) ? h("div", { class: "unusual-line", text: unusualTitle(event) }) : null,
          event.caption ? h("div", { class: "caption", text: event.caption }) : null,
          event.plates && event.plates.length
            ? h("div", { class: "chips plates" }, event.plates.map((p) => h("span", { class: "chip plate", text: plateText(p) })))
            : null,
          ...identityLines(this._hass, event.objects).map((line) => h("div", { class: "identity", text: line })),
        ]),
        event.frame_urls && event.frame_urls.length
          ? h("div", { class: "frames" }, event.frame_urls.map((f) => h("img", { src: url(f), alt: "frame", loading: "lazy" })))
          : null,
        h("div", { class: "feedback" }, [
          h("button", {
            class: "false-alarm",
            text: "False alarm",
            disabled: canFeedback ? null : "",
            onclick: () => this._feedback(event, "false_alarm"),
          }),
          h("button", {
            class: "confirmed",
            text: "Confirmed",
            disabled: canFeedback ? null : "",
            onclick: () => this._feedback(event, "confirmed"),
          }),
          h("span", {
            class: "status",
            text: canFeedback ? this._feedbackStatus : "Feedback is not available (no secmon.feedback service).",
          }),
        ]),
      ]),
    );
  }
}

class SecmonTimelineCardEditor extends HTMLElement {
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
          this._cameras = page.cameras;
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
    const chosen = new Set(config.cameras || []);
    const cameras = (this._cameras || []).map((camera) =>
      h("label", { class: "camera" }, [
        h("input", {
          type: "checkbox",
          value: camera.camera_id,
          checked: chosen.has(camera.camera_id) ? "" : null,
          onchange: (ev) => {
            const next = new Set(this._config.cameras || []);
            if (ev.target.checked) next.add(camera.camera_id);
            else next.delete(camera.camera_id);
            const updated = { ...this._config, cameras: [...next] };
            if (!updated.cameras.length) delete updated.cameras;
            this._changed(updated);
          },
        }),
        ` ${camera.name}`,
      ]),
    );
    this.shadowRoot.replaceChildren(
      h("style", { text: "label { display: block; margin: 6px 0; } input[type=text], input[type=number] { width: 100%; }" }),
      h("label", {}, [
        "Title",
        h("input", {
          type: "text",
          name: "title",
          value: config.title || "",
          onchange: (ev) => this._changed({ ...this._config, title: ev.target.value }),
        }),
      ]),
      h("label", {}, [
        "Events per page",
        h("input", {
          type: "number",
          name: "page_size",
          min: "1",
          max: "100",
          value: String(config.page_size || DEFAULT_PAGE),
          onchange: (ev) => this._changed({ ...this._config, page_size: Number(ev.target.value) || DEFAULT_PAGE }),
        }),
      ]),
      h("label", {}, [
        "Zone (empty: events anywhere)",
        h("input", {
          type: "text",
          name: "zone",
          value: config.zone || "",
          onchange: (ev) => {
            const updated = { ...this._config, zone: ev.target.value.trim() };
            if (!updated.zone) delete updated.zone;
            this._changed(updated);
          },
        }),
      ]),
      h("div", {}, [
        h("div", { text: "Cameras (none chosen: every camera)" }),
        ...(this._cameras === null ? [h("div", { text: "Loading cameras…" })] : cameras),
      ]),
    );
  }
}

if (!customElements.get("secmon-timeline-card")) {
  customElements.define("secmon-timeline-card", SecmonTimelineCard);
  customElements.define("secmon-timeline-card-editor", SecmonTimelineCardEditor);
  window.customCards = window.customCards || [];
  window.customCards.push({
    type: "secmon-timeline-card",
    name: "secmon timeline",
    description: "Security events of your cameras, newest first, live, with snapshots.",
    preview: false,
  });
}
};

const whenFrontendStarted = (then) =>
  customElements.get("home-assistant") ? then() : setTimeout(() => whenFrontendStarted(then), 50);
whenFrontendStarted(defineCards);
