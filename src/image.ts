/**
 * Camera frames into model inputs, converted by the shim straight into input memory: packed
 * RGB/BGR to NV12 (the Y and UV inputs of S100 "pyramid" image models) and to normalized
 * featuremaps (float32, float16, or quantized int8/uint8).
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
   * Channel order of the image's pixels.
   *
   * @example
   * ```ts
   * import { type ImageOptions } from "@edgerun/edgerun";
   * const options: ImageOptions = { format: "rgb", width: 640, height: 480, stride: 1920 };
   * console.log(options.format);
   * ```
   */
  format: ImageFormat;
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
   * Bytes from one row to the next (default width * 3).
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
export interface Nv12Options extends ImageOptions {
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
export interface NormalizeOptions extends ImageOptions {
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

const FORMAT = { rgb: 0, bgr: 1 } as const;
const LAYOUT = { auto: 0, nchw: 1, nhwc: 2 } as const;
const NV12_VIDEO_RANGE = 1;
const SWAP_CHANNELS = 4;
const IMAGE_KEYS = ["format", "width", "height", "stride"];
const NV12_KEYS = new Set([...IMAGE_KEYS, "range"]);
const NORMALIZE_KEYS = new Set([...IMAGE_KEYS, "mean", "std", "channels", "layout"]);

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

  constructor(
    kind: "nv12" | "normalized",
    image: ImageOptions & { data: Uint8Array; stride: number },
    flags: number,
    meanStd: Float32Array | null,
    layout: ImageLayout,
  ) {
    this.kind = kind;
    this.data = image.data;
    this.width = image.width;
    this.height = image.height;
    this.stride = image.stride;
    this.#format = FORMAT[image.format];
    this.#flags = flags;
    this.#meanStd = meanStd;
    this.#layout = layout;
    Object.freeze(this);
  }

