/**
 * Camera frames into model inputs, converted by the shim straight into input memory: packed
 * RGB/BGR to NV12 (the Y and UV inputs of S100 "pyramid" image models) and to normalized
 * featuremaps (float32, float16, or quantized int8/uint8). With {@link GeometryOptions} (or a
 * source other than packed RGB/BGR) the same calls also convert RGBA/BGRA/GRAY/NV12/YUYV frames,
 * crop, resize, letterbox and rotate, into a region and batch index of the input, in one pass
 * (docs/preprocessing.md).
 *
 * An {@link ImageFeed} is a feed like a TypedArray: `model.run(feed)` and `model.runAsync(feed)`
 * convert it natively into the request that runs (for runAsync, when the run starts; the image
 * must stay unchanged until then). {@link writeNv12} and {@link writeNormalized} convert into the
 * inputs of the model's own request without running, for `model.run()` with no feeds.
 * @module
 */
import type { Handle, Native } from "../ffi/abi.ts";
import { check } from "../ffi/errors.ts";
import type { Feed, Model } from "./model.ts";
import { describeValue } from "./request.ts";
import { bytesOf } from "./dtype.ts";
import type { TensorInfo } from "./tensor.ts";
import { ER } from "../ffi/wire.ts";

/**
 * Channel order of a packed 8-bit image.
 *
 * @example
 * ```ts
 * import { type ImageFormat, nv12 } from "@edgerun/edgerun";
 * const format: ImageFormat = "bgr"; // OpenCV frames
 * const frame = nv12(new Uint8Array(64 * 48 * 3), { format, width: 64, height: 48 });
 * ```
 */
export type ImageFormat = "rgb" | "bgr";

/**
 * Memory layout of an image input: channels first or last; "auto" reads it from the shape.
 *
 * @example
 * ```ts
 * import { type ImageLayout, normalized } from "@edgerun/edgerun";
 * const layout: ImageLayout = "nhwc";
 * const feed = normalized(new Uint8Array(224 * 224 * 3), { format: "rgb", width: 224, height: 224, layout });
 * ```
 */
export type ImageLayout = "auto" | "nchw" | "nhwc";

/**
 * Pixel formats a frame may come in: the {@link ImageFormat}s plus 4-byte "rgba"/"bgra", 1-byte
 * "gray", and the YUV layouts cameras hand out, "nv12" and "yuyv" (BT.601, full range unless
 * `sourceRange: "video"`).
 *
 * @example
 * ```ts
 * import { normalized, type PixelFormat } from "@edgerun/edgerun";
 * const format: PixelFormat = "nv12"; // a camera's frame: 640x480 Y, then 640x240 interleaved UV
 * const feed = normalized(new Uint8Array(640 * 480 * 3 / 2), { format, width: 640, height: 480 });
 * ```
 */
export type PixelFormat = ImageFormat | "rgba" | "bgra" | "gray" | "nv12" | "yuyv";

/**
 * A rectangle in pixels.
 *
 * @example
 * ```ts
 * import { normalized, type Rect } from "@edgerun/edgerun";
 * const box: Rect = { x: 100, y: 40, width: 320, height: 48 };
 * const feed = normalized(new Uint8Array(640 * 480 * 3), { format: "rgb", width: 640, height: 480, crop: box });
 * ```
 */
export interface Rect {
  /**
   * Left column.
   *
   * @example
   * ```ts
   * import { type Rect } from "@edgerun/edgerun";
   * const r: Rect = { x: 8, y: 0, width: 16, height: 16 };
   * console.log(r.x);
   * ```
   */
  x: number;
  /**
   * Top row.
   *
   * @example
   * ```ts
   * import { type Rect } from "@edgerun/edgerun";
   * const r: Rect = { x: 0, y: 8, width: 16, height: 16 };
   * console.log(r.y);
   * ```
   */
  y: number;
  /**
   * Width in pixels (at least 1).
   *
   * @example
   * ```ts
   * import { type Rect } from "@edgerun/edgerun";
   * const r: Rect = { x: 0, y: 0, width: 16, height: 8 };
   * console.log(r.width);
   * ```
   */
  width: number;
  /**
   * Height in pixels (at least 1).
   *
   * @example
   * ```ts
   * import { type Rect } from "@edgerun/edgerun";
   * const r: Rect = { x: 0, y: 0, width: 16, height: 8 };
   * console.log(r.height);
   * ```
   */
  height: number;
}

/**
 * Geometry of a conversion, done by the shim in the same pass: crop the frame, resize it to the
 * destination region (bilinear with half-pixel centres as OpenCV's INTER_LINEAR; area averaging
 * where an axis shrinks 2x or more), letterbox it, rotate it by 180°, and write it into a region
 * and batch index of the input, leaving the rest of the input as it was.
 *
 * @example
 * ```ts
 * import { open, writeNormalized } from "@edgerun/edgerun";
 * using det = open("yolo.onnx"); // x: float32 [1, 3, 640, 640]
 * const frame = new Uint8Array(1280 * 720 * 3);
 * const placed = writeNormalized(det, frame, {
 *   format: "bgr", width: 1280, height: 720, channels: "rgb",
 *   letterbox: { pad: 114 }, std: [255, 255, 255],
 * });
 * console.log(placed.toSource(320, 320)); // a model coordinate back in the frame
 * ```
 */
