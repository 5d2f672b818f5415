// portleased status page: fetches /status/leases.json, then follows
// /status/events (server-sent events, each a whole snapshot). Every value
// from the gateway reaches the page through textContent, never as HTML: a
// lease's description is whatever a LAN client chose.
"use strict";

const tokenKey = "portleaseToken";
let snap = null;
let byKey = new Map(); // snap's leases by leaseKey
let skew = 0; // the gateway's clock minus ours, in ms

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

function cell(label, ...children) {
  return el("td", { "data-label": label }, ...children);
}

function duration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${pad(h)}h ${pad(m)}m`;
  if (h > 0) return `${h}h ${pad(m)}m ${pad(s)}s`;
  if (m > 0) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}

const zeroTime = (t) => !t || t.startsWith("0001-01-01");
const serverNow = () => Date.now() + skew;
const clock = (t) => new Date(t).toLocaleTimeString();
const stamp = (t) => new Date(t).toLocaleString();

function endpoint(host, port) {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function leaseKey(l) {
  return l.pinhole ? `pinhole/${l.pinholeId}` : `${l.proto}/${l.externalPort}`;
}

function remaining(l) {
  return zeroTime(l.expires) ? "permanent" : duration(Date.parse(l.expires) - serverNow());
}

function matches(l, f) {
  if (f.host && l.host !== f.host) return false;
  if (f.proto && l.proto !== f.proto) return false;
  if (f.origin && l.origin !== f.origin) return false;
  if (!f.text) return true;
  const hay = [l.proto, l.host, endpoint(l.host, l.internalPort), String(l.externalPort), l.origin,
    l.description, ...(l.filters || [])].join(" ").toLowerCase();
  return hay.includes(f.text);
}

function filters() {
  return {
    host: $("fHost").value, proto: $("fProto").value, origin: $("fOrigin").value,
    text: $("fText").value.trim().toLowerCase(),
  };
}

function adminOn() {
  return snap && snap.admin && sessionStorage.getItem(tokenKey);
}

// A delete button asks to be pressed twice: no dialog, and a phone's stray
// tap deletes nothing.
function deleteButton(label, body) {
  const b = el("button", { type: "button", class: "danger" }, label);
  let timer = 0;
  b.addEventListener("click", () => {
    if (!b.classList.contains("armed")) {
      b.classList.add("armed");
      b.textContent = "Confirm";
      timer = setTimeout(() => { b.classList.remove("armed"); b.textContent = label; }, 4000);
      return;
    }
    clearTimeout(timer);
    b.disabled = true;
    remove(body).finally(() => { b.disabled = false; });
  });
  return b;
}

async function remove(body) {
  const resp = await fetch("/status/delete", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Portlease-Token": sessionStorage.getItem(tokenKey) || "" },
    body: JSON.stringify(body),
  });
  if (resp.status === 403) {
    sessionStorage.removeItem(tokenKey);
    $("adminState").textContent = "The gateway refused the token.";
    renderAdmin();
    return;
  }
  if (!resp.ok) {
    $("adminState").textContent = `Deletion failed: ${resp.status} ${(await resp.text()).trim()}`;
    return;
  }
  const r = await resp.json();
  $("adminState").textContent = `Deleted ${r.deleted} lease${r.deleted === 1 ? "" : "s"}.`;
}

function renderAdmin() {
  const offered = !!(snap && snap.admin);
  $("admin").hidden = !offered;
  $("tokenForm").hidden = !offered || !!sessionStorage.getItem(tokenKey);
  document.body.classList.toggle("admin", !!adminOn());
}

function renderSummary() {
  $("external").textContent = snap.external || "none";
  $("count").textContent = snap.leases.length;
  $("epochStart").textContent = "since " + stamp(snap.epochStart);
  $("started").textContent = "since " + stamp(snap.started);
  tick();
}

function tick() {
  if (!snap) return;
  $("epoch").textContent = duration(serverNow() - Date.parse(snap.epochStart));
  $("uptime").textContent = duration(serverNow() - Date.parse(snap.started));
  for (const td of document.querySelectorAll("#leases td.remaining")) {
    const l = byKey.get(td.parentElement.dataset.key);
    if (l) td.textContent = remaining(l);
  }
}

function renderHostFilter() {
  const sel = $("fHost");
  const hosts = new Set(snap.leases.map((l) => l.host));
  for (const u of snap.usage) hosts.add(u.host);
  if (sel.value) hosts.add(sel.value); // keep the choice while its host has nothing
  const want = [...hosts].sort();
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (want.join() === have.join()) return;
  const keep = sel.value;
  sel.replaceChildren(el("option", { value: "" }, "all"), ...want.map((h) => el("option", { value: h }, h)));
  sel.value = keep;
}

function renderLeases() {
  const f = filters();
  const rows = [];
  for (const l of snap.leases) {
    if (!matches(l, f)) continue;
    const ext = l.pinhole ? el("span", {}, "pinhole", el("span", { class: "tag" }, `#${l.pinholeId}`))
      : endpoint(snap.external || "–", l.externalPort);
    const internal = el("span", {}, endpoint(l.host, l.internalPort));
    if (l.nonce) internal.append(el("span", { class: "tag", title: "nonce-protected (PCP)" }, "nonce"));
    // An empty cell stays empty, so that a phone shows no label for it.
    const desc = [];
    if (l.description) desc.push(l.description);
    if (l.filters && l.filters.length) desc.push(el("span", { class: "tag" }, "from " + l.filters.join(", ")));
    const del = l.pinhole ? { what: "pinhole", pinholeId: l.pinholeId } : { what: "lease", proto: l.proto, externalPort: l.externalPort };
    const tr = el("tr", { "data-key": leaseKey(l) },
      cell("Proto", l.proto), cell("External", ext), cell("Internal", internal), cell("Origin", l.origin),
      cell("Description", ...desc), el("td", { "data-label": "Remaining", class: "remaining num" }, remaining(l)),
      el("td", { class: "adminOnly" }, adminOn() ? deleteButton("Delete", del) : ""));
    rows.push(tr);
  }
  $("leases").tBodies[0].replaceChildren(...rows);
  $("leases").hidden = rows.length === 0;
  $("noLeases").hidden = rows.length > 0;
  $("noLeases").textContent = snap.leases.length ? "No lease matches the filters." : "No leases.";
}