  /**
   * The shape an input with dynamic dimensions takes from this image: Y [1,H,W,1],
   * UV [1,H/2,W/2,2], or the image in the input's layout.
   */
  shapeFor(info: TensorInfo, role: "y" | "uv" | "image"): readonly number[] {
    const { width: w, height: h } = this;
    if (role === "y") return [1, h, w, 1];
    if (role === "uv") return [1, h / 2, w / 2, 2];
    const rank = info.shape.length;
    const lead = rank === 4 ? [1] : [];
    const nhwc = this.#layout === "nhwc" ||
      (this.#layout === "auto" && info.shape[rank - 3] !== 3 && info.shape[rank - 1] === 3);
    return nhwc ? [...lead, h, w, 3] : [...lead, 3, h, w];
  }

  /** Converts into input `index` of a request (NV12: `partner` is the UV input). */
  writeTo(native: Native, request: Handle, index: number, partner: number): void {
    const s = native.symbols;
    const { data, width, height, stride } = this;
    if (this.kind === "nv12") {
      check(native, s.er_request_write_nv12(request, index, partner, data, data.byteLength, width, height, stride, this.#format, this.#flags));
    } else {
      check(native, s.er_request_write_normalized(request, index, data, data.byteLength, width, height, stride, this.#flags, this.#meanStd));
    }
  }
}

/** True for feeds made by {@link nv12} or {@link normalized}. */
export function isImageFeed(v: unknown): v is ImageFeed {
  return v instanceof NativeImage;
}

function checkImage(
  image: unknown,
  options: unknown,
  keys: Set<string>,
  what: string,
): ImageOptions & { data: Uint8Array; stride: number } {
  if (!(image instanceof Uint8Array || image instanceof Uint8ClampedArray)) {
    throw new TypeError(`${what}: the image must be a Uint8Array of packed pixels, got ${describeValue(image)}`);
  }
  if (typeof options !== "object" || options === null) throw new TypeError(`${what}: options must be an object`);
  for (const key of Object.keys(options)) {
    if (!keys.has(key)) throw new TypeError(`${what}: unknown option '${key}'; known: ${[...keys].join(", ")}`);
  }
  const o = options as ImageOptions;
  if (typeof o.format !== "string" || !Object.hasOwn(FORMAT, o.format)) throw new RangeError(`${what}: format must be "rgb" or "bgr", got ${JSON.stringify(o.format)}`);
  for (const key of ["width", "height"] as const) {
    const v = o[key];
    if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) throw new RangeError(`${what}: ${key} must be a positive integer, got ${v}`);
  }
  const stride = o.stride ?? o.width * 3;
  if (!Number.isInteger(stride) || stride < o.width * 3 || stride > 0xffffffff) {
    throw new RangeError(`${what}: stride must be an integer >= width * 3 (${o.width * 3}), got ${o.stride}`);
  }
  const need = stride * (o.height - 1) + o.width * 3;
  // A plain view of the caller's bytes: lengths passed to native code come from the engine, never
  // from properties the caller's array may shadow.
  const data = bytesOf(image);
  if (data.byteLength < need) {
    throw new RangeError(
      `${what}: a ${o.width}x${o.height} image at a row stride of ${stride} needs ${need} bytes, got ${data.byteLength}`,
    );
  }
  if (need > 0xffffffff) throw new RangeError(`${what}: the image is larger than 4 GiB`);
  return { data, format: o.format, width: o.width, height: o.height, stride };
}

/**
 * An NV12 feed from a packed RGB or BGR frame: BT.601 in 14-bit fixed point, chroma the mean of
 * each 2x2 block, full range unless `range: "video"`. Width and height must be even (as the
 * Horizon toolchain requires of NV12 inputs). The model's Y input is [1,H,W,1] and its UV input
 * [1,H/2,W/2,2], both uint8; padded rows are honoured and their padding left untouched.
 *
 * @example
 * ```ts
 * import { nv12, open } from "@edgerun/edgerun";
 * using model = open("mobilenet_nv12.hbm");
 * const rgb = new Uint8Array(224 * 224 * 3);
 * const frame = nv12(rgb, { format: "rgb", width: 224, height: 224 });
 * const [logits] = model.run(frame);                            // Y and UV are the only inputs
 * const again = model.run({ y: frame, uv: frame, extra: new Float32Array(4) }); // or name both
 * console.log(logits.shape, again.length);
 * ```
 */
export function nv12(image: Uint8Array, options: Nv12Options): ImageFeed {
  const checked = checkImage(image, options, NV12_KEYS, "nv12");
  const range = options.range ?? "full";
  if (range !== "full" && range !== "video") throw new RangeError(`nv12: range must be "full" or "video", got ${JSON.stringify(range)}`);
  if (checked.width % 2 !== 0 || checked.height % 2 !== 0) {
    throw new RangeError(`nv12: width and height must be even, got ${checked.width}x${checked.height}`);
  }
  return new NativeImage("nv12", checked, range === "video" ? NV12_VIDEO_RANGE : 0, null, "auto");
}

function channelValues(v: readonly number[] | undefined, fallback: number, name: string): number[] {
  if (v === undefined) return [fallback, fallback, fallback];
  if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
    throw new RangeError(`normalized: ${name} must be 3 finite numbers (one per channel), got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * A normalized feed from a packed RGB or BGR image: each value becomes (x - mean[c]) / std[c],
 * computed as x * (1 / std) + (-mean / std) in float32, and is stored as the input's type: float32,
 * float16, or int8/uint8 quantized with the input's scale and zero point (round half to even).
 * The input is [1,3,H,W] (NCHW) or [1,H,W,3] (NHWC), batch dimension optional.
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
 * console.log(logits.shape);
 * ```
 */
export function normalized(image: Uint8Array, options: NormalizeOptions): ImageFeed {
  const checked = checkImage(image, options, NORMALIZE_KEYS, "normalized");
  const mean = channelValues(options.mean, 0, "mean");
  const std = channelValues(options.std, 1, "std");
  if (std.some((s) => s === 0)) throw new RangeError(`normalized: std must not be 0, got ${JSON.stringify(std)}`);
  const channels = options.channels ?? options.format;
  if (!(channels in FORMAT)) throw new RangeError(`normalized: channels must be "rgb" or "bgr", got ${JSON.stringify(channels)}`);
  const layout = options.layout ?? "auto";
  if (!(layout in LAYOUT)) throw new RangeError(`normalized: layout must be "auto", "nchw" or "nhwc", got ${JSON.stringify(layout)}`);
  const flags = LAYOUT[layout] | (channels !== options.format ? SWAP_CHANNELS : 0);
  return new NativeImage("normalized", checked, flags, Float32Array.from([...mean, ...std]), layout);
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
 * Converts a packed RGB/BGR frame to NV12 straight into the Y and UV inputs of the model's own
 * request (see {@link nv12} for the conversion); `model.run()` with no feeds then uses them.
 * The model must have one uint8 [1,H,W,1] and one uint8 [1,H/2,W/2,2] input.
 *
 * @example
 * ```ts
 * import { open, writeNv12 } from "@edgerun/edgerun";
 * using model = open("yolo_nv12.hbm");
 * const bgr = new Uint8Array(640 * 640 * 3);
 * writeNv12(model, bgr, { format: "bgr", width: 640, height: 640 });
 * const outputs = model.run();
 * console.log(outputs.length);
 * ```
 */
export function writeNv12(model: Model, image: Uint8Array, options: Nv12Options): void {
  const feed = nv12(image, options);
  const [y, uv] = findNv12Pair(model);
  model.writeInputs({ [y]: feed, [uv]: feed });
}

/**
 * Normalizes a packed RGB/BGR image straight into an input of the model's own request (see
 * {@link normalized}); `model.run()` with no feeds then uses it. `input` names the input when
 * the model has several (default: the only one).
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
export function writeNormalized(model: Model, image: Uint8Array, options: NormalizeOptions & { input?: string }): void {
  const { input, ...rest } = options ?? {};
  const name = input ?? (model.inputs.length === 1 ? model.inputs[0].name : undefined);
  if (name === undefined) {
    throw new TypeError(
      `model '${model.name}' has ${model.inputs.length} inputs (${model.inputs.map((i) => i.name).join(", ")}): name one with { input }`,
    );
  }
  const feeds: Record<string, Feed> = { [name]: normalized(image, rest as NormalizeOptions) };
  model.writeInputs(feeds);
}