export interface GeometryOptions {
  /**
   * The part of the frame to use (default all of it).
   *
   * @example
   * ```ts
   * import { normalized } from "@edgerun/edgerun";
   * const feed = normalized(new Uint8Array(64 * 64 * 3), { format: "rgb", width: 64, height: 64, crop: { x: 16, y: 16, width: 32, height: 32 } });
   * ```
   */
  crop?: Rect;
  /**
   * The region of the input's H x W plane to write (default all of it). For an input with
   * dynamic height or width, a feed gives it the size `into` reaches (else the crop's size).
   *
   * @example
   * ```ts
   * import { normalized } from "@edgerun/edgerun";
   * // a text line resized to 48 rows and 100 columns, in the left part of a [1,3,48,320] input
   * const feed = normalized(new Uint8Array(200 * 30 * 3), { format: "rgb", width: 200, height: 30, into: { x: 0, y: 0, width: 100, height: 48 } });
   * ```
   */
  into?: Rect;
  /**
   * Keep the aspect ratio: the crop is scaled to fit the region, centred, and the rest of the
   * region gets `pad` (a pixel value 0..255, or one per channel in the frame's channel order;
   * normalized like the image). Default false (stretch to the region).
   *
   * @example
   * ```ts
   * import { normalized } from "@edgerun/edgerun";
   * const feed = normalized(new Uint8Array(1280 * 720 * 3), { format: "rgb", width: 1280, height: 720, letterbox: { pad: 114 } });
   * ```
   */
  letterbox?: boolean | { pad?: number | readonly number[] };
  /**
   * Rotate the image by 180° (PP-OCR's text direction classifier says when). Default 0.
   *
   * @example
   * ```ts
   * import { normalized } from "@edgerun/edgerun";
   * const feed = normalized(new Uint8Array(192 * 48 * 3), { format: "rgb", width: 192, height: 48, rotate: 180 });
   * ```
   */
  rotate?: 0 | 180;
  /**
   * Resize kernel: "auto" (default; area averaging on an axis shrunk 2x or more, else bilinear),
   * "bilinear" or "area".
   *
   * @example
   * ```ts
   * import { normalized } from "@edgerun/edgerun";
   * const feed = normalized(new Uint8Array(64 * 64 * 3), { format: "rgb", width: 64, height: 64, resize: "bilinear", into: { x: 0, y: 0, width: 16, height: 16 } });
   * ```
   */
  resize?: "auto" | "bilinear" | "area";
  /**
   * Batch index of the input to write (default 0); the input's other items are left as they are.
   *
   * @example
   * ```ts
   * import { open, writeNormalized } from "@edgerun/edgerun";
   * using cls = open("cls.onnx");
   * cls.reshape({ x: [6, 3, 48, 192] });
   * const line = new Uint8Array(200 * 40 * 3);
   * for (let i = 0; i < 6; i++) writeNormalized(cls, line, { format: "rgb", width: 200, height: 40, batch: i });
   * ```
   */
  batch?: number;
  /**
   * YUV range of an "nv12" or "yuyv" frame: "full" (default; Y 0..255) or "video" (Y 16..235).
   *
   * @example
   * ```ts
   * import { normalized } from "@edgerun/edgerun";
   * const feed = normalized(new Uint8Array(64 * 48 * 2), { format: "yuyv", width: 64, height: 48, sourceRange: "video" });
   * ```
   */
  sourceRange?: "full" | "video";
}

/**
 * Where a converted frame went, to map model coordinates back to the frame: the image covers
 * `width` x `height` pixels at (`x`, `y`) of the input's plane, `scaleX` / `scaleY` input pixels per
 * frame pixel, from the crop at (`cropX`, `cropY`).
 *
 * @example
 * ```ts
 * import { open, type Placement, writeNormalized } from "@edgerun/edgerun";
 * using det = open("yolo.onnx");
 * const placed: Placement = writeNormalized(det, new Uint8Array(1280 * 720 * 3), {
 *   format: "rgb", width: 1280, height: 720, letterbox: { pad: 114 },
 * });
 * console.log(placed.scaleX, placed.y); // 0.5, 140
 * ```
 */
export interface Placement {
  /**
   * Left column of the image in the input.
   *
   * @example
   * ```ts
   * import { type Placement } from "@edgerun/edgerun";
   * declare const placed: Placement;
   * console.log(placed.x);
   * ```
   */
  readonly x: number;
  /**
   * Top row of the image in the input.
   *
   * @example
   * ```ts
   * import { type Placement } from "@edgerun/edgerun";
   * declare const placed: Placement;
   * console.log(placed.y);
   * ```
   */
  readonly y: number;
  /**
   * Width of the image in the input.
   *
   * @example
   * ```ts
   * import { type Placement } from "@edgerun/edgerun";
   * declare const placed: Placement;
   * console.log(placed.width);
   * ```
   */
  readonly width: number;
  /**
   * Height of the image in the input.
   *
   * @example
   * ```ts
   * import { type Placement } from "@edgerun/edgerun";
   * declare const placed: Placement;
   * console.log(placed.height);
   * ```
   */
  readonly height: number;
  /**
   * Input pixels per frame pixel, horizontally.
   *
   * @example
   * ```ts
   * import { type Placement } from "@edgerun/edgerun";
   * declare const placed: Placement;
   * console.log(placed.scaleX);
   * ```
   */
  readonly scaleX: number;
  /**
   * Input pixels per frame pixel, vertically.
   *
   * @example
   * ```ts
   * import { type Placement } from "@edgerun/edgerun";
   * declare const placed: Placement;
   * console.log(placed.scaleY);
   * ```
   */
  readonly scaleY: number;
  /**
   * Left column of the crop in the frame.
   *
   * @example
   * ```ts
   * import { type Placement } from "@edgerun/edgerun";
   * declare const placed: Placement;
   * console.log(placed.cropX);
   * ```
   */
  readonly cropX: number;
  /**
   * Top row of the crop in the frame.
   *
   * @example
   * ```ts
   * import { type Placement } from "@edgerun/edgerun";
   * declare const placed: Placement;
   * console.log(placed.cropY);
   * ```
   */
  readonly cropY: number;
  /**
   * The image was rotated by 180°.
   *
   * @example
   * ```ts
   * import { type Placement } from "@edgerun/edgerun";
   * declare const placed: Placement;
   * console.log(placed.rotated);
   * ```
   */
  readonly rotated: boolean;
  /**
   * A point of the input's plane (x right, y down, in pixels) in frame coordinates.
   *
   * @example
   * ```ts
   * import { type Placement } from "@edgerun/edgerun";
   * declare const placed: Placement;
   * const [fx, fy] = placed.toSource(320, 320);
   * ```
   */
  toSource(x: number, y: number): [number, number];
}

