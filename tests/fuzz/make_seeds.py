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
for target in ("pack_open", "sim_loader"):
    save(target, "affine", simfile([affine]))
    save(target, "three_models", simfile([affine, quant, dyn]))
save("pack_open", "onnx_head", bytes([0x08, 0x07, 0x12, 0x04]) + b"test")
