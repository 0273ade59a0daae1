"""The page ``mynn serve-model`` answers at ``/``: draw a digit, and see what the served network
reads, its ten outputs, its model version, and the 28x28 image it was given.

One self-contained HTML document (no CDN, no external file: it works offline). The drawing's
ink goes to ``POST /draw`` as it is; the server makes it an MNIST record (mynn.drawing), so what
the page shows as "what the network saw" is exactly the network's input. A photo of a digit on
paper can be loaded instead: its darkness, less the paper's (the median), is the ink.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mynn: draw a digit</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: #666; margin: 0 0 16px; font-size: 14px; }
  .row { display: flex; gap: 28px; flex-wrap: wrap; align-items: flex-start; }
  #pad { border: 1px solid #999; background: #fff; touch-action: none; cursor: crosshair; }
  #seen { border: 1px solid #999; image-rendering: pixelated; background: #000; }
  button, label.file { font-size: 15px; padding: 6px 14px; margin: 8px 8px 0 0; cursor: pointer; }
  label.file { border: 1px solid #767676; border-radius: 2px; background: #efefef; display: inline-block; }
  #digit { font-size: 64px; font-weight: 700; line-height: 1; min-height: 64px; }
  #version { color: #555; font-size: 13px; margin: 4px 0 12px; }
  #message { color: #b00020; min-height: 20px; margin-top: 8px; }
  .bar { display: flex; align-items: center; gap: 8px; font-size: 13px; font-family: monospace; height: 20px; }
  .bar .fill { background: #4a7bd0; height: 14px; }
  .bar.best .fill { background: #d0602a; }
  .small { font-size: 12px; color: #666; }
</style>
</head>
<body>
<h1>Draw a digit</h1>
<p class="sub">The book's network, as registered in MLflow, reads your handwriting. Draw one digit, large, in the box.</p>
<div class="row">
  <div>
    <canvas id="pad" width="280" height="280" aria-label="drawing area"></canvas><br>
    <button id="read">Read it</button><button id="clear">Clear</button>
    <label class="file">Photo of a digit&hellip;<input id="photo" type="file" accept="image/*" hidden></label>
    <div id="message" role="alert"></div>
  </div>
  <div>
    <div id="digit" aria-live="polite"></div>
    <div id="version"></div>
    <div id="bars"></div>
  </div>
  <div>
    <div class="small">What the network saw (28x28, as MNIST)</div>
    <canvas id="seen" width="168" height="168"></canvas>
  </div>
</div>
<script>
"use strict";
const pad = document.getElementById("pad"), ctx = pad.getContext("2d");
const seen = document.getElementById("seen"), seenCtx = seen.getContext("2d");
const message = document.getElementById("message");
let drawing = false, last = null;
function clearPad() { ctx.clearRect(0, 0, pad.width, pad.height); message.textContent = ""; }
function at(e) { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
pad.addEventListener("pointerdown", e => { drawing = true; last = at(e); pad.setPointerCapture(e.pointerId); dot(last); });
pad.addEventListener("pointermove", e => { if (!drawing) return; const p = at(e); line(last, p); last = p; });
pad.addEventListener("pointerup", () => { drawing = false; });
pad.addEventListener("pointercancel", () => { drawing = false; });
function style() { ctx.strokeStyle = "#000"; ctx.fillStyle = "#000"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round"; }
function dot(p) { style(); ctx.beginPath(); ctx.arc(p[0], p[1], 9, 0, 2 * Math.PI); ctx.fill(); }
function line(a, b) { style(); ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke(); }
function ink() {
  // darkness over white paper, 0..255; a photo's paper (its median darkness) is taken off
  const d = ctx.getImageData(0, 0, pad.width, pad.height).data, n = pad.width * pad.height, out = new Array(n);
  for (let i = 0; i < n; i++) {
    const a = d[4 * i + 3] / 255, lum = 0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2];
    out[i] = 255 - (a * lum + (1 - a) * 255);
  }
  const paper = out.slice().sort((x, y) => x - y)[n >> 1], top = out.reduce((m, v) => Math.max(m, v), 0) - paper;
  return out.map(v => top > 0 && v - paper > 0.25 * top ? Math.round(255 * (v - paper) / top) : 0);
}
async function read() {
  message.textContent = "";
  const res = await fetch("/draw", { method: "POST", headers: { "Content-Type": "application/json" },
                                     body: JSON.stringify({ width: pad.width, height: pad.height, ink: ink() }) });
  const answer = await res.json();
  if (!res.ok) { message.textContent = answer.message; document.getElementById("digit").textContent = ""; return; }
  show(answer);
}
function show(answer) {
  const p = answer.predictions[0], outs = [...Array(10).keys()].map(i => p["output_" + i]);
  document.getElementById("digit").textContent = p.digit;
  document.getElementById("version").textContent = "model " + answer.model_name + ", version " + answer.model_version;
  document.getElementById("bars").innerHTML = outs.map((v, i) =>
    '<div class="bar' + (i === p.digit ? ' best' : '') + '" data-digit="' + i + '"><span>' + i + '</span>' +
    '<span class="fill" style="width:' + Math.round(200 * v) + 'px"></span><span>' + v.toFixed(3) + '</span></div>').join("");
  const img = seenCtx.createImageData(28, 28);
  answer.image.forEach((row, y) => row.forEach((v, x) => {
    const k = 4 * (28 * y + x); img.data[k] = img.data[k + 1] = img.data[k + 2] = v; img.data[k + 3] = 255; }));
  const tmp = document.createElement("canvas"); tmp.width = tmp.height = 28; tmp.getContext("2d").putImageData(img, 0, 0);
  seenCtx.imageSmoothingEnabled = false; seenCtx.drawImage(tmp, 0, 0, seen.width, seen.height);
}
document.getElementById("read").addEventListener("click", read);
document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("photo").addEventListener("change", e => {
  const file = e.target.files[0]; if (!file) return;
  const image = new Image();
  image.onload = () => { clearPad(); const s = Math.min(pad.width / image.width, pad.height / image.height);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.drawImage(image, (pad.width - s * image.width) / 2, (pad.height - s * image.height) / 2, s * image.width, s * image.height);
    URL.revokeObjectURL(image.src); read(); };
  image.src = URL.createObjectURL(file);
});
</script>
</body>
</html>
"""
