"""The self-contained page's HTML, style and script (:mod:`litelvlm.explore.page` fills in the data).

The script reads the data embedded in ``<script id="data" type="application/json">`` and the images embedded
as hidden ``<img>`` data URIs, and draws on canvases; no request leaves the page. The URL fragment
(``#method=litelvlm&budget=64&text=0&token=5``) sets the view on load and follows every change. After each
draw ``document.body.dataset.view`` holds the view as JSON (what the browser test reads).
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
.tool { font-style: italic; color: #555; }
.banner { color: #b2182b; font-weight: bold; margin: 4px 0; }
.controls { display: flex; gap: 18px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
.controls input[type=range] { width: 320px; }
.panels { display: flex; gap: 16px; flex-wrap: wrap; }
.panel h3 { font-size: 14px; margin: 4px 0; }
.panel { max-width: 340px; }
canvas { border: 1px solid #ccc; display: block; width: 340px; image-rendering: pixelated; }
.legend span.sw { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 10px; vertical-align: middle; }
#tokens span { display: inline-block; padding: 1px 4px; margin: 2px; border-radius: 3px; cursor: pointer;
  border: 1px solid #ddd; }
#tokens span.chosen { outline: 2px solid #2c7bb6; }
.note { color: #555; font-size: 12px; }
#imgs { display: none; }
</style></head>
<body>
<div class="tool">__TOOL__</div>
<div class="banner" id="banner"></div>
<div class="note" id="made"></div>
<div class="controls">
  <label>method <select id="method"></select></label>
  <label>budget K <input type="range" id="budget" min="1" step="1"> <b id="budget-value"></b></label>
  <label>text <select id="text"></select></label>
</div>
<div class="legend" id="legend"></div>
<div id="caption"></div>
<div class="panels">
  <div class="panel"><h3>kept tokens</h3><canvas id="kept"></canvas></div>
  <div class="panel"><h3>CLIP similarity to [EOS] (per token; referent outlined)</h3><canvas id="sim"></canvas>
    <div class="note" id="referent"></div></div>
  <div class="panel"><h3>predicted mask</h3><canvas id="mask"></canvas><div class="note" id="mask-note"></div></div>
</div>
<h3>text tokens (hover or click: the token's attention row in the text encoder's last layer)</h3>
<div id="tokens"></div>
<div class="note" id="row-note"></div>
<div id="imgs">__IMAGES__</div>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const S = {method: D.methods[0], budget: D.n, text: 0, token: null, pinned: false};
const $ = (id) => document.getElementById(id);
const RAMP = D.ramp;

function bits(method, budget) {  // per token: 0 dropped, 1 + part index kept
  const b64 = D.kept[method].codes[String(budget)];
  if (b64 === undefined) return null;
  const raw = atob(b64), out = new Uint8Array(D.n);
  for (let i = 0; i < D.n; i++) { const byte = raw.charCodeAt(i >> 1); out[i] = (i & 1) ? byte >> 4 : byte & 15; }
  return out;
}
function nearest(method, budget) {
  const ks = D.kept[method].budgets;
  let best = ks[0];
  for (const k of ks) if (Math.abs(k - budget) < Math.abs(best - budget)) best = k;
  return best;
}
function edges(size, cells) { const e = []; for (let i = 0; i <= cells; i++) e.push(Math.round(i * size / cells)); return e; }
function rampColour(v) {
  const x = Math.min(Math.max(v, 0), 1) * (RAMP.length - 1), lo = Math.min(Math.floor(x), RAMP.length - 2), t = x - lo;
  return RAMP[lo].map((c, i) => Math.round(c * (1 - t) + RAMP[lo + 1][i] * t));
}
function cells(canvas, colourOf) {
  const ctx = canvas.getContext("2d"), ys = edges(canvas.height, D.grid[0]), xs = edges(canvas.width, D.grid[1]);
  for (let r = 0; r < D.grid[0]; r++) for (let c = 0; c < D.grid[1]; c++) {
    const col = colourOf(r * D.grid[1] + c);
    if (col) { ctx.fillStyle = col; ctx.fillRect(xs[c], ys[r], xs[c + 1] - xs[c], ys[r + 1] - ys[r]); }
  }
}
function base(canvas) {
  const img = $("window");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  return ctx;
}
function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.has("method") && D.methods.includes(p.get("method"))) S.method = p.get("method");
  const t = parseInt(p.get("text"), 10);
  if (t >= 0 && t < D.texts.length) S.text = t;
  const k = parseInt(p.get("budget"), 10);
  S.budget = nearest(S.method, Number.isFinite(k) ? k : D.n);
  const j = parseInt(p.get("token"), 10);
  S.token = (j >= 0 && j < D.tokens[S.text].length) ? j : null;
  S.pinned = S.token !== null;
}
function writeHash() {
  const p = new URLSearchParams({method: S.method, budget: String(S.budget), text: String(S.text)});
  if (S.pinned && S.token !== null) p.set("token", String(S.token));
  history.replaceState(null, "", "#" + p.toString());
}
function drawKept() {
  const cv = $("kept"), ctx = base(cv), code = bits(S.method, S.budget), colours = D.kept[S.method].colours;
  cells(cv, (i) => code[i] === 0 ? "rgba(0,0,0,0.82)" : `rgba(${colours[code[i] - 1].join(",")},0.45)`);
  ctx.strokeStyle = "rgba(0,0,0,0.35)"; ctx.lineWidth = 1;
  const ys = edges(cv.height, D.grid[0]), xs = edges(cv.width, D.grid[1]);
  ctx.beginPath();
  for (const y of ys) { ctx.moveTo(0, y + 0.5); ctx.lineTo(cv.width, y + 0.5); }
  for (const x of xs) { ctx.moveTo(x + 0.5, 0); ctx.lineTo(x + 0.5, cv.height); }
  ctx.stroke();
  const counts = {}; let kept = 0;
  for (let i = 0; i < D.n; i++) if (code[i] > 0) { kept++; const p = D.kept[S.method].parts[code[i] - 1]; counts[p] = (counts[p] || 0) + 1; }
  const extra = D.kept[S.method].extra[String(S.budget)] || 0;
  const parts = Object.entries(counts).filter(([p]) => p).map(([p, c]) => `${(D.part_labels[p] || p).split(" (")[0]} ${c}`).join(", ");
  $("caption").textContent = `${S.method}${D.kept[S.method].baseline ? " (keeps every token whatever K)" : ""}: K = ${S.budget} of N = ${D.n} visual tokens on the ${D.grid[0]} x ${D.grid[1]} grid of ${D.model}` +
    (parts ? `; ${parts}` : "") + (extra ? `; ${extra} kept token(s) stand for no single visual token ([CLS] or merged)` : "");
  return kept;
}
function drawSim() {
  const cv = $("sim"), ctx = base(cv), v = D.similarity[S.text];
  cells(cv, (i) => `rgba(${rampColour(v[i]).join(",")},0.8)`);
  const outline = $("referent-" + S.text);
  if (outline) ctx.drawImage(outline, 0, 0);
  $("referent").textContent = D.referent_note;
}
function drawMask() {
  const cv = $("mask"), ctx = base(cv), m = $(`mask-${D.methods.indexOf(S.method)}-${S.budget}-${S.text}`);
  if (m) { ctx.drawImage(m, 0, 0); $("mask-note").textContent = `mask of text ${S.text + 1} at ${S.method}, K = ${S.budget}`; return true; }
  ctx.fillStyle = "rgba(0,0,0,0.65)"; ctx.fillRect(0, 0, cv.width, cv.height);
  $("mask-note").textContent = D.mask_budgets.length ? `masks on this page: K = ${D.mask_budgets.join(", ")} (move the slider there)` : D.mask_note;
  return false;
}
function drawTokens() {
  const toks = D.tokens[S.text], j = S.token === null ? toks.length - 1 : S.token, row = D.attention[S.text][j];
  const top = Math.max(...row.slice(0, j + 1)), box = $("tokens");
  box.innerHTML = "";
  toks.forEach((tok, i) => {
    const s = document.createElement("span"), a = i <= j ? row[i] : 0;
    s.textContent = tok; s.title = a.toFixed(3);
    s.style.background = `rgba(230,97,1,${top > 0 ? (a / top).toFixed(2) : 0})`;
    if (i === j) s.className = "chosen";
    s.addEventListener("mouseenter", () => { if (!S.pinned) { S.token = i; drawTokens(); } });
    s.addEventListener("click", () => { S.pinned = !(S.pinned && S.token === i); S.token = i; render(); });
    box.appendChild(s);
  });
  $("row-note").textContent = `attention row of ${toks[j]} (mean over heads); to [SOS]: ${row[0].toFixed(3)}`;
}
function rect(id) { const r = $(id).getBoundingClientRect(); return [r.left, r.top, r.width, r.height].map(Math.round); }
function render() {
  $("method").value = S.method; $("text").value = String(S.text);
  const input = $("budget"); input.max = String(D.kept[S.method].budgets[0]); input.value = String(S.budget);
  $("budget-value").textContent = String(S.budget);
  const kept = drawKept(); drawSim(); const mask = drawMask(); drawTokens(); writeHash();
  document.body.dataset.view = JSON.stringify({method: S.method, budget: S.budget, text: S.text, token: S.token,
    kept: kept, mask: mask, rects: {kept: rect("kept"), sim: rect("sim"), mask: rect("mask")}});
}
function setup() {
  $("banner").textContent = D.banner || "";
  $("made").textContent = D.made_by;
  for (const m of D.methods) { const o = document.createElement("option"); o.value = o.textContent = m; $("method").appendChild(o); }
  D.texts.forEach((t, i) => { const o = document.createElement("option"); o.value = String(i); o.textContent = t; $("text").appendChild(o); });
  $("legend").innerHTML = D.legend.map(([c, l]) => `<span class="sw" style="background: rgb(${c.join(",")})"></span>${l}`).join("");
  $("method").addEventListener("change", (e) => { S.method = e.target.value; S.budget = nearest(S.method, S.budget); render(); });
  $("budget").addEventListener("input", (e) => { S.budget = nearest(S.method, parseInt(e.target.value, 10)); render(); });
  $("text").addEventListener("change", (e) => { S.text = parseInt(e.target.value, 10); S.token = null; S.pinned = false; render(); });
  window.addEventListener("hashchange", () => { readHash(); render(); });
  readHash(); render();
}
window.addEventListener("error", (e) => { document.body.dataset.error = String(e.message); });
if (document.readyState === "complete") setup(); else window.addEventListener("load", setup);
</script>
</body></html>
"""  # noqa: E501