/**
 * Where the pixels are: packed 3-byte pixels, rows `stride` bytes apart.
 *
 * @example
 * ```ts
 * import { type ImageOptions, nv12 } from "@edgerun/edgerun";
 * // a 640x480 frame whose rows are padded to 2048 bytes
 * const where: ImageOptions = { format: "rgb", width: 640, height: 480, stride: 2048 };
 * const frame = nv12(new Uint8Array(2048 * 480), where);
 * ```
 */
export interface ImageOptions {
  /**
   * Pixel format of the image: packed "rgb"/"bgr" (3 bytes), "rgba"/"bgra" (4), "gray" (1),
   * "nv12" (Y rows, then interleaved UV rows at the same stride) or "yuyv" (Y0 U Y1 V).
   *
   * @example
   * ```ts
   * import { type ImageOptions } from "@edgerun/edgerun";
   * const options: ImageOptions = { format: "rgb", width: 640, height: 480, stride: 1920 };
   * console.log(options.format);
   * ```
   */
  format: PixelFormat;
  /**
   * Width in pixels.
   *
   * @example
   * ```ts
   * import { type ImageOptions } from "@edgerun/edgerun";
   * const options: ImageOptions = { format: "rgb", width: 640, height: 480, stride: 1920 };
   * console.log(options.width);
   * ```
   */
  width: number;
  /**
   * Height in pixels.
   *
   * @example
   * ```ts
   * import { type ImageOptions } from "@edgerun/edgerun";
   * const options: ImageOptions = { format: "rgb", width: 640, height: 480, stride: 1920 };
   * console.log(options.height);
   * ```
   */
  height: number;
  /**
   * Bytes from one row to the next (default width times the bytes of a pixel).
   *
   * @example
   * ```ts
   * import { type ImageOptions } from "@edgerun/edgerun";
   * const options: ImageOptions = { format: "rgb", width: 640, height: 480, stride: 1920 };
   * console.log(options.stride);
   * ```
   */
  stride?: number;
}

/**
 * Options of {@link nv12} and {@link writeNv12}.
 *
 * @example
 * ```ts
 * import { nv12, type Nv12Options } from "@edgerun/edgerun";
 * const options: Nv12Options = { format: "bgr", width: 640, height: 480, range: "video" };
 * const frame = nv12(new Uint8Array(640 * 480 * 3), options);
 * ```
 */
export interface Nv12Options extends ImageOptions, GeometryOptions {
  /**
   * YUV range the model was compiled for (Horizon's `input_space_and_range`): "full" (its
   * default "regular", 0..255) or "video" (`bt601_video`, Y 16..235). Default "full".
   *
   * @example
   * ```ts
   * import { nv12 } from "@edgerun/edgerun";
   * // a model compiled with input_space_and_range: bt601_video
   * const frame = nv12(new Uint8Array(64 * 48 * 3), { format: "rgb", width: 64, height: 48, range: "video" });
   * ```
   */
  range?: "full" | "video";
}

/**
 * Options of {@link normalized} and {@link writeNormalized}.
 *
 * @example
 * ```ts
 * import { normalized, type NormalizeOptions } from "@edgerun/edgerun";
 * const imagenet: NormalizeOptions = {
 *   format: "rgb", width: 224, height: 224,
 *   mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375],
 * };
 * const feed = normalized(new Uint8Array(224 * 224 * 3), imagenet);
 * ```
 */
export interface NormalizeOptions extends ImageOptions, GeometryOptions {
  /**
   * Per-channel mean in pixel units (0..255), in the input's channel order. Default [0, 0, 0].
   *
   * @example
   * ```ts
   * import { normalized } from "@edgerun/edgerun";
   * const feed = normalized(new Uint8Array(224 * 224 * 3), {
   *   format: "rgb", width: 224, height: 224,
   *   mean: [123.675, 116.28, 103.53],
   * });
   * ```
   */
  mean?: readonly number[];
  /**
   * Per-channel standard deviation in pixel units, in the input's channel order. Default [1, 1, 1].
   *
   * @example
   * ```ts
   * import { normalized } from "@edgerun/edgerun";
   * const feed = normalized(new Uint8Array(224 * 224 * 3), {
   *   format: "rgb", width: 224, height: 224,
   *   std: [58.395, 57.12, 57.375],
   * });
   * ```
   */
  std?: readonly number[];
  /**
   * Channel order the model expects (default: the image's `format`); the other swaps R and B.
   *
   * @example
   * ```ts
   * import { normalized } from "@edgerun/edgerun";
   * const feed = normalized(new Uint8Array(224 * 224 * 3), {
   *   format: "rgb", width: 224, height: 224,
   *   channels: "bgr" // a BGR-trained model fed RGB frames,
   * });
   * ```
   */
  channels?: ImageFormat;
  /**
   * Layout of the input tensor (default "auto": [1,3,H,W] is NCHW, [1,H,W,3] is NHWC).
   *
   * @example
   * ```ts
   * import { normalized } from "@edgerun/edgerun";
   * const feed = normalized(new Uint8Array(224 * 224 * 3), {
   *   format: "rgb", width: 224, height: 224,
   *   layout: "nchw",
   * });
   * ```
   */
  layout?: ImageLayout;
}

