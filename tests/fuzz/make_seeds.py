#!/usr/bin/env python3
"""Writes the small seed corpora of tests/fuzz/corpus/ (committed; rerun after a format change).
Each seed is a valid input of its target: see the harness for the byte layout it reads."""
import os
import struct

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def save(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data)


def ext(v):
    """fuzz_extent: small values as kind 0 ((v+2)<<2), others as an int32 (kind 2)."""
    if -2 <= v <= 61:
        return bytes([((v + 2) << 2) & 0xFF])
    return bytes([2]) + struct.pack("<i", v)


# options: key selector byte + the options string.
for i, (key, text) in enumerate([(0, "intra_op_threads=4"), (2, "intra_op_threads=1;graph_optimization=99"),
                                 (1, "inter_op_threads=-3;x=y"), (0, "intra_op_threads=")]):
    save("options", f"seed{i}", bytes([key]) + text.encode())


# tensor_copy: dtype, rank, (shape, stride)*rank, bytes u32, quant byte, scale count, zp count,
# 16 x (f32 scale, i32 zp), mode, direction, len u32, then payload.
def copy_seed(dtype, shape, strides, nbytes, quant, nscale, nzp, mode, out, length):
    b = bytes([dtype, len(shape)])
    for d, s in zip(shape, strides):
        b += ext(d) + ext(s)
    b += struct.pack("<I", nbytes) + bytes([quant, nscale, nzp])
    for i in range(16):
        b += struct.pack("<fi", 0.5 + i / 4, i - 3)
    b += bytes([mode, out]) + struct.pack("<I", length)
    return b + bytes(range(64))


save("tensor_copy", "f32_dense", copy_seed(1, [2, 3], [12, 4], 24, 0, 0, 0, 0, 0, 24))
save("tensor_copy", "f32_padded_read", copy_seed(1, [2, 3], [16, 4], 32, 0, 0, 0, 1, 1, 24))
save("tensor_copy", "s8_per_axis", copy_seed(4, [2, 3], [3, 1], 6, 1 | (2 << 1), 3, 3, 1, 0, 24))
save("tensor_copy", "f16_scalar", copy_seed(3, [], [], 2, 0, 0, 0, 1, 1, 4))


# core: pack (count, 3 names of 39 bytes, status byte), then per model the test backend's reads.
def desc(name, dtype, shape, strides, size):
    b = name.encode().ljust(23, b"\0") + bytes([dtype]) + struct.pack("<i", dtype) + bytes([len(shape), 0])
    for d, s in zip(shape, strides):
        b += ext(d) + ext(s)
    return b + ext(size) + bytes([0, 0, 0])


pack = bytes([1]) + b"m".ljust(39, b"\0") * 3 + bytes([0])
model = bytes([1, 1]) + desc("x", 1, [2, 3], [12, 4], 24) + desc("y", 1, [2, 3], [16, 4], 32)
save("core", "one_model", pack + bytes([8]) + model + bytes([0] * 64) + struct.pack("<I", 24) + bytes(32))
model_dyn = bytes([1, 1]) + desc("d", 1, [-1, 3], [-1, 4], 0) + desc("e", 4, [4], [1], 4)
save("core", "dynamic", pack + bytes([8, 0]) + model_dyn + bytes([0, 0, 2, 2, 5, 1, 0] * 8))


# hbdnn_props: control byte + the properties struct as a runtime writes it (10-dim layout).
def props(shape, strides, ttype, aligned, quant=0, axis=-1, nscale=0, nzp=0):
    dims = list(shape) + [0] * (10 - len(shape))
    st = list(strides) + [0] * (10 - len(strides))
    b = struct.pack("<10ii", *dims, len(shape)) + struct.pack("<i", ttype)
    b += struct.pack("<iiQiiQ", nscale, 0, 0, nzp, 0, 0)
    b += struct.pack("<iiq", quant, axis, aligned) + struct.pack("<10q", *st)
    return b


save("hbdnn_props", "f32", bytes([0]) + props([2, 3], [12, 4], 7, 24))
save("hbdnn_props", "nv12_y", bytes([8]) + props([1, 220, 220, 1], [-1, -1, 1, 1], 3, 0))
save("hbdnn_props", "s8_quant", bytes([6]) + props([1, 4], [4, 1], 2, 4, 1, 1, 4, 4))


