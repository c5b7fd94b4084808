/*
 * Fuzz target: what the hbdnn backend makes of the tensor properties a vendor runtime writes —
 * the 10/8-dimension layout probe (layout_fits, describe_probe), props_decode/encode, and
 * describe_tensor (dtype map, stride filling, padding, byte size, quantization copy), and the
 * parse of the runtime's version string (parse_version, from the input's first 32 bytes).
 * shim/backends/hbdnn.c is included whole for its static functions; scale and zero-point arrays
 * are modelled as a consistent runtime returns them (lengths within the arrays pointed to).
 */
#include "../../shim/backends/hbdnn.c"

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size};
  uint8_t ctl = fuzz_u8(&in);
  char version[33];
  memcpy(version, data + (size ? 1 : 0), size > 33 ? 32 : (size ? size - 1 : 0));
  version[size > 33 ? 32 : (size ? size - 1 : 0)] = 0;
  int major = 0, minor = 0;
  parse_version(version, &major, &minor);
  probe_buf buf;
  memset(buf.bytes, PROBE_FILL, sizeof buf.bytes);
  size_t n = in.left < sizeof buf.bytes ? in.left : sizeof buf.bytes;
  /* The runtime wrote the leading bytes; the rest keeps the fill, as after read_props_raw. */
  fuzz_take(&in, buf.bytes, n);
  if (n < sizeof buf.bytes) memset(buf.bytes + n, PROBE_FILL, sizeof buf.bytes - n);
  char evidence[600];
  describe_probe(&buf, "input 0", evidence, sizeof evidence);
  float scales[64];
  int32_t zps[64];
  for (int i = 0; i < 64; i++) scales[i] = (float)(i + 1) / 8.0f, zps[i] = i - 32;
  for (int dims = 8; dims <= 10; dims += 2) {
    if (!layout_fits(&buf, dims) && !(ctl & 1)) continue;
    hbDNNTensorProperties p;
    props_decode(dims, buf.bytes, &p);
    p.scale.scaleLen = p.scale.scaleLen < 0 ? p.scale.scaleLen : p.scale.scaleLen % 65;
    p.scale.zeroPointLen = p.scale.zeroPointLen < 0 ? p.scale.zeroPointLen : p.scale.zeroPointLen % 65;
    p.scale.scaleData = ctl & 2 ? scales : NULL;
    p.scale.zeroPointData = ctl & 4 ? zps : NULL;
    er_tensor_desc d;
    memset(&d, 0, sizeof d);
    describe_tensor("t", (ctl >> 3) & 1, dims, ctl & 16 ? 64 : 32, &p, &d); /* S600 or S100 stride alignment */
    unsigned char raw[2 * sizeof(hbDNNTensor)];
    hbUCPSysMem mem;
    memset(&mem, 0, sizeof mem);
    if (p.validShape.numDimensions >= 0 && p.validShape.numDimensions <= dims) tensor_encode(dims, raw, 1, &mem, &p);
    er_tensor_desc_clear(&d);
  }
  return 0;
}
