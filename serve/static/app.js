// affect-llm web demo: posts the form to /v1/affect/explain and draws the answer. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const SECTOR_COLORS = {
  angry: "#f04438", bad: "#98a2b3", disgusted: "#66c61c", fearful: "#7a5af8",
  happy: "#fdb022", sad: "#2e90fa", surprised: "#ee46bc",
};
const MODALITY_COLORS = { speech: "#2e90fa", face: "#f79009", text: "#7a5af8", context: "#98a2b3" };

function headers() {
  const key = $("key").value.trim() || localStorage.getItem("affect-key") || "";
  if ($("key").value.trim()) localStorage.setItem("affect-key", key);
  return key ? { Authorization: "Bearer " + key } : {};
}

function el(name, attrs = {}, text = null, ns = null) {
  const node = ns ? document.createElementNS(ns, name) : document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

async function status() {
  const line = $("status");
  try {
    const health = await (await fetch("/healthz")).json();
    let text = `${health.engine} engine · ${health.model} · ${health.status}`;
    const info = await fetch("/v1/affect/info", { headers: headers() });
    if (info.ok) {
      const data = await info.json();
      const off = Object.entries(data.media).filter(([, why]) => why).map(([kind]) => kind);
      $("media-note").textContent = off.length
        ? `This server cannot read: ${off.join(", ")} (missing extras).`
        : `Accepted up to ${data.limits.max_request_mb} MiB and ${data.limits.max_audio_seconds} s.`;
    }
    line.textContent = text;
    line.className = "status " + (health.status === "ok" ? "ok" : "bad");
    if (health.status === "starting") setTimeout(status, 3000);
  } catch (err) {
    line.textContent = "server unreachable";
    line.className = "status bad";
  }
}

function mediaKind(file) {
  const type = (file.type || "").split("/")[0];
  if (["audio", "image", "video"].includes(type)) return type;
  const ext = file.name.split(".").pop().toLowerCase();
  if (["wav", "flac", "ogg", "mp3", "m4a"].includes(ext)) return "audio";
  if (["png", "jpg", "jpeg", "webp", "bmp"].includes(ext)) return "image";
  return "video";
}

async function explain(event) {
  event.preventDefault();
  const form = new FormData();
  for (const id of ["text", "speaker", "labels"]) {
    const value = $(id).value.trim();
    if (value) form.append($(id).name, value);
  }
  const file = $("media").files[0];
  if (file) form.append(mediaKind(file), file, file.name);
  $("go").disabled = true;
  $("go").textContent = "Thinking…";
  $("error").hidden = true;
  try {
    const resp = await fetch("/v1/affect/explain", { method: "POST", body: form, headers: headers() });
    const data = await resp.json();
    if (!resp.ok) throw new Error((data.error && data.error.message) || resp.statusText);
    render(data);
  } catch (err) {
    $("error").textContent = err.message;
    $("error").hidden = false;
  } finally {
    $("go").disabled = false;
    $("go").textContent = "Explain";
  }
}

function render(data) {
  $("result").hidden = false;
  const chips = $("labels-out");
  chips.replaceChildren(...data.labels.map((l) => el("span", { class: "chip" }, l)));
  const conf = data.confidence;
  $("conf-bar").style.width = conf === null ? "0" : `${Math.round(conf * 100)}%`;
  $("conf-text").textContent = conf === null ? "n/a" : conf > 0 && conf < 0.01 ? "<1%" : `${Math.round(conf * 100)}%`;
  $("explanation").textContent = data.explanation;
  // Say so when the sentence was written from the cited evidence, or names other emotions than the labels.
  const why = data.explanation_rewritten || [];
  const note = $("explanation-note");
  note.textContent = why.length ? `Written from the cited evidence: the model's own sentence failed a check (${why.join("; ")}).`
    : data.inconsistent ? "The explanation names emotions outside its labels." : "";
  note.hidden = !note.textContent;
  const cited = $("cited");
  cited.replaceChildren(...(data.cues.length ? data.cues.map((c) => {
    const li = el("li");
    li.append(el("span", { class: "mod" }, c.modality), document.createTextNode(c.cue + (c.evidence ? ` — “${c.evidence}”` : "")));
    return li;
  }) : [el("li", {}, "none")]));
  drawTimeline($("timeline"), data.timeline || []);
  drawWheel($("wheel"), data.wheel);
  const t = data.timings || {};
  $("meta").textContent = `${data.model} · ${data.template} · ${t.total_s ?? "?"} s`;
}

function drawTimeline(svg, cues) {
  svg.replaceChildren();
  const W = +svg.getAttribute("width"), left = 60, right = 10, laneH = 22;
  const timed = cues.filter((c) => c.start !== null && c.end !== null);
  const untimed = cues.filter((c) => c.start === null || c.end === null);
  if (!cues.length) {
    svg.append(el("text", { x: 8, y: 24 }, "No media cues: upload audio, an image or a video.", SVG));
    return;
  }
  const tmax = Math.max(1, ...timed.map((c) => c.end));
  const x = (t) => left + (t / tmax) * (W - left - right);
  let y = 6;
  for (const mod of [...new Set(cues.map((c) => c.modality))]) {
    // Overlapping cues of one modality go to separate lanes, so every bar and its name stay visible.
    const lanes = [];
    const placed = timed.filter((c) => c.modality === mod).sort((a, b) => a.start - b.start).map((c) => {
      let lane = lanes.findIndex((end) => end <= c.start);
      if (lane < 0) { lane = lanes.length; lanes.push(0); }
      lanes[lane] = c.end;
      return [c, lane];
    });
    const rest = untimed.filter((c) => c.modality === mod).map((c) => c.cue);
    const nLanes = Math.max(1, lanes.length) + (rest.length && lanes.length ? 1 : 0);
    svg.append(el("text", { x: 4, y: y + 15 }, mod, SVG));
    for (const [c, lane] of placed) {
      const top = y + lane * laneH;
      const rect = el("rect", {
        x: x(c.start), y: top, width: Math.max(3, x(c.end) - x(c.start)), height: laneH - 4, rx: 3,
        fill: MODALITY_COLORS[mod] || "#667085", "fill-opacity": 0.35 + 0.65 * (c.strength ?? 0.5),
      }, null, SVG);
      rect.append(el("title", {}, `${c.cue}${c.evidence ? " (" + c.evidence + ")" : ""} ${c.start.toFixed(1)}–${c.end.toFixed(1)} s`, SVG));
      svg.append(rect);
      const room = x(c.end) - x(c.start) - 8;
      if (room > 30) {
        const chars = Math.floor(room / 6.2);
        const name = c.cue.length > chars ? c.cue.slice(0, chars - 1) + "…" : c.cue;
        svg.append(el("text", { x: x(c.start) + 4, y: top + 13, style: "fill:#fff" }, name, SVG));
      }
    }
    if (rest.length) {
      const top = y + (lanes.length ? lanes.length * laneH : 0);
      svg.append(el("text", { x: left + 4, y: top + 13 }, rest.join(" · ").slice(0, 70), SVG));
    }
    y += nLanes * laneH + 8;
    svg.append(el("line", { x1: left, x2: W - right, y1: y - 5, y2: y - 5, stroke: "#e4e7ec" }, null, SVG));
  }
  if (timed.length) {
    for (let i = 0; i <= 4; i++) {
      const t = (tmax * i) / 4;
      const tx = Math.min(Math.max(x(t), left + 10), W - right - 12);
      svg.append(el("text", { x: tx, y: y + 8, "text-anchor": "middle" }, `${t.toFixed(1)}s`, SVG));
    }
  }
  svg.setAttribute("height", y + 16);
}

function drawWheel(svg, wheel) {
  svg.replaceChildren();
  if (!wheel) return;
  const n = wheel.sectors.length, R = 120, r0 = 34;
  const hits = {};
  for (const item of wheel.labels) if (item.sector) (hits[item.sector] ||= []).push(item);
  wheel.sectors.forEach((name, i) => {
    const a0 = (i / n) * 2 * Math.PI - Math.PI / 2, a1 = ((i + 1) / n) * 2 * Math.PI - Math.PI / 2;
    const p = (a, rad) => `${(rad * Math.cos(a)).toFixed(1)} ${(rad * Math.sin(a)).toFixed(1)}`;
    const d = `M ${p(a0, r0)} L ${p(a0, R)} A ${R} ${R} 0 0 1 ${p(a1, R)} L ${p(a1, r0)} A ${r0} ${r0} 0 0 0 ${p(a0, r0)} Z`;
    const hit = hits[name];
    const path = el("path", { d, fill: SECTOR_COLORS[name] || "#98a2b3", "fill-opacity": hit ? 0.95 : 0.18,
      stroke: "#fff", "stroke-width": 2, "data-sector": name, class: hit ? "hit" : "" }, null, SVG);
    path.append(el("title", {}, hit ? `${name}: ${hit.map((h) => `${h.label} (${h.cluster})`).join(", ")}` : name, SVG));
    svg.append(path);
    const am = (a0 + a1) / 2, tr = (R + r0) / 2;
    const label = el("text", { x: (tr * Math.cos(am)).toFixed(1), y: (tr * Math.sin(am)).toFixed(1),
      "text-anchor": "middle", "dominant-baseline": "middle", "font-weight": hit ? "700" : "400" }, name, SVG);
    svg.append(label);
    if (hit) {
      const sub = el("text", { x: (tr * Math.cos(am)).toFixed(1), y: (tr * Math.sin(am) + 13).toFixed(1),
        "text-anchor": "middle", "dominant-baseline": "middle" }, hit[0].cluster || "", SVG);
      svg.append(sub);
    }
  });
  const unmapped = wheel.labels.filter((l) => !l.sector).map((l) => l.label);
  svg.append(el("text", { x: 0, y: 4, "text-anchor": "middle" }, unmapped.length ? `+ ${unmapped.join(", ")}` : "", SVG));
}

$("ask").addEventListener("submit", explain);
status();