# HBSIM1 simulator files (tests/sim/FORMAT.md): pack_open and sim_loader.
def s(text):
    return struct.pack("<H", len(text)) + text.encode()


def tensor(name, dtype, shape, strides, aligned, out=None, scales=(), zps=(), axis=-1):
    b = s(name) + struct.pack("<ii", dtype, len(shape)) + struct.pack(f"<{len(shape)}i", *shape)
    b += struct.pack(f"<{len(strides)}q", *strides) + struct.pack("<q", aligned)
    b += struct.pack("<ii", 1 if scales else 0, axis) + struct.pack("<i", len(scales))
    b += struct.pack(f"<{len(scales)}f", *scales) + struct.pack("<i", len(zps)) + struct.pack(f"<{len(zps)}i", *zps)
    b += struct.pack("<I", 0)
    if out is not None:
        b += struct.pack("<idd", *out)
    return b


def simfile(models):
    body = b""
    for name, ins, outs in models:
        body += s(name) + struct.pack("<IIIII", 1, 0, 1, len(ins), len(outs)) + b"".join(ins) + b"".join(outs)
    head = b"HBSIM1\0\0" + struct.pack("<II", 1, len(models))
    return head + struct.pack("<Q", len(head) + 8 + len(body)) + body


affine = ("affine", [tensor("x", 7, [2, 3], [12, 4], 24)], [tensor("y", 7, [2, 3], [16, 4], 32, (0, 2.0, 1.0))])
quant = ("quant", [tensor("q", 2, [2, 3], [3, 1], 6, scales=(0.5, 0.25, 1.0), axis=1)],
         [tensor("o", 2, [2, 3], [3, 1], 6, (0, 1.0, 0.0), scales=(0.5,), zps=(2,))])
dyn = ("dyn", [tensor("d", 7, [-1, 3], [-1, 4], 0)], [tensor("e", 7, [4], [4], 16, (-1, 1.0, 0.0))])
# alignedByteSize -1 (NV12-style input, no size given) and a dynamic output following its input's rows.
no_size = ("no_size", [tensor("y", 3, [1, 4, 40, 1], [-1, -1, 1, 1], -1)], [tensor("o", 3, [1, 4, 40, 1], [160, 40, 1, 1], -1, (0, 1.0, 0.0))])
dyn_out = ("dyn_out", [tensor("x", 7, [-1, 8], [-1, 4], 0)], [tensor("y", 7, [-1, 8], [-1, -1], 256, (0, 2.0, 1.0))])
for target in ("pack_open", "sim_loader"):
    save(target, "affine", simfile([affine]))
    save(target, "three_models", simfile([affine, quant, dyn]))
    save(target, "no_size_dyn_out", simfile([no_size, dyn_out]))
save("pack_open", "onnx_head", bytes([0x08, 0x07, 0x12, 0x04]) + b"test")


# image: mode byte (0 NV12 kernel, 1 normalize kernel, 2 request level), its parameters, then pixels.
pixels = bytes((i * 53 + 7) % 256 for i in range(97))
# NV12 kernel: width (u16, 2*(1+v%320)), height (2*(1+v%12)), src/Y/UV row padding, bit0 BGR, bit1 video.
save("image", "nv12_rgb_full", bytes([0, 3, 0, 1, 0, 0, 0, 0]) + pixels)
save("image", "nv12_bgr_video_padded", bytes([0, 5, 0, 2, 3, 5, 7, 3]) + pixels)
save("image", "nv12_wide", struct.pack("<BHBBBBB", 0, 299, 1, 1, 2, 4, 2) + pixels)  # 600 px: three blocks


# normalize kernel: width (u16, 1+v%300), height, src padding, mode (bits 0-1 dtype f32/f16/s8/u8, bit2 NHWC),
# per channel (source channel, mul, add, scale, zero point), row and channel padding.
def norm_seed(w, h, pad, mode, chans, row_pad, chan_pad):
    b = struct.pack("<BHBBB", 1, w - 1, h - 1, pad, mode)
    for src, mul, add, scale, zp in chans:
        b += struct.pack("<Bfffi", src, mul, add, scale, zp)
    return b + bytes([row_pad, chan_pad]) + pixels