const FORMAT = { rgb: ER.IMAGE_RGB, bgr: ER.IMAGE_BGR } as const;
/** ER_PIX_* of shim/include/edgerun.h, and bytes a pixel (NV12: of the Y plane). */
const PIXEL = {
  rgb: [ER.PIX_RGB, 3],
  bgr: [ER.PIX_BGR, 3],
  rgba: [ER.PIX_RGBA, 4],
  bgra: [ER.PIX_BGRA, 4],
  gray: [ER.PIX_GRAY, 1],
  nv12: [ER.PIX_NV12, 1],
  yuyv: [ER.PIX_YUYV, 2],
} as const;
const LAYOUT = { auto: ER.LAYOUT_AUTO, nchw: ER.LAYOUT_NCHW, nhwc: ER.LAYOUT_NHWC } as const;
const RESIZE = { auto: ER.RESIZE_AUTO, bilinear: ER.RESIZE_BILINEAR, area: ER.RESIZE_AREA } as const;
const { NV12_VIDEO_RANGE, NORM_SWAP_CHANNELS: SWAP_CHANNELS, NO_INPUT } = ER;
// er_request_write_image's flags and geometry words.
const { IMG_NV12_VIDEO, IMG_SOURCE_VIDEO, IMG_LETTERBOX, IMG_ROTATE_180, IMG_RESIZE_SHIFT } = ER;
const { GEO_WORDS, GEO_CROP, GEO_REGION, GEO_PLACED, GEO_BATCH, GEO_PAD } = ER;
const IMAGE_KEYS = ["format", "width", "height", "stride"];
const GEOMETRY_KEYS = ["crop", "into", "letterbox", "rotate", "resize", "batch", "sourceRange"];
const NV12_KEYS = new Set([...IMAGE_KEYS, ...GEOMETRY_KEYS, "range"]);
const NORMALIZE_KEYS = new Set([...IMAGE_KEYS, ...GEOMETRY_KEYS, "mean", "std", "channels", "layout"]);

/**
 * An image to convert natively into model inputs when a run starts: feed it like a TypedArray.
 * Made by {@link nv12} (feeds the Y and UV inputs: pass it for both, or alone to a model with
 * just those two inputs) or {@link normalized} (feeds one input).
 *
 * @example
 * ```ts
 * import { nv12, open } from "@edgerun/edgerun";
 * using detector = open("yolo_nv12.hbm");
 * const rgb = new Uint8Array(640 * 640 * 3); // a camera frame
 * const frame = nv12(rgb, { format: "rgb", width: 640, height: 640 });
 * const outputs = await detector.runAsync(frame);
 * console.log(outputs[0].shape);
 * ```
 */
export interface ImageFeed {
  /**
   * "nv12" (two inputs, Y and UV) or "normalized" (one input).
   *
   * @example
   * ```ts
   * import { type ImageFeed, nv12 } from "@edgerun/edgerun";
   * const frame: ImageFeed = nv12(new Uint8Array(64 * 48 * 3), { format: "rgb", width: 64, height: 48 });
   * console.log(frame.kind);
   * ```
   */
  readonly kind: "nv12" | "normalized";
  /**
   * The pixels (read by the shim when the run starts).
   *
   * @example
   * ```ts
   * import { type ImageFeed, nv12 } from "@edgerun/edgerun";
   * const frame: ImageFeed = nv12(new Uint8Array(64 * 48 * 3), { format: "rgb", width: 64, height: 48 });
   * console.log(frame.data.byteLength);
   * ```
   */
  readonly data: Uint8Array;
  /**
   * Width in pixels.
   *
   * @example
   * ```ts
   * import { type ImageFeed, nv12 } from "@edgerun/edgerun";
   * const frame: ImageFeed = nv12(new Uint8Array(64 * 48 * 3), { format: "rgb", width: 64, height: 48 });
   * console.log(frame.width);
   * ```
   */
  readonly width: number;
  /**
   * Height in pixels.
   *
   * @example
   * ```ts
   * import { type ImageFeed, nv12 } from "@edgerun/edgerun";
   * const frame: ImageFeed = nv12(new Uint8Array(64 * 48 * 3), { format: "rgb", width: 64, height: 48 });
   * console.log(frame.height);
   * ```
   */
  readonly height: number;
  /**
   * Bytes from one row to the next.
   *
   * @example
   * ```ts
   * import { type ImageFeed, nv12 } from "@edgerun/edgerun";
   * const frame: ImageFeed = nv12(new Uint8Array(64 * 48 * 3), { format: "rgb", width: 64, height: 48 });
   * console.log(frame.stride);
   * ```
   */
  readonly stride: number;
  /**
   * Where the last conversion of this feed put the image in its input (undefined before the
   * first run that used it), to map model coordinates back to the frame.
   *
   * @example
   * ```ts
   * import { normalized, open } from "@edgerun/edgerun";
   * using det = open("det.onnx");
   * const feed = normalized(new Uint8Array(1280 * 720 * 3), { format: "rgb", width: 1280, height: 720, letterbox: true });
   * det.run(feed);
   * console.log(feed.placement?.toSource(0, 0));
   * ```
   */
  readonly placement: Placement | undefined;
}

type Checked = { data: Uint8Array; format: PixelFormat; width: number; height: number; stride: number };

