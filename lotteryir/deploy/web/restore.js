// Restores the picked image with onnxruntime-web (WebAssembly), entirely in the browser.
// config.json (written by `lotteryir web`) names the model, the runtime's URL and the tiling.
// Large images go through the network in overlapping tiles blended with raised-cosine ramps,
// the same scheme as `lotteryir restore --tile T --overlap O`, so memory depends on the tile only.
// A 1-channel (grayscale) network gets the image's BT.601 luma, as lotteryir reads it, and its
// output is shown and saved as gray (R = G = B).
"use strict";

const $ = (id) => document.getElementById(id);
let config = null;
let session = null;
let channels = 3;

function setStatus(text, kind = "info") {
  $("status").textContent = text;
  $("status").dataset.kind = kind;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`cannot load the ONNX runtime from ${src}`));
    document.head.appendChild(script);
  });
}

const megabytes = (bytes) => `${(bytes / 1e6).toFixed(2)} MB`;

async function start() {
  const response = await fetch("config.json");
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  config = await response.json();
  channels = config.channels || 3;
  $("model").textContent = `${config.name} (${channels === 1 ? "grayscale, " : ""}` +
    `${config.params.toLocaleString()} weights, density ` +
    `${config.density.toFixed(3)}): ${config.model} is ${megabytes(config.model_bytes)}, ` +
    `${megabytes(config.dense_bytes)} stored densely.`;
  const base = new URL(config.runtime.endsWith("/") ? config.runtime : config.runtime + "/", location.href).href;
  await loadScript(base + "ort.wasm.min.js");
  ort.env.wasm.wasmPaths = base;
  // Threads need a cross-origin-isolated page; elsewhere ask for one instead of a warning.
  if (!self.crossOriginIsolated) ort.env.wasm.numThreads = 1;
  setStatus("Loading the model into the runtime…");
  session = await ort.InferenceSession.create(config.model, { executionProviders: ["wasm"] });
  $("file").disabled = false;
  document.body.dataset.state = "ready";
  setStatus("Ready: pick an image.");
}

// Pixels as decoded, without colour management, composited on white (as lotteryir reads images).
async function readImage(file) {
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = $("before");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, bitmap.width, bitmap.height);
  ctx.drawImage(bitmap, 0, 0);
  return ctx.getImageData(0, 0, bitmap.width, bitmap.height);
}

// Python's round(): halves go to the even neighbour, so tile origins match lotteryir's.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function tileStarts(size, tile, overlap) {
  if (size <= tile) return [0];
  const count = Math.ceil((size - tile) / (tile - overlap)) + 1;
  return Array.from({ length: count }, (_, i) => roundHalfEven((i * (size - tile)) / (count - 1)));
}

// Weight rising over `before` samples and falling over `after`, strictly positive.
function ramp(length, before, after) {
  const w = new Float64Array(length).fill(1);
  for (let i = 0; i < length; i++) {
    if (before > 0) w[i] *= 0.5 - 0.5 * Math.cos((Math.PI * Math.min(i + 0.5, before)) / before);
    if (after > 0) w[i] *= 0.5 - 0.5 * Math.cos((Math.PI * Math.min(length - i - 0.5, after)) / after);
  }
  return w;
}

// Per-tile ramps along one axis, each divided by the sum of all ramps covering a pixel.
function axisWeights(starts, length, size) {
  const total = new Float64Array(size);
  const ramps = starts.map((s, i) => {
    const before = i > 0 ? starts[i - 1] + length - s : 0;
    const after = i + 1 < starts.length ? s + length - starts[i + 1] : 0;
    const r = ramp(length, before, after);
    r.forEach((v, k) => { total[s + k] += v; });
    return r;
  });
  return ramps.map((r, i) => r.map((v, k) => v / total[starts[i] + k]));
}

// ITU-R BT.601 luma rounded to 8 bits, with Pillow's integer weights (lotteryir's grayscale reader).
const luma = (r, g, b) => (r * 19595 + g * 38470 + b * 7471 + 32768) >>> 16;

async function runTile(image, x0, y0, tw, th) {
  const { width, data } = image;
  const input = new Float32Array(channels * th * tw);
  for (let y = 0; y < th; y++) {
    for (let x = 0; x < tw; x++) {
      const src = 4 * ((y0 + y) * width + x0 + x);
      if (channels === 1) {
        input[y * tw + x] = luma(data[src], data[src + 1], data[src + 2]) / 255;
      } else {
        for (let c = 0; c < 3; c++) input[c * th * tw + y * tw + x] = data[src + c] / 255;
      }
    }
  }
  const feeds = { image: new ort.Tensor("float32", input, [1, channels, th, tw]) };
  const result = await session.run(feeds);
  return result.restored.data;
}

async function restore(image) {
  const { width, height } = image;
  const multiple = config.multiple;
  if (width < multiple || height < multiple) throw new Error(`the image must be at least ${multiple}x${multiple} pixels`);
  const tile = Math.ceil(config.tile / multiple) * multiple;
  const th = Math.min(tile, height), tw = Math.min(tile, width);
  const ys = tileStarts(height, th, config.overlap), xs = tileStarts(width, tw, config.overlap);
  const rowWeights = axisWeights(ys, th, height), colWeights = axisWeights(xs, tw, width);
  const out = new Float32Array(channels * width * height);
  const tiles = ys.length * xs.length;
  let done = 0;
  for (let i = 0; i < ys.length; i++) {
    for (let j = 0; j < xs.length; j++) {
      setStatus(tiles > 1 ? `Restoring tile ${done + 1} of ${tiles}…` : "Restoring…");
      const patch = await runTile(image, xs[j], ys[i], tw, th);
      for (let c = 0; c < channels; c++) {
        for (let y = 0; y < th; y++) {
          const wy = rowWeights[i][y];
          for (let x = 0; x < tw; x++) {
            out[c * width * height + (ys[i] + y) * width + xs[j] + x] += patch[c * th * tw + y * tw + x] * wy * colWeights[j][x];
          }
        }
      }
      done += 1;
    }
  }
  return { out, tiles };
}

function show(out, width, height) {
  const canvas = $("after");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(width, height);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) {
      const plane = channels === 1 ? 0 : c;  // gray: the one plane in R, G and B
      pixels.data[4 * p + c] = Math.round(Math.min(1, Math.max(0, out[plane * width * height + p])) * 255);
    }
    pixels.data[4 * p + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
  $("download").href = canvas.toDataURL("image/png");
  $("download").hidden = false;
}

async function onPick(event) {
  const file = event.target.files[0];
  if (!file) return;
  document.body.dataset.state = "working";
  $("download").hidden = true;
  $("timing").textContent = "";
  try {
    const image = await readImage(file);
    const t0 = performance.now();
    const { out, tiles } = await restore(image);
    const seconds = (performance.now() - t0) / 1000;
    show(out, image.width, image.height);
    $("timing").textContent = `${image.width}x${image.height} pixels restored in ${seconds.toFixed(2)} s` +
      (tiles > 1 ? ` (${tiles} tiles of ${config.tile}, overlap ${config.overlap})` : "") + ".";
    setStatus(`Done: ${file.name}.`);
    document.body.dataset.state = "done";
  } catch (err) {
    setStatus(`Could not restore ${file.name}: ${err.message}`, "error");
    document.body.dataset.state = "error";
  }
}

$("file").addEventListener("change", onPick);
start().catch((err) => {
  setStatus(`Could not start: ${err.message}`, "error");
  document.body.dataset.state = "error";
});