imagenet = [(c, 1 / (255 * s), -m / s, 0.02, 3 - c) for c, (m, s) in enumerate([(0.485, 0.229), (0.456, 0.224),
                                                                                (0.406, 0.225)])]
save("image", "norm_f32_nchw", norm_seed(5, 3, 1, 0, imagenet, 1, 2))
save("image", "norm_f16_nhwc_bgr", norm_seed(7, 2, 0, 1 | 4, [(2 - c, *x[1:]) for c, x in enumerate(imagenet)], 2, 0))
save("image", "norm_s8_nchw", norm_seed(4, 4, 2, 2, imagenet, 0, 1))
save("image", "norm_u8_nhwc", norm_seed(3, 5, 0, 3 | 4, imagenet, 3, 0))


# request level: sel (bit0 NV12, bit1 NULL image, bits 6-7 fuzzed sizes), width (2*(1+v%24)), height
# (2*(1+v%12)), stride (<128 packed, else one more byte: 3w + v%9 - 2), length adjust (<220 exact),
# flags, format, two input indices, mean/std bytes (v, or v/3 for std), NULL mean_std (0xff); then the
# test backend's reads: input count (1+v%3) and per input (kind: bits 0-2 (mod 6) shape, bits 3-5
# dtype u8,u8,f32,f16,s8,u8,f64,i32; a byte per dim (<200 exact); padding (3 bits row, 3 bits plane);
# stride fuzz (<240 none); quant byte; scale count; zero-point count; scales; zero points), then a
# length adjust byte per input buffer, then pixels.
def req_input(kind, dims, pad, quant=0, scales=(), zps=()):
    b = bytes([kind] + [0] * dims + [pad, 0, quant, len(scales), len(zps)])
    return b + b"".join(struct.pack("<f", v) for v in scales) + b"".join(struct.pack("<i", v) for v in zps)


