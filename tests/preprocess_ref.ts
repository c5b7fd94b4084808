/**
 * Per-pixel JavaScript references of the shim's preprocessing (shim/preprocess.c, shim/image.c),
 * written from the specification in docs/preprocessing.md, not from the C: each output pixel
 * fetches its own source pixels (decoding YUV there), weighs them with its own taps and rounds
 * once. Integers throughout, so the comparison with the shim is exact. Also used by
 * bench/image.ts as the "JS loop" the shim is compared with.
 */

export type RefFormat = "rgb" | "bgr" | "rgba" | "bgra" | "gray" | "nv12" | "yuyv";
export interface RefRect {
  x: number;
  y: number;
  width: number;
  height: number;
}
export interface RefFrame {
  data: Uint8Array;
  format: RefFormat;
  width: number;
  height: number;
  stride: number;
}
export interface RefGeometry {
  crop?: RefRect;
  /** The region written, in a plane of planeW x planeH (default the whole plane). */
  into?: RefRect;
  letterbox?: boolean;
  pad?: readonly number[];
  rotate?: 0 | 180;
  resize?: "auto" | "bilinear" | "area";
  sourceRange?: "full" | "video";
}

export const BYTES_PER_PIXEL: Record<RefFormat, number> = { rgb: 3, bgr: 3, rgba: 4, bgra: 4, gray: 1, nv12: 1, yuyv: 2 };

/** A deterministic frame in any format, with `pad` junk bytes at the end of each row. */
export function makeFrame(format: RefFormat, width: number, height: number, seed: number, pad = 0): RefFrame {
  const stride = width * BYTES_PER_PIXEL[format] + pad;
  const rows = format === "nv12" ? height * 1.5 : height;
  const data = new Uint8Array(stride * rows);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  // A smooth ramp in the first rows too: resizing a smooth image and noise both matter.
  for (let i = 0; i < Math.min(data.length, stride * 2); i++) data[i] = (i * 7) & 255;
  return { data, format, width, height, stride };
}

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/** BT.601 YUV -> RGB in 14-bit fixed point (docs/preprocessing.md). */
export function yuvToRgb(y: number, u: number, v: number, video: boolean): [number, number, number] {
  const d = u - 128, e = v - 128;
  let r, g, b;
  if (video) {
    const c = (y - 16) * 19077;
    r = c + 26149 * e, g = c - 6419 * d - 13320 * e, b = c + 33050 * d;
  } else {
    const c = y * 16384;
    r = c + 22970 * e, g = c - 5638 * d - 11700 * e, b = c + 29032 * d;
  }
  return [clamp8((r + 8192) >> 14), clamp8((g + 8192) >> 14), clamp8((b + 8192) >> 14)];
}

/** One source pixel as three channels in the order the shim resamples in (BGR sources stay BGR). */
export function sourcePixel(f: RefFrame, x: number, y: number, video: boolean): [number, number, number] {
  const row = y * f.stride;
  const d = f.data;
  switch (f.format) {
    case "rgb":
    case "bgr":
      return [d[row + 3 * x], d[row + 3 * x + 1], d[row + 3 * x + 2]];
    case "rgba":
    case "bgra":
      return [d[row + 4 * x], d[row + 4 * x + 1], d[row + 4 * x + 2]];
    case "gray":
      return [d[row + x], d[row + x], d[row + x]];
    case "nv12": {
      const uv = f.stride * f.height + Math.floor(y / 2) * f.stride + (x - (x % 2));
      return yuvToRgb(d[row + x], d[uv], d[uv + 1], video);
    }
    case "yuyv": {
      const pair = row + 4 * Math.floor(x / 2);
      return yuvToRgb(d[row + 2 * x], d[pair + 1], d[pair + 3], video);
    }
  }
}

/** Taps of output coordinate i when n source values are resized to m: [first index, weights summing to 2048]. */
export function taps(n: number, m: number, i: number, area: boolean): { first: number; weights: number[] } {
  const scale = n / m;
  const count = Math.min(area ? Math.ceil(n / m) + 1 : 2, n);
  const weights = new Array<number>(count).fill(0);
  if (!area) {
    const s = (i + 0.5) * scale - 0.5;
    let k = Math.floor(s), f = s - k;
    if (k < 0) k = 0, f = 0;
    if (k >= n - 1) k = n - 1, f = 0;
    const w1 = Math.floor(f * 2048 + 0.5);
    const first = Math.min(k, n - count);
    weights[k - first] = 2048 - w1;
    if (w1) weights[k + 1 - first] = w1;
    return { first, weights };
  }
  const start = i * scale, end = (i + 1) * scale;
  const k0 = Math.floor(start), k1 = Math.min(Math.ceil(end), n);
  const first = Math.min(k0, n - count);
  let sum = 0, best = 0;
  for (let k = k0; k < k1; k++) {
    const w = Math.floor((Math.min(end, k + 1) - Math.max(start, k)) / scale * 2048 + 0.5);
    weights[k - first] = w;
    sum += w;
    if (w > weights[best]) best = k - first;
  }
  weights[best] += 2048 - sum;
  return { first, weights };
}