/** Geometry of a preprocessing feed: er_request_write_image's words before the input resolves them. */
interface Geometry {
  words: Uint32Array;
  flags: number;
  crop: Rect;
  into?: Rect;
  rotated: boolean;
}

/** The implementation behind {@link ImageFeed}: what the native call needs. */
class NativeImage implements ImageFeed {
  readonly kind: "nv12" | "normalized";
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly #format: number;
  readonly #flags: number;
  readonly #meanStd: Float32Array | null;
  readonly #layout: ImageLayout;
  readonly #geometry: Geometry | null;
  /** Shapes dynamic inputs keep, by role (writeNormalized / writeNv12 into inputs already shaped). */
  readonly #shapes: Partial<Record<"y" | "uv" | "image", readonly number[]>>;
  #placement: Placement | undefined;

  constructor(
    kind: "nv12" | "normalized",
    image: { data: Uint8Array; width: number; height: number; stride: number },
    format: number,
    flags: number,
    meanStd: Float32Array | null,
    layout: ImageLayout,
    geometry: Geometry | null,
    shapes: Partial<Record<"y" | "uv" | "image", readonly number[]>> = {},
  ) {
    this.kind = kind;
    this.data = image.data;
    this.width = image.width;
    this.height = image.height;
    this.stride = image.stride;
    this.#format = format;
    this.#flags = flags;
    this.#meanStd = meanStd;
    this.#layout = layout;
    this.#geometry = geometry;
    this.#shapes = shapes;
    Object.freeze(this);
  }

  get placement(): Placement | undefined {
    return this.#placement;
  }