def req_seed(sel, w, h, stride, flags, fmt, i0, i1, ms, inputs):
    b = bytes([2, sel, w // 2 - 1, h // 2 - 1]) + (bytes([0]) if stride is None else bytes([200, stride]))
    b += bytes([0, flags, fmt, i0, i1]) + bytes(ms) + bytes([0, len(inputs) - 1])
    return b + b"".join(inputs) + bytes(len(inputs)) + pixels


save("image", "req_nv12", req_seed(1, 8, 4, None, 0, 0, 0, 1, [0] * 6, [req_input(0, 3, 0), req_input(1, 3, 0)]))
save("image", "req_nv12_video_bgr_padded",
     req_seed(1, 12, 6, 4, 1, 1, 1, 0, [0] * 6, [req_input(1, 3, 3 | 2 << 3), req_input(0, 3, 5)]))
mean_std = [124, 116, 104, 174, 171, 173]  # ImageNet's mean and std in 0..255 (std bytes are divided by 3)
save("image", "req_norm_f32_nchw", req_seed(0, 6, 4, None, 1, 0, 0, 0, mean_std, [req_input(2 << 3 | 2, 4, 1)]))
save("image", "req_norm_f16_nhwc_swap",
     req_seed(0, 4, 2, 5, 2 | 4, 0, 0, 0, mean_std, [req_input(3 << 3 | 3, 4, 2)]))
save("image", "req_norm_s8_per_channel",
     req_seed(0, 4, 4, None, 0, 0, 0, 0, mean_std, [req_input(4 << 3 | 2, 4, 0, 5, (0.02, 0.03, 0.04), (1, -2, 3))]))


# preprocess: mode byte (even: resample kernel, odd: er_request_write_image), then its parameters.
# Kernel: format (%7), video bit, w (1+v%64), h (1+v%48), source row padding, crop x, y, w, h (each
# mod what is left), region w (1+v%72), h (1+v%56), placement x, y, w, h, pad (3 bytes), resize
# mode (%3), rotate bit, destination row padding, then pixels.
def pre_kernel(fmt, video, w, h, pad, crop, out, inner, rgb, mode, rot, dpad):
    b = bytes([0, fmt, video, w - 1, h - 1, pad, crop[0], crop[1], crop[2] - 1, crop[3] - 1, out[0] - 1, out[1] - 1])
    return b + bytes([inner[0], inner[1], inner[2] - 1, inner[3] - 1, *rgb, mode, rot, dpad]) + pixels * 40


save("preprocess", "rgb_up_bilinear", pre_kernel(0, 0, 9, 7, 2, (1, 1, 6, 5), (20, 16), (0, 0, 20, 16), (0, 0, 0), 1, 0, 1))
save("preprocess", "nv12_area_letterbox", pre_kernel(5, 1, 40, 30, 3, (0, 2, 40, 26), (12, 12), (0, 2, 12, 8), (114, 114, 114), 0, 1, 0))
save("preprocess", "yuyv_down_rotate", pre_kernel(6, 0, 32, 10, 1, (4, 0, 24, 10), (7, 3), (1, 0, 5, 3), (0, 128, 255), 2, 1, 2))
save("preprocess", "bgra_gray", pre_kernel(3, 0, 5, 5, 0, (0, 0, 5, 5), (5, 5), (0, 0, 5, 5), (1, 2, 3), 0, 0, 0))


# Request: format, image w (2*(1+v%24)), h (2*(1+v%16)), width/height bytes (<230: those), stride
# (<128 packed), 12 geometry words (<64: 0, else v%40), batch, pad (u32), flags (u16), mask byte
# (<240: known bits only), length adjust, Y/tensor input, UV input (>=200: none), mean/std bytes,
# NULL mean_std (0xff); then the test backend's reads as for image's request seeds.
def pre_request(fmt, w, h, words, flags, i0, i1, inputs):
    b = bytes([1, fmt, w // 2 - 1, h // 2 - 1, 0, 0, 0]) + bytes(words) + bytes([0]) + struct.pack("<IH", 0x727272, flags)
    b += bytes([0, 0, i0, i1]) + bytes(mean_std) + bytes([0, len(inputs) - 1])
    return b + b"".join(inputs) + bytes(len(inputs)) + pixels


save("preprocess", "req_norm_f32_letterbox",
     pre_request(0, 12, 8, [0] * 12, 32 | 1, 0, 200, [req_input(2 << 3 | 2, 4, 1)]))
save("preprocess", "req_nv12_region", pre_request(6, 16, 8, [0] * 4 + [64, 64, 72, 68] + [0] * 4, 64, 0, 1,
                                                   [req_input(0, 3, 0), req_input(1, 3, 0)]))


# ACLSIM1 files of the ACL simulator (tests/sim/acl/FORMAT.md): acl_loader.
def acl_tensor(name, dtype, fmt, dims, out=None):
    b = s(name) + struct.pack("<iii", dtype, fmt, len(dims)) + struct.pack(f"<{len(dims)}q", *dims)
    if out is not None:
        b += struct.pack("<iidd", *out)
    return b


def aclfile(ins, outs, kind=0, gears=(), latency=0, jitter=0):
    body = b""
    for g in gears:
        body += struct.pack("<Q", g) if kind == 1 else struct.pack("<QQ", *g)
    body += b"".join(ins) + b"".join(outs)
    head = b"IMOD" + b"ACLSIM1\0" + struct.pack("<I", 1)
    rest = struct.pack("<IIIIII", len(ins), len(outs), latency, jitter, kind, len(gears))
    return head + struct.pack("<Q", len(head) + 8 + len(rest) + len(body)) + rest + body


save("acl_loader", "static", aclfile([acl_tensor("x", 0, 0, [2, 3]), acl_tensor("q", 2, 2, [6])],
                                     [acl_tensor("h", 1, 2, [2, 3], (0, 0, 2.0, 1.0)), acl_tensor("s", 3, 2, [6], (1, 0, 1.0, 0.0)),
                                      acl_tensor("b", 27, 2, [6], (0, -1, 0.5, 0.0))], latency=100))
save("acl_loader", "batch", aclfile([acl_tensor("x", 1, 0, [-1, 3, 4, 4])], [acl_tensor("y", 9, 2, [-1, 48], (0, 0, 3.0, 0.0))],
                                    kind=1, gears=(1, 2, 8)))
save("acl_loader", "hw", aclfile([acl_tensor("img", 4, 0, [1, 3, -1, -1])], [acl_tensor("o", 12, 0, [1, 3, -1, -1], (0, 0, 1.0, -9.0))],
                                 kind=2, gears=((16, 16), (32, 8)), jitter=50))