/** The letterbox of a cw x ch crop in a w x h region: the placed rectangle, relative to the region. */
export function letterboxRect(cw: number, ch: number, w: number, h: number): RefRect {
  const s = Math.min(w / cw, h / ch);
  const iw = Math.min(w, Math.max(1, Math.floor(cw * s + 0.5)));
  const ih = Math.min(h, Math.max(1, Math.floor(ch * s + 0.5)));
  return { x: Math.floor((w - iw) / 2), y: Math.floor((h - ih) / 2), width: iw, height: ih };
}

/**
 * The 8-bit, 3-channel image the shim writes into the region (packed rows of region.width
 * pixels), and where the frame went (relative to the region).
 */
export function refResample(f: RefFrame, g: RefGeometry, planeW: number, planeH: number): {
  rgb: Uint8Array;
  region: RefRect;
  placed: RefRect;
} {
  const crop = g.crop ?? { x: 0, y: 0, width: f.width, height: f.height };
  const region = g.into ?? { x: 0, y: 0, width: planeW, height: planeH };
  const placed = g.letterbox
    ? letterboxRect(crop.width, crop.height, region.width, region.height)
    : { x: 0, y: 0, width: region.width, height: region.height };
  const mode = g.resize ?? "auto";
  const areaX = mode === "area" || (mode === "auto" && crop.width >= 2 * placed.width);
  const areaY = mode === "area" || (mode === "auto" && crop.height >= 2 * placed.height);
  const video = g.sourceRange === "video";
  const pad = g.pad ?? [0, 0, 0];
  const rgb = new Uint8Array(region.width * region.height * 3);
  for (let y = 0; y < region.height; y++) {
    for (let x = 0; x < region.width; x++) {
      const o = (y * region.width + x) * 3;
      let ix = x - placed.x, iy = y - placed.y;
      if (ix < 0 || iy < 0 || ix >= placed.width || iy >= placed.height) {
        rgb.set(pad, o);
        continue;
      }
      if (g.rotate === 180) ix = placed.width - 1 - ix, iy = placed.height - 1 - iy;
      const tx = taps(crop.width, placed.width, ix, areaX);
      const ty = taps(crop.height, placed.height, iy, areaY);
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        ty.weights.forEach((wy, j) => {
          let h = 0;
          tx.weights.forEach((wx, i) => {
            h += wx * sourcePixel(f, crop.x + tx.first + i, crop.y + ty.first + j, video)[c];
          });
          acc += wy * h;
        });
        rgb[o + c] = (acc + (1 << 21)) >> 22;
      }
    }
  }
  return { rgb, region, placed };
}

/** BT.601 x 2^14 (shim/image.c's table): Y row, U row, V row; full and video range. */
const NV12_K = {
  full: { k: [4899, 9617, 1868, -2765, -5427, 8192, 8192, -6860, -1332], yBias: 0 },
  video: { k: [4207, 8260, 1604, -2428, -4768, 7196, 7196, -6026, -1170], yBias: 16 },
};

/** NV12 of packed 3-channel pixels (rows `stride` bytes apart), dense planes: Y (h*w) and interleaved UV (h/2 * w). */
export function refNv12(
  f: { data: Uint8Array; width: number; height: number; stride: number },
  format: "rgb" | "bgr",
  range: "full" | "video",
): { y: Uint8Array; uv: Uint8Array } {
  const { k, yBias } = NV12_K[range];
  const [ri, bi] = format === "rgb" ? [0, 2] : [2, 0];
  const y = new Uint8Array(f.width * f.height);
  const uv = new Uint8Array(f.width * f.height / 2);
  const px = (x: number, r: number) => {
    const o = r * f.stride + x * 3;
    return [f.data[o + ri], f.data[o + 1], f.data[o + bi]];
  };
  for (let r = 0; r < f.height; r++) {
    for (let x = 0; x < f.width; x++) {
      const [R, G, B] = px(x, r);
      y[r * f.width + x] = clamp8((k[0] * R + k[1] * G + k[2] * B + (yBias << 14) + (1 << 13)) >> 14);
    }
  }
  for (let r = 0; r < f.height / 2; r++) {
    for (let x = 0; x < f.width / 2; x++) {
      const s = [0, 0, 0];
      for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
        px(2 * x + dx, 2 * r + dy).forEach((v, c) => s[c] += v);
      }
      const add = (128 << 16) + (1 << 15);
      uv[r * f.width + 2 * x] = clamp8((k[3] * s[0] + k[4] * s[1] + k[5] * s[2] + add) >> 16);
      uv[r * f.width + 2 * x + 1] = clamp8((k[6] * s[0] + k[7] * s[1] + k[8] * s[2] + add) >> 16);
    }
  }
  return { y, uv };
}

/** (x - mean) / std in float32 as the shim computes it: x * fround(1/std) + fround(-mean/std). */
export function refNormalizeValue(x: number, mean: number, std: number): number {
  const mul = Math.fround(1 / Math.fround(std));
  const add = Math.fround(-Math.fround(mean) * mul);
  return Math.fround(Math.fround(x * mul) + add);
}