  /**
   * The shape an input with dynamic dimensions takes from this image: Y [1,H,W,1],
   * UV [1,H/2,W/2,2], or the image in the input's layout; with geometry, H x W is the extent of
   * `into` (else the crop), and the batch holds the batch index.
   */
  shapeFor(info: TensorInfo, role: "y" | "uv" | "image"): readonly number[] {
    const kept = this.#shapes[role];
    if (kept) return kept;
    const g = this.#geometry;
    const extent = g?.into ?? g?.crop;
    const w = extent ? extent.x * (g?.into ? 1 : 0) + extent.width : this.width;
    const h = extent ? extent.y * (g?.into ? 1 : 0) + extent.height : this.height;
    const n = g ? g.words[GEO_BATCH] + 1 : 1;
    if (role === "y") return [n, h, w, 1];
    if (role === "uv") return [n, h / 2, w / 2, 2];
    const rank = info.shape.length;
    const lead = rank === 4 ? [n] : [];
    const nhwc = this.#layout === "nhwc" ||
      (this.#layout === "auto" && info.shape[rank - 3] !== 3 && info.shape[rank - 1] === 3);
    return nhwc ? [...lead, h, w, 3] : [...lead, 3, h, w];
  }

  /** Converts into input `index` of a request (NV12: `partner` is the UV input). */
  writeTo(native: Native, request: Handle, index: number, partner: number): void {
    const s = native.symbols;
    const { data, width, height, stride } = this;
    const g = this.#geometry;
    if (g) {
      const words = g.words.slice(); // the shim writes the resolved rectangles back
      const uv = this.kind === "nv12" ? partner : NO_INPUT;
      check(native, s.er_request_write_image(request, index, uv, data, data.byteLength, words, g.flags, this.#meanStd));
      this.#placement = placement(words, g.rotated);
    } else if (this.kind === "nv12") {
      check(native, s.er_request_write_nv12(request, index, partner, data, data.byteLength, width, height, stride, this.#format, this.#flags));
      this.#placement = placement(Uint32Array.of(0, 0, 0, 0, 0, 0, width, height, 0, 0, width, height, 0, 0, width, height), false);
    } else {
      check(native, s.er_request_write_normalized(request, index, data, data.byteLength, width, height, stride, this.#flags, this.#meanStd));
      this.#placement = placement(Uint32Array.of(0, 0, 0, 0, 0, 0, width, height, 0, 0, width, height, 0, 0, width, height), false);
    }
  }

  /**
   * The same feed, but dynamic inputs already given a full shape keep it (the region defaults
   * to all of it) instead of taking the feed's own. Plain conversions take the image's size.
   */
  keeping(model: Model, roles: Partial<Record<"y" | "uv" | "image", string>>): NativeImage {
    if (!this.#geometry) return this;
    const shapes: Partial<Record<"y" | "uv" | "image", readonly number[]>> = {};
    for (const [role, name] of Object.entries(roles) as ["y" | "uv" | "image", string][]) {
      const input = model.inputs.find((i) => i.name === name);
      if (input && input.shape.every((d) => d >= 0)) shapes[role] = input.shape;
    }
    return new NativeImage(this.kind, this, this.#format, this.#flags, this.#meanStd, this.#layout, this.#geometry, shapes);
  }
}

function placement(w: Uint32Array, rotated: boolean): Placement {
  const [x, y, width, height] = w.subarray(GEO_PLACED, GEO_PLACED + 4);
  const cropX = w[GEO_CROP], cropY = w[GEO_CROP + 1], cw = w[GEO_CROP + 2], ch = w[GEO_CROP + 3];
  const scaleX = width / cw, scaleY = height / ch;
  return Object.freeze({
    x,
    y,
    width,
    height,
    scaleX,
    scaleY,
    cropX,
    cropY,
    rotated,
    toSource(px: number, py: number): [number, number] {
      const u = (px - x) / scaleX, v = (py - y) / scaleY;
      return rotated ? [cropX + cw - u, cropY + ch - v] : [cropX + u, cropY + v];
    },
  });
}
/** True for feeds made by {@link nv12} or {@link normalized}. */
export function isImageFeed(v: unknown): v is ImageFeed {
  return v instanceof NativeImage;
}

function checkImage(image: unknown, options: unknown, keys: Set<string>, what: string): Checked {
  if (!(image instanceof Uint8Array || image instanceof Uint8ClampedArray)) {
    throw new TypeError(`${what}: the image must be a Uint8Array of packed pixels, got ${describeValue(image)}`);
  }
  if (typeof options !== "object" || options === null) throw new TypeError(`${what}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (!keys.has(key)) throw new TypeError(`${what}: unknown option '${key}'; known: ${[...keys].join(", ")}`);
  }
  const o = options as ImageOptions;
  if (typeof o.format !== "string" || !Object.hasOwn(PIXEL, o.format)) {
    throw new RangeError(`${what}: format must be one of ${Object.keys(PIXEL).join(", ")}, got ${JSON.stringify(o.format)}`);
  }
  for (const key of ["width", "height"] as const) {
    const v = o[key];
    if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) throw new RangeError(`${what}: ${key} must be a positive integer, got ${v}`);
  }
  const bpp = PIXEL[o.format][1];
  const stride = o.stride ?? o.width * bpp;
  if (!Number.isInteger(stride) || stride < o.width * bpp || stride > 0xffffffff) {
    throw new RangeError(`${what}: stride must be an integer >= width * ${bpp} (${o.width * bpp}), got ${o.stride}`);
  }
  if (o.format === "nv12" && (o.width % 2 || o.height % 2)) {
    throw new RangeError(`${what}: an nv12 frame has an even width and height, got ${o.width}x${o.height}`);
  }
  if (o.format === "yuyv" && o.width % 2) throw new RangeError(`${what}: a yuyv frame has an even width, got ${o.width}`);
  const rows = o.format === "nv12" ? o.height * 1.5 : o.height;
  const need = stride * (rows - 1) + o.width * bpp;
  // A plain view of the caller's bytes: lengths passed to native code come from the engine, never
  // from properties the caller's array may shadow.
  const data = bytesOf(image);
  if (data.byteLength < need) {
    throw new RangeError(
      `${what}: a ${o.width}x${o.height} ${o.format} image at a row stride of ${stride} needs ${need} bytes, got ${data.byteLength}`,
    );
  }
  if (need > 0xffffffff) throw new RangeError(`${what}: the image is larger than 4 GiB`);
  return { data, format: o.format, width: o.width, height: o.height, stride };
}

function checkRect(r: unknown, name: string, what: string): Rect | undefined {
  if (r === undefined) return undefined;
  const rect = r as Rect;
  if (typeof r !== "object" || r === null || ["x", "y", "width", "height"].some((k) => !Number.isInteger(rect[k as keyof Rect]))) {
    throw new TypeError(`${what}: ${name} must be { x, y, width, height } in whole pixels`);
  }
  if (rect.x < 0 || rect.y < 0 || rect.width < 1 || rect.height < 1 || rect.x + rect.width > 0xffff_ffff || rect.y + rect.height > 0xffff_ffff) {
    throw new RangeError(`${what}: ${name} needs x, y >= 0 and width, height >= 1, got ${JSON.stringify(r)}`);
  }
  return { x: rect.x, y: rect.y, width: rect.width, height: rect.height };
}

/** Geometry options (or a format only the shim's resampler reads) -> er_request_write_image's words and flags; null if none. */
function checkGeometry(image: Checked, o: GeometryOptions, what: string): Geometry | null {
  const used = GEOMETRY_KEYS.some((k) => Object.hasOwn(o, k) && (o as Record<string, unknown>)[k] !== undefined);
  if (!used && (image.format === "rgb" || image.format === "bgr")) return null;
  const crop = checkRect(o.crop, "crop", what) ?? { x: 0, y: 0, width: image.width, height: image.height };
  if (crop.x + crop.width > image.width || crop.y + crop.height > image.height) {
    throw new RangeError(`${what}: crop ${JSON.stringify(crop)} does not fit in the ${image.width}x${image.height} image`);
  }
  const into = checkRect(o.into, "into", what);
  const rotate = o.rotate ?? 0;
  if (rotate !== 0 && rotate !== 180) throw new RangeError(`${what}: rotate must be 0 or 180, got ${JSON.stringify(rotate)}`);
  const resize = o.resize ?? "auto";
  if (!Object.hasOwn(RESIZE, resize)) throw new RangeError(`${what}: resize must be "auto", "bilinear" or "area", got ${JSON.stringify(resize)}`);
  const batch = o.batch ?? 0;
  if (!Number.isInteger(batch) || batch < 0 || batch > 0xffff_ffff) throw new RangeError(`${what}: batch must be a non-negative integer, got ${batch}`);
  const range = o.sourceRange ?? "full";
  if (range !== "full" && range !== "video") throw new RangeError(`${what}: sourceRange must be "full" or "video", got ${JSON.stringify(range)}`);
  const box = o.letterbox ?? false;
  if (typeof box !== "boolean" && (typeof box !== "object" || box === null)) {
    throw new TypeError(`${what}: letterbox must be true, false or { pad }`);
  }
  const padOption = typeof box === "object" ? box.pad ?? 0 : 0;
  const pad = typeof padOption === "number" ? [padOption, padOption, padOption] : padOption;
  if (!Array.isArray(pad) || pad.length !== 3 || pad.some((v) => !Number.isInteger(v) || v < 0 || v > 255)) {
    throw new RangeError(`${what}: letterbox pad must be an integer 0..255 or three of them, got ${JSON.stringify(padOption)}`);
  }
  const words = new Uint32Array(GEO_WORDS);
  words.set([PIXEL[image.format][0], image.width, image.height, image.stride]);
  words.set([crop.x, crop.y, crop.width, crop.height], GEO_CROP);
  if (into) words.set([into.x, into.y, into.width, into.height], GEO_REGION);
  words[GEO_BATCH] = batch;
  words[GEO_PAD] = pad[0] | pad[1] << 8 | pad[2] << 16;
  const flags = (box === false ? 0 : IMG_LETTERBOX) | (rotate === 180 ? IMG_ROTATE_180 : 0) |
    (range === "video" ? IMG_SOURCE_VIDEO : 0) | RESIZE[resize] << IMG_RESIZE_SHIFT;
  return { words, flags, crop, into, rotated: rotate === 180 };
}

/** The channel order of the 3-channel image the shim resamples to: BGR sources stay BGR, the others give RGB. */
function resampledOrder(format: PixelFormat): ImageFormat {
  return format === "bgr" || format === "bgra" ? "bgr" : "rgb";
}

/**
 * An NV12 feed from a frame: BT.601 in 14-bit fixed point, chroma the mean of each 2x2 block,
 * full range unless `range: "video"`. The model's Y input is [1,H,W,1] and its UV input
 * [1,H/2,W/2,2], both uint8; padded rows are honoured and their padding left untouched. A packed
 * RGB/BGR frame of the input's size converts directly (width and height even, as the Horizon
 * toolchain requires of NV12 inputs); with {@link GeometryOptions} or another pixel format it is
 * first resized to the region (even x, y, width and height), then converted.
 *
 * @example
 * ```ts
 * import { nv12, open } from "@edgerun/edgerun";
 * using model = open("mobilenet_nv12.hbm");
 * const rgb = new Uint8Array(224 * 224 * 3);
 * const frame = nv12(rgb, { format: "rgb", width: 224, height: 224 });
 * const [logits] = model.run(frame);                            // Y and UV are the only inputs
 * const again = model.run({ y: frame, uv: frame, extra: new Float32Array(4) }); // or name both
 * const camera = nv12(new Uint8Array(1280 * 720 * 2), { format: "yuyv", width: 1280, height: 720, letterbox: true });
 * console.log(logits.shape, again.length, model.run(camera).length);
 * ```
 */
export function nv12(image: Uint8Array, options: Nv12Options): ImageFeed {
  const checked = checkImage(image, options, NV12_KEYS, "nv12");
  const range = options.range ?? "full";
  if (range !== "full" && range !== "video") throw new RangeError(`nv12: range must be "full" or "video", got ${JSON.stringify(range)}`);
  const geometry = checkGeometry(checked, options, "nv12");
  if (geometry) {
    geometry.flags |= range === "video" ? IMG_NV12_VIDEO : 0;
    return new NativeImage("nv12", checked, 0, 0, null, "auto", geometry);
  }
  if (checked.width % 2 !== 0 || checked.height % 2 !== 0) {
    throw new RangeError(`nv12: width and height must be even, got ${checked.width}x${checked.height}`);
  }
  return new NativeImage("nv12", checked, FORMAT[checked.format as ImageFormat], range === "video" ? NV12_VIDEO_RANGE : 0, null, "auto", null);
}

function channelValues(v: readonly number[] | undefined, fallback: number, name: string): number[] {
  if (v === undefined) return [fallback, fallback, fallback];
  if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
    throw new RangeError(`normalized: ${name} must be 3 finite numbers (one per channel), got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * A normalized feed from a frame: each value becomes (x - mean[c]) / std[c], computed as
 * x * (1 / std) + (-mean / std) in float32, and is stored as the input's type: float32, float16,
 * or int8/uint8 quantized with the input's scale and zero point (round half to even). The input
 * is [1,3,H,W] (NCHW) or [1,H,W,3] (NHWC), batch dimension optional. A packed RGB/BGR frame of
 * the input's size converts directly; with {@link GeometryOptions} or another pixel format it is
 * first resampled to 8-bit pixels at the region's size (then int8/uint8 inputs without
 * quantization parameters take the values as they are), into any batch index.
 *
 * @example
 * ```ts
 * import { normalized, open } from "@edgerun/edgerun";
 * using model = open("resnet.onnx");
 * const rgb = new Uint8Array(224 * 224 * 3);
 * const [logits] = model.run(normalized(rgb, {
 *   format: "rgb", width: 224, height: 224,
 *   mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375],
 * }));
 * const camera = new Uint8Array(1920 * 1080 * 3 / 2); // NV12, any size: resized to 224x224
 * model.run(normalized(camera, { format: "nv12", width: 1920, height: 1080, crop: { x: 420, y: 0, width: 1080, height: 1080 } }));
 * console.log(logits.shape);
 * ```
 */
export function normalized(image: Uint8Array, options: NormalizeOptions): ImageFeed {
  const checked = checkImage(image, options, NORMALIZE_KEYS, "normalized");
  const mean = channelValues(options.mean, 0, "mean");
  const std = channelValues(options.std, 1, "std");
  if (std.some((s) => s === 0)) throw new RangeError(`normalized: std must not be 0, got ${JSON.stringify(std)}`);
  const geometry = checkGeometry(checked, options, "normalized");
  const order = geometry ? resampledOrder(checked.format) : checked.format as ImageFormat;
  const channels = options.channels ?? order;
  if (!(channels in FORMAT)) throw new RangeError(`normalized: channels must be "rgb" or "bgr", got ${JSON.stringify(channels)}`);
  const layout = options.layout ?? "auto";
  if (!(layout in LAYOUT)) throw new RangeError(`normalized: layout must be "auto", "nchw" or "nhwc", got ${JSON.stringify(layout)}`);
  const flags = LAYOUT[layout] | (channels !== order ? SWAP_CHANNELS : 0);
  const meanStd = Float32Array.from([...mean, ...std]);
  if (geometry) {
    geometry.flags |= flags;
    return new NativeImage("normalized", checked, 0, 0, meanStd, layout, geometry);
  }
  return new NativeImage("normalized", checked, FORMAT[order], flags, meanStd, layout, null);
}

/** How an image feed binds to one input. */
export interface ImageBinding {
  feed: NativeImage;
  /** "y" writes both planes (partner = the UV input); "uv" is written by its Y partner. */
  role: "y" | "uv" | "image";
  partner: number;
}

/**
 * @internal Binds the image feed at `index` of a feed list: an NV12 feed must be given to exactly
 * two inputs, the Y input ([..,1] last) and the UV input ([..,2] last).
 */
export function bindImage(inputs: readonly TensorInfo[], list: readonly unknown[], index: number): ImageBinding {
  const feed = list[index] as NativeImage;
  const name = inputs[index].name;
  if (feed.kind === "normalized") {
    const again = list.findIndex((f, j) => f === feed && j !== index);
    if (again >= 0) throw new TypeError(`a normalized image feeds one input, got it for '${name}' and '${inputs[again].name}'`);
    return { feed, role: "image", partner: -1 };
  }
  const uses = list.flatMap((f, j) => f === feed ? [j] : []);
  if (uses.length !== 2) {
    throw new TypeError(
      `an NV12 frame feeds two inputs (Y and UV), got it for ${uses.map((j) => `'${inputs[j].name}'`).join(", ")}: ` +
        "pass the same frame for both",
    );
  }
  const partner = uses[0] === index ? uses[1] : uses[0];
  const last = (i: number) => inputs[i].shape[inputs[i].shape.length - 1];
  const role = last(index) === 1 && last(partner) === 2 ? "y" : last(index) === 2 && last(partner) === 1 ? "uv" : null;
  if (!role) {
    throw new TypeError(
      `an NV12 frame needs a Y input [1,H,W,1] and a UV input [1,H/2,W/2,2]; '${name}' and '${inputs[partner].name}' are not`,
    );
  }
  return { feed, role, partner };
}

/** The NV12 pair of a model: the uint8 inputs [1,H,W,1] and [1,H/2,W/2,2]. */
function findNv12Pair(model: Model): [string, string] {
  const ins = model.inputs;
  const planes = (c: number) => ins.filter((i) => i.dtype === "uint8" && i.shape.length === 4 && i.shape[3] === c);
  const ys = planes(1);
  const uvs = planes(2);
  if (ys.length === 1 && uvs.length === 1) return [ys[0].name, uvs[0].name];
  throw new TypeError(
    `cannot tell model '${model.name}''s NV12 inputs apart (inputs: ${ins.map((i) => i.name).join(", ")}): ` +
      "run it with { yName: frame, uvName: frame }",
  );
}

/**
 * Converts a frame to NV12 straight into the Y and UV inputs of the model's own request (see
 * {@link nv12} for the conversion); `model.run()` with no feeds then uses them. The model must
 * have one uint8 [N,H,W,1] and one uint8 [N,H/2,W/2,2] input. Returns where the image went.
 *
 * @example
 * ```ts
 * import { open, writeNv12 } from "@edgerun/edgerun";
 * using model = open("yolo_nv12.hbm");
 * const bgr = new Uint8Array(640 * 640 * 3);
 * writeNv12(model, bgr, { format: "bgr", width: 640, height: 640 });
 * const camera = new Uint8Array(1920 * 1080 * 3 / 2);
 * const placed = writeNv12(model, camera, { format: "nv12", width: 1920, height: 1080, letterbox: { pad: 114 } });
 * console.log(model.run().length, placed.toSource(0, 320));
 * ```
 */
export function writeNv12(model: Model, image: Uint8Array, options: Nv12Options): Placement {
  const [y, uv] = findNv12Pair(model);
  const feed = (nv12(image, options) as NativeImage).keeping(model, { y, uv });
  model.writeInputs({ [y]: feed, [uv]: feed });
  return feed.placement!;
}

/**
 * Normalizes a frame straight into an input of the model's own request (see {@link normalized});
 * `model.run()` with no feeds then uses it. `input` names the input when the model has several
 * (default: the only one). With {@link GeometryOptions}, an input shaped by
 * {@link Model.reshape} keeps its shape: the frame is resized into it (or into `into`) at
 * `batch`, and the rest of the input keeps its values. Returns where the image went.
 *
 * @example
 * ```ts
 * import { open, writeNormalized } from "@edgerun/edgerun";
 * using model = open("cls.onnx");
 * const rgb = new Uint8Array(48 * 192 * 3);
 * writeNormalized(model, rgb, { format: "rgb", width: 192, height: 48, mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] });
 * console.log(model.run()[0].shape);
 * ```
 */
export function writeNormalized(model: Model, image: Uint8Array, options: NormalizeOptions & { input?: string }): Placement {
  const { input, ...rest } = options ?? {};
  const name = input ?? (model.inputs.length === 1 ? model.inputs[0].name : undefined);
  if (name === undefined) {
    throw new TypeError(
      `model '${model.name}' has ${model.inputs.length} inputs (${model.inputs.map((i) => i.name).join(", ")}): name one with { input }`,
    );
  }
  const feed = (normalized(image, rest as NormalizeOptions) as NativeImage).keeping(model, { image: name });
  const feeds: Record<string, Feed> = { [name]: feed };
  model.writeInputs(feeds);
  return feed.placement!;
}
