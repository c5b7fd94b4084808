/* Float helpers shared by the simulators' computations (sim_dnn.c, acl/sim_acl_mdl.c): the TS
 * references (simfile.ts, omfile.ts) mirror them bit for bit, so there is one C copy. */
#ifndef EDGERUN_SIM_NUMERIC_H
#define EDGERUN_SIM_NUMERIC_H

#include <math.h>
#include <stdint.h>

static inline double rhe(double x) { /* round half to even, independent of the FP environment */
  if (!isfinite(x)) return x;
  double f = floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return fmod(f, 2.0) == 0 ? f : f + 1;
}

static inline double f16_to_f64(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -v : v;
}

static inline uint16_t f64_to_f16(double x) {
  uint16_t sign = signbit(x) ? 0x8000 : 0;
  if (isnan(x)) return 0x7e00;
  double a = fabs(x);
  if (a >= 65520.0) return sign | 0x7c00;
  if (a < 0x1p-14) return sign | (uint16_t)rhe(a * 0x1p24); /* subnormal (1024 = min normal) */
  int e;
  double fr = frexp(a, &e); /* a = fr * 2^e, fr in [0.5, 1) */
  e -= 1;
  double q = rhe(fr * 2048.0); /* 1.mmmmmmmmmm scaled to [1024, 2048] */
  if (q == 2048.0) {
    q = 1024.0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return (uint16_t)(sign | ((e + 15) << 10) | ((int)q - 1024));
}

#endif