function renderHosts() {
  const rows = snap.usage.map((u) => {
    const share = el("span", {});
    if (u.limit > 0) {
      const pct = Math.min(100, Math.round((100 * u.leases) / u.limit));
      const fill = el("span", {});
      fill.style.width = `${pct}%`; // CSSOM: the policy allows no style attribute
      const bar = el("span", { class: u.leases >= u.limit ? "bar full" : "bar" }, fill);
      share.append(bar, `${u.leases} of ${u.limit}`);
    } else {
      share.append("no limit");
    }
    return el("tr", { "data-host": u.host },
      cell("Host", u.host), el("td", { "data-label": "Leases", class: "num" }, u.leases), cell("Share", share),
      el("td", { class: "adminOnly" }, adminOn() ? deleteButton("Delete all", { what: "host", host: u.host }) : ""));
  });
  $("hosts").tBodies[0].replaceChildren(...rows);
  $("hosts").hidden = rows.length === 0;
  $("noHosts").hidden = rows.length > 0;
}

function renderEvents() {
  const items = snap.events.slice().reverse().map((e) => {
    const what = e.kind === "refused" ? `${e.proto} ${endpoint(e.host, e.internalPort)}`
      : `${e.proto} ${e.externalPort} → ${endpoint(e.host, e.internalPort)}`;
    const li = el("li", {}, el("time", { datetime: e.time }, clock(e.time)),
      el("span", { class: `kind-${e.kind}` }, e.kind), ` ${what} (${e.origin})`);
    if (e.requester && e.requester !== e.host) li.append(` by ${e.requester}`);
    if (e.reason) li.append(`: ${e.reason}`);
    return li;
  });
  $("events").replaceChildren(...items);
  $("events").hidden = items.length === 0;
  $("noEvents").hidden = items.length > 0;
  const hist = snap.addressHistory.slice().reverse().map((c) =>
    el("li", {}, el("time", { datetime: c.time }, stamp(c.time)), c.addr || "none (address lost)"));
  $("history").replaceChildren(...hist);
  $("history").hidden = hist.length === 0;
  $("noHistory").hidden = hist.length > 0;
}

function render(s) {
  snap = s;
  byKey = new Map(s.leases.map((l) => [leaseKey(l), l]));
  skew = Date.parse(s.now) - Date.now();
  renderAdmin();
  renderSummary();
  renderHostFilter();
  renderLeases();
  renderHosts();
  renderEvents();
}

function live(on) {
  $("live").classList.toggle("off", !on);
  $("live").textContent = on ? "live" : "reconnecting";
}

async function start() {
  for (const id of ["fHost", "fProto", "fOrigin"]) $(id).addEventListener("change", () => snap && renderLeases());
  $("fText").addEventListener("input", () => snap && renderLeases());
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("tokenForm").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(tokenKey, $("token").value);
    $("token").value = "";
    $("adminState").textContent = "";
    if (snap) render(snap);
  });
  setInterval(tick, 1000);
  try {
    const resp = await fetch("/status/leases.json", { cache: "no-store" });
    if (resp.ok) render(await resp.json());
  } catch (err) {
    live(false);
  }
  const es = new EventSource("/status/events");
  es.addEventListener("open", () => live(true));
  es.addEventListener("error", () => live(false));
  es.addEventListener("snapshot", (e) => {
    live(true);
    render(JSON.parse(e.data));
  });
}

start();
