/* ACL simulator, model half: aclmdl* (loader of the ACLSIM1 stand-in for .om files, descriptors,
 * datasets, execution, dynamic batch/HW gears). Built as libacl_mdl.so (NEEDED libacl_rt.so) or
 * with sim_acl_rt.c as libascendcl.so. A test double: see tests/sim/acl/FORMAT.md. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sim_numeric.h"
#include "sim_acl.h"

#define MAX_TENSORS 64
#define MAX_RANK 16
#define MAX_GEARS 100
#define MAX_NAME 127
#define MAX_DIM ((int64_t)1 << 31)
#define MAX_BYTES ((uint64_t)1 << 34)
#define MAX_LATENCY_US 60000000u
#define HEADER_LEN 48
#define DATASET_MAGIC 0x53544144u /* "DATS" */
#define DESC_MAGIC 0x43534544u    /* "DESC" */

enum { DYN_NONE = 0, DYN_BATCH = 1, DYN_HW = 2 };
enum { OP_AFFINE = 0, OP_SUM = 1 };

typedef struct {
  char name[MAX_NAME + 1];
  int32_t dtype, format, rank;
  int64_t dims[MAX_RANK]; /* -1 = set by the gear */
  int32_t op, source;     /* outputs only */
  double a, b;
  uint64_t maxBytes;      /* size at the largest gear: aclmdlGet*SizeByIndex */
} Tensor;

typedef struct {
  int32_t nin, nout;      /* nin includes the appended dynamic input */
  Tensor in[MAX_TENSORS + 1], out[MAX_TENSORS];
  int32_t dynKind, gearCount;
  uint64_t gears[MAX_GEARS][2]; /* batch: [0]; HW: h, w */
  uint32_t latencyUs, jitterUs;
} ModelDef;

typedef struct Model {
  uint32_t id;
  ModelDef def;
  simacl_ctx *ctx;        /* load context: execute/unload must run in it */
  int32_t executing;      /* runs in progress (>1 = the caller did not serialise) */
  int32_t inflight;       /* ExecuteAsync work queued or running */
  int32_t curGear;        /* last gear set, -1 none: aclmdlGetCurOutputDims */
  struct Model *next;
} Model;

struct aclmdlDesc {
  uint32_t magic;
  int filled;
  uint32_t modelId;
  ModelDef def;
  struct aclmdlDesc *next;
};

struct aclmdlDataset {
  uint32_t magic;
  size_t n, cap;
  aclDataBuffer **bufs;
  struct aclmdlDataset *next;
};

static pthread_mutex_t m_mu = PTHREAD_MUTEX_INITIALIZER;
static Model *m_models;
static uint32_t m_next_id = 1;
static aclmdlDataset *m_sets;
static aclmdlDesc *m_descs;

/* ---- numerics (FORMAT.md section 3) ----------------------------------------------------- */

static int elem_size(int32_t dt) {
  switch (dt) {
    case ACL_INT8: case ACL_UINT8: case ACL_BOOL: return 1;
    case ACL_FLOAT16: case ACL_BF16: case ACL_INT16: case ACL_UINT16: return 2;
    case ACL_FLOAT: case ACL_INT32: case ACL_UINT32: return 4;
    case ACL_INT64: case ACL_UINT64: case ACL_DOUBLE: return 8;
    default: return 0;
  }
}

static int format_ok(int32_t f) {
  return f == ACL_FORMAT_UNDEFINED || f == ACL_FORMAT_NCHW || f == ACL_FORMAT_NHWC || f == ACL_FORMAT_ND ||
         f == ACL_FORMAT_NC1HWC0 || f == ACL_FORMAT_FRACTAL_Z || f == ACL_FORMAT_NC1HWC0_C04 || f == ACL_FORMAT_FRACTAL_NZ;
}

/* bf16 = the upper half of the float32 (float)y, rounded to nearest even; NaN -> 0x7fc0. */
static uint16_t f64_to_bf16(double y) {
  float f = (float)y;
  uint32_t u;
  memcpy(&u, &f, 4);
  if (isnan(f)) return (uint16_t)((u >> 16 & 0x8000) | 0x7fc0);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

static double bf16_to_f64(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static double load(const uint8_t *p, int32_t dt) {
  switch (dt) {
    case ACL_INT8: return (int8_t)p[0];
    case ACL_UINT8: return p[0];
    case ACL_BOOL: return p[0] != 0;
    case ACL_FLOAT16: { uint16_t v; memcpy(&v, p, 2); return f16_to_f64(v); }
    case ACL_BF16: { uint16_t v; memcpy(&v, p, 2); return bf16_to_f64(v); }
    case ACL_INT16: { int16_t v; memcpy(&v, p, 2); return v; }
    case ACL_UINT16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case ACL_FLOAT: { float v; memcpy(&v, p, 4); return v; }
    case ACL_INT32: { int32_t v; memcpy(&v, p, 4); return v; }
    case ACL_UINT32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case ACL_DOUBLE: { double v; memcpy(&v, p, 8); return v; }
    case ACL_INT64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case ACL_UINT64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    default: return 0;
  }
}

static void store(uint8_t *p, int32_t dt, double y) {
  switch (dt) {
    case ACL_FLOAT16: { uint16_t v = f64_to_f16(y); memcpy(p, &v, 2); return; }
    case ACL_BF16: { uint16_t v = f64_to_bf16(y); memcpy(p, &v, 2); return; }
    case ACL_FLOAT: { float v = (float)y; memcpy(p, &v, 4); return; }
    case ACL_DOUBLE: memcpy(p, &y, 8); return;
    case ACL_BOOL: p[0] = y != 0; return; /* NaN counts as true */
    default: break;
  }
  double v = isnan(y) ? 0 : rhe(y);
  switch (dt) {
    case ACL_INT8: p[0] = (uint8_t)(int8_t)fmin(fmax(v, -128), 127); return;
    case ACL_UINT8: p[0] = (uint8_t)fmin(fmax(v, 0), 255); return;
    case ACL_INT16: { int16_t q = (int16_t)fmin(fmax(v, -32768), 32767); memcpy(p, &q, 2); return; }
    case ACL_UINT16: { uint16_t q = (uint16_t)fmin(fmax(v, 0), 65535); memcpy(p, &q, 2); return; }
    case ACL_INT32: { int32_t q = (int32_t)fmin(fmax(v, -2147483648.0), 2147483647.0); memcpy(p, &q, 4); return; }
    case ACL_UINT32: { uint32_t q = (uint32_t)fmin(fmax(v, 0), 4294967295.0); memcpy(p, &q, 4); return; }
    case ACL_INT64: { int64_t q = v >= 0x1p63 ? INT64_MAX : v < -0x1p63 ? INT64_MIN : (int64_t)v; memcpy(p, &q, 8); return; }
    case ACL_UINT64: { uint64_t q = v >= 0x1p64 ? UINT64_MAX : v <= 0 ? 0 : (uint64_t)v; memcpy(p, &q, 8); return; }
    default: return;
  }
}

/* ---- shapes and gears -------------------------------------------------------------------- */

/* dims of t at gear g (-1 = the largest-size gear is not wanted: g must be >= 0 for dynamic). */
static void resolve(const ModelDef *d, const Tensor *t, int32_t g, int64_t *out) {
  int hw = 0;
  for (int i = 0; i < t->rank; i++) {
    out[i] = t->dims[i];
    if (t->dims[i] != -1 || g < 0) continue;
    if (d->dynKind == DYN_BATCH) out[i] = (int64_t)d->gears[g][0];
    else out[i] = (int64_t)d->gears[g][hw++ & 1];
  }
}

static uint64_t count_of(int rank, const int64_t *dims) {
  uint64_t n = 1;
  for (int i = 0; i < rank; i++) n *= (uint64_t)dims[i];
  return n;
}

static uint64_t bytes_at(const ModelDef *d, const Tensor *t, int32_t g) {
  int64_t dims[MAX_RANK];
  resolve(d, t, g, dims);
  return count_of(t->rank, dims) * (uint64_t)elem_size(t->dtype);
}

/* The gear with the most bytes for t (gear sizes differ per tensor only through its -1 dims). */
static int32_t largest_gear(const ModelDef *d, const Tensor *t) {
  int32_t best = -1;
  uint64_t bestBytes = 0;
  for (int32_t g = 0; g < d->gearCount; g++) {
    uint64_t b = bytes_at(d, t, g);
    if (best < 0 || b > bestBytes) best = g, bestBytes = b;
  }
  return best;
}

/* ---- loader (FORMAT.md section 1; strict, bounds-checked, never crashes) ------------------- */

typedef struct {
  const uint8_t *p;
  size_t n, off;
  int bad;
} Reader;

static int rd(Reader *r, void *out, size_t len) {
  if (r->bad || len > r->n - r->off) {
    r->bad = 1;
    memset(out, 0, len);
    return 0;
  }
  memcpy(out, r->p + r->off, len);
  r->off += len;
  return 1;
}
static uint32_t rd_u32(Reader *r) { uint32_t v; rd(r, &v, 4); return v; }
static int32_t rd_i32(Reader *r) { int32_t v; rd(r, &v, 4); return v; }
static uint64_t rd_u64(Reader *r) { uint64_t v; rd(r, &v, 8); return v; }
static int64_t rd_i64(Reader *r) { int64_t v; rd(r, &v, 8); return v; }
static double rd_f64(Reader *r) { double v; rd(r, &v, 8); return v; }

static const char *rd_name(Reader *r, char *dst) {
  uint16_t len;
  if (!rd(r, &len, 2)) return "truncated name";
  if (len < 1 || len > MAX_NAME) return "name length outside 1..127";
  if (!rd(r, dst, len)) return "truncated name";
  dst[len] = 0;
  if (strlen(dst) != len) return "NUL inside a name";
  return NULL;
}

static const char *rd_tensor(Reader *r, const ModelDef *d, Tensor *t, int isOutput) {
  const char *e = rd_name(r, t->name);
  if (e) return e;
  t->dtype = rd_i32(r), t->format = rd_i32(r), t->rank = rd_i32(r);
  if (r->bad) return "truncated tensor";
  if (!elem_size(t->dtype)) return "unsupported aclDataType";
  if (!format_ok(t->format)) return "unsupported aclFormat";
  if (t->rank < 0 || t->rank > MAX_RANK) return "rank outside 0..16";
  int dyn = 0;
  for (int i = 0; i < t->rank; i++) {
    t->dims[i] = rd_i64(r);
    if (t->dims[i] == -1) dyn++;
    else if (t->dims[i] < 1 || t->dims[i] > MAX_DIM) return "dim outside 1..2^31 (or -1)";
  }
  if (dyn && d->dynKind == DYN_NONE) return "-1 dim in a model without gears";
  if (dyn && d->dynKind == DYN_HW && dyn != 2) return "a dynamic-HW tensor needs exactly two -1 dims (H, W)";
  if (isOutput) {
    t->op = rd_i32(r), t->source = rd_i32(r), t->a = rd_f64(r), t->b = rd_f64(r);
    if (r->bad) return "truncated output";
    if (t->op != OP_AFFINE && t->op != OP_SUM) return "unknown output op";
    if (t->op == OP_AFFINE && (t->source < -1 || t->source >= d->nin)) return "output source outside -1..inputs-1";
    if (t->op == OP_SUM && d->nin < 1) return "op sum needs an input";
    if (!isfinite(t->a) || !isfinite(t->b)) return "non-finite a or b";
  }
  return r->bad ? "truncated tensor" : NULL;
}

/* Parses and validates; on failure returns the reason (message) and a code. */
static aclError parse_model(const uint8_t *p, size_t n, ModelDef *d, char *why, size_t whyLen) {
  const char *e = NULL;
  aclError code = ACL_ERROR_PARSE_MODEL;
  Reader r = {p, n, 0, 0};
  memset(d, 0, sizeof *d);
  if (n < HEADER_LEN) {
    if (n >= 4 && memcmp(p, "IMOD", 4) != 0) e = "no IMOD magic";
    else e = "shorter than the 48-byte header", code = ACL_ERROR_MODEL_SIZE_INVALID;
    goto out;
  }
  if (memcmp(p, "IMOD", 4) != 0) { e = "no IMOD magic: not a model file"; goto out; }
  if (memcmp(p + 4, "ACLSIM1\0", 8) != 0) { e = "an IMOD file that is not an ACLSIM1 simulator model (a real .om cannot run here)"; goto out; }
  r.off = 12;
  uint32_t version = rd_u32(&r);
  uint64_t fileSize = rd_u64(&r);
  if (version != 1) { e = "unsupported ACLSIM version"; goto out; }
  if (fileSize != n) { e = "fileSize field differs from the real size (truncated or trailing bytes)"; code = ACL_ERROR_MODEL_SIZE_INVALID; goto out; }
  uint32_t nin = rd_u32(&r), nout = rd_u32(&r);
  d->latencyUs = rd_u32(&r), d->jitterUs = rd_u32(&r);
  uint32_t kind = rd_u32(&r), gears = rd_u32(&r);
  if (nin > MAX_TENSORS || nout < 1 || nout > MAX_TENSORS) { e = "inputs outside 0..64 or outputs outside 1..64"; goto out; }
  if (d->latencyUs > MAX_LATENCY_US || d->jitterUs > MAX_LATENCY_US) { e = "latency or jitter over 60 s"; goto out; }
  if (kind > DYN_HW) { e = "unknown dynamic kind"; goto out; }
  if ((kind == DYN_NONE) != (gears == 0) || gears > MAX_GEARS) { e = "gear count must be 0 for a static model, 1..100 otherwise"; goto out; }
  d->dynKind = (int32_t)kind, d->gearCount = (int32_t)gears;
  d->nin = (int32_t)nin, d->nout = (int32_t)nout;
  for (uint32_t g = 0; g < gears; g++) {
    d->gears[g][0] = rd_u64(&r);
    d->gears[g][1] = kind == DYN_HW ? rd_u64(&r) : 0;
    if (r.bad) { e = "truncated gears"; goto out; }
    for (int k = 0; k < (kind == DYN_HW ? 2 : 1); k++)
      if (d->gears[g][k] < 1 || d->gears[g][k] > (1u << 20)) { e = "gear value outside 1..2^20"; goto out; }
    for (uint32_t h = 0; h < g; h++)
      if (d->gears[h][0] == d->gears[g][0] && d->gears[h][1] == d->gears[g][1]) { e = "duplicate gear"; goto out; }
  }
  int anyDyn = 0;
  for (uint32_t i = 0; i < nin && !e; i++) e = rd_tensor(&r, d, &d->in[i], 0);
  for (uint32_t i = 0; i < nout && !e; i++) e = rd_tensor(&r, d, &d->out[i], 1);
  if (e) goto out;
  if (r.off != n) { e = "trailing bytes"; goto out; }
  for (uint32_t i = 0; i < nin; i++) {
    if (strcmp(d->in[i].name, ACL_DYNAMIC_TENSOR_NAME) == 0) { e = "an input may not be named ascend_mbatch_shape_data"; goto out; }
    for (uint32_t j = 0; j < i; j++)
      if (strcmp(d->in[i].name, d->in[j].name) == 0) { e = "duplicate input name"; goto out; }
    for (int k = 0; k < d->in[i].rank; k++) anyDyn |= d->in[i].dims[k] == -1;
  }
  for (uint32_t i = 0; i < nout; i++)
    for (uint32_t j = 0; j < i; j++)
      if (strcmp(d->out[i].name, d->out[j].name) == 0) { e = "duplicate output name"; goto out; }
  if (kind != DYN_NONE && !anyDyn) { e = "gears without a -1 input dim"; goto out; }
  /* The real ATC output appends the gear input last; so does the simulator. */
  if (kind != DYN_NONE) {
    Tensor *t = &d->in[d->nin++];
    snprintf(t->name, sizeof t->name, "%s", ACL_DYNAMIC_TENSOR_NAME);
    t->dtype = ACL_INT64, t->format = ACL_FORMAT_ND, t->rank = 1, t->dims[0] = kind == DYN_HW ? 2 : 1;
  }
  /* maxBytes = the size at the largest gear; every gear's size must stay <= 2^34 bytes. */
  for (int32_t i = 0; i < d->nin + d->nout; i++) {
    Tensor *t = i < d->nin ? &d->in[i] : &d->out[i - d->nin];
    uint64_t best = 0;
    for (int32_t g = 0; g < (d->gearCount ? d->gearCount : 1); g++) {
      int64_t dims[MAX_RANK];
      resolve(d, t, d->gearCount ? g : -1, dims);
      uint64_t c = (uint64_t)elem_size(t->dtype);
      for (int k = 0; k < t->rank; k++)
        if (__builtin_mul_overflow(c, (uint64_t)dims[k], &c) || c > MAX_BYTES) { e = "tensor larger than 2^34 bytes"; goto out; }
      if (c > best) best = c;
    }
    t->maxBytes = best;
  }
out:
  if (e) snprintf(why, whyLen, "%s", e);
  return e ? code : ACL_SUCCESS;
}

/* Exported for the fuzz harness and tests: parse without loading. */
SIMACL_API aclError simacl_parse_model(const void *data, size_t size) {
  ModelDef *d = malloc(sizeof *d);
  if (!d) return ACL_ERROR_BAD_ALLOC;
  char why[160];
  aclError rc = parse_model(data, size, d, why, sizeof why);
  free(d);
  return rc;
}

static aclError load_model(const char *fn, const uint8_t *p, size_t n, uint32_t *modelId, simacl_ctx *ctx) {
  Model *m = calloc(1, sizeof *m);
  if (!m) return simacl_fail(ACL_ERROR_BAD_ALLOC, "%s: out of memory", fn);
  char why[160];
  aclError rc = parse_model(p, n, &m->def, why, sizeof why);
  if (rc) {
    free(m);
    return simacl_fail(rc, "%s: invalid simulator model: %s", fn, why);
  }
  m->ctx = ctx, m->curGear = -1;
  pthread_mutex_lock(&m_mu);
  m->id = m_next_id++; /* never reused: a stale id stays invalid */
  m->next = m_models, m_models = m;
  pthread_mutex_unlock(&m_mu);
  simacl_count("models_live", 1);
  simacl_count("models_loaded", 1);
  *modelId = m->id;
  return ACL_SUCCESS;
}

SIMACL_API aclError aclmdlLoadFromFile(const char *modelPath, uint32_t *modelId) {
  simacl_ctx *ctx;
  aclError rc = simacl_enter("aclmdlLoadFromFile", 1, &ctx);
  if (rc) return rc;
  if (!modelPath || !modelId) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlLoadFromFile: NULL argument");
  FILE *f = fopen(modelPath, "rb");
  if (!f) return simacl_fail(ACL_ERROR_READ_MODEL_FAILURE, "aclmdlLoadFromFile: cannot open %s", modelPath);
  uint8_t *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *nb = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap);
      if (!nb) break;
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  int err = ferror(f) || n == cap;
  fclose(f);
  if (err) {
    free(buf);
    return simacl_fail(ACL_ERROR_READ_MODEL_FAILURE, "aclmdlLoadFromFile: cannot read %s (a directory, or over 1 GiB)", modelPath);
  }
  if (n == 0) {
    free(buf);
    return simacl_fail(ACL_ERROR_MODEL_SIZE_INVALID, "aclmdlLoadFromFile: %s is empty", modelPath);
  }
  rc = load_model("aclmdlLoadFromFile", buf, n, modelId, ctx);
  free(buf);
  return rc;
}

SIMACL_API aclError aclmdlLoadFromMem(const void *model, size_t modelSize, uint32_t *modelId) {
  simacl_ctx *ctx;
  aclError rc = simacl_enter("aclmdlLoadFromMem", 1, &ctx);
  if (rc) return rc;
  if (!model || !modelId) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlLoadFromMem: NULL argument");
  if (modelSize == 0) return simacl_fail(ACL_ERROR_MODEL_SIZE_INVALID, "aclmdlLoadFromMem: size 0");
  return load_model("aclmdlLoadFromMem", model, modelSize, modelId, ctx);
}

static Model *find_model_locked(uint32_t id) {
  for (Model *m = m_models; m; m = m->next)
    if (m->id == id) return m;
  return NULL;
}

SIMACL_API aclError aclmdlUnload(uint32_t modelId) {
  simacl_ctx *ctx;
  aclError rc = simacl_enter("aclmdlUnload", 3, &ctx);
  if (rc) return rc;
  pthread_mutex_lock(&m_mu);
  Model **pp = &m_models;
  while (*pp && (*pp)->id != modelId) pp = &(*pp)->next;
  Model *m = *pp;
  aclError err = 0;
  if (!m) err = ACL_ERROR_INVALID_MODEL_ID;
  else if (m->ctx != ctx) err = ACL_ERROR_RT_MODEL_CONTEXT;
  else if (m->executing || m->inflight) err = ACL_ERROR_FAILURE;
  else *pp = m->next;
  pthread_mutex_unlock(&m_mu);
  if (err == ACL_ERROR_INVALID_MODEL_ID) {
    simacl_count("bad_handles", 1);
    return simacl_fail(err, "aclmdlUnload: model id %u is not loaded", modelId);
  }
  if (err == ACL_ERROR_RT_MODEL_CONTEXT) return simacl_fail(err, "aclmdlUnload: model %u was loaded in another context", modelId);
  if (err) {
    simacl_count("unload_busy", 1);
    return simacl_fail(err, "aclmdlUnload: model %u is still executing (simulator refuses)", modelId);
  }
  free(m);
  simacl_count("models_live", -1);
  simacl_count("models_unloaded", 1);
  return ACL_SUCCESS;
}

/* ---- descriptors ------------------------------------------------------------------------- */

static int desc_live(const aclmdlDesc *d) {
  pthread_mutex_lock(&m_mu);
  int ok = 0;
  for (aclmdlDesc *p = m_descs; p && !ok; p = p->next) ok = p == d;
  pthread_mutex_unlock(&m_mu);
  if (d && !ok) simacl_count("bad_handles", 1);
  return ok;
}

SIMACL_API aclmdlDesc *aclmdlCreateDesc(void) {
  int32_t inj = simacl_fault_check("aclmdlCreateDesc");
  if (inj) {
    simacl_fail(inj, "aclmdlCreateDesc: injected fault");
    return NULL;
  }
  aclmdlDesc *d = calloc(1, sizeof *d);
  if (!d) {
    simacl_fail(ACL_ERROR_BAD_ALLOC, "aclmdlCreateDesc: out of memory");
    return NULL;
  }
  d->magic = DESC_MAGIC;
  pthread_mutex_lock(&m_mu);
  d->next = m_descs, m_descs = d;
  pthread_mutex_unlock(&m_mu);
  simacl_count("descs_live", 1);
  return d;
}

SIMACL_API aclError aclmdlDestroyDesc(aclmdlDesc *modelDesc) {
  pthread_mutex_lock(&m_mu);
  aclmdlDesc **pp = &m_descs;
  while (*pp && *pp != modelDesc) pp = &(*pp)->next;
  aclmdlDesc *d = *pp;
  if (d) *pp = d->next;
  pthread_mutex_unlock(&m_mu);
  if (!d) {
    simacl_count("bad_handles", 1);
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlDestroyDesc: %p is not a live descriptor", (void *)modelDesc);
  }
  d->magic = 0;
  free(d); /* the names it handed out die with it */
  simacl_count("descs_live", -1);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclmdlGetDesc(aclmdlDesc *modelDesc, uint32_t modelId) {
  simacl_ctx *ctx;
  aclError rc = simacl_enter("aclmdlGetDesc", 1, &ctx);
  if (rc) return rc;
  if (!desc_live(modelDesc)) return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetDesc: not a live descriptor");
  pthread_mutex_lock(&m_mu);
  Model *m = find_model_locked(modelId);
  if (m) {
    modelDesc->def = m->def; /* a copy: names stay valid after unload, until DestroyDesc */
    modelDesc->modelId = modelId, modelDesc->filled = 1;
  }
  pthread_mutex_unlock(&m_mu);
  if (!m) return simacl_fail(ACL_ERROR_INVALID_MODEL_ID, "aclmdlGetDesc: model id %u is not loaded", modelId);
  return ACL_SUCCESS;
}

/* The descriptor's tensor, or NULL (message set). */
static const Tensor *desc_tensor(const char *fn, const aclmdlDesc *d, size_t index, int output) {
  if (!desc_live(d) || !d->filled) {
    simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: not a live descriptor filled by aclmdlGetDesc", fn);
    return NULL;
  }
  size_t n = (size_t)(output ? d->def.nout : d->def.nin);
  if (index >= n) {
    simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: index %zu out of range (%zu)", fn, index, n);
    return NULL;
  }
  return output ? &d->def.out[index] : &d->def.in[index];
}

SIMACL_API size_t aclmdlGetNumInputs(aclmdlDesc *modelDesc) {
  if (!desc_live(modelDesc) || !modelDesc->filled) return 0;
  return (size_t)modelDesc->def.nin;
}

SIMACL_API size_t aclmdlGetNumOutputs(aclmdlDesc *modelDesc) {
  if (!desc_live(modelDesc) || !modelDesc->filled) return 0;
  return (size_t)modelDesc->def.nout;
}

SIMACL_API size_t aclmdlGetInputSizeByIndex(aclmdlDesc *modelDesc, size_t index) {
  const Tensor *t = desc_tensor("aclmdlGetInputSizeByIndex", modelDesc, index, 0);
  return t ? (size_t)t->maxBytes : 0;
}

SIMACL_API size_t aclmdlGetOutputSizeByIndex(aclmdlDesc *modelDesc, size_t index) {
  const Tensor *t = desc_tensor("aclmdlGetOutputSizeByIndex", modelDesc, index, 1);
  return t ? (size_t)t->maxBytes : 0;
}

static aclError fill_dims(const char *fn, const aclmdlDesc *d, size_t index, int output, int32_t gear, aclmdlIODims *dims) {
  const Tensor *t = desc_tensor(fn, d, index, output);
  if (!t) return ACL_ERROR_INVALID_PARAM;
  if (!dims) return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: NULL dims", fn);
  memset(dims, 0, sizeof *dims);
  snprintf(dims->name, sizeof dims->name, "%s", t->name);
  dims->dimCount = (size_t)t->rank;
  int64_t r[MAX_RANK];
  resolve(&d->def, t, gear, r);
  for (int i = 0; i < t->rank; i++) dims->dims[i] = r[i];
  return ACL_SUCCESS;
}

SIMACL_API aclError aclmdlGetInputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims) {
  return fill_dims("aclmdlGetInputDims", modelDesc, index, 0, -1, dims);
}

SIMACL_API aclError aclmdlGetOutputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims) {
  /* CANN: "in the dynamic-shape scenario, the dimensions of the maximum batch/image size profile"
     (the default; ACLSIM_OUTPUT_DIMS=declared or simacl_set_output_dims_max(0) keeps -1). */
  const Tensor *t = simacl_output_dims_max() ? desc_tensor("aclmdlGetOutputDims", modelDesc, index, 1) : NULL;
  int32_t gear = t && modelDesc->def.dynKind != DYN_NONE ? largest_gear(&modelDesc->def, t) : -1;
  return fill_dims("aclmdlGetOutputDims", modelDesc, index, 1, gear, dims);
}

SIMACL_API aclError aclmdlGetCurOutputDims(const aclmdlDesc *modelDesc, size_t index, aclmdlIODims *dims) {
  const Tensor *t = desc_tensor("aclmdlGetCurOutputDims", modelDesc, index, 1);
  if (!t) return ACL_ERROR_INVALID_PARAM;
  int32_t gear = -1;
  if (modelDesc->def.dynKind != DYN_NONE) {
    pthread_mutex_lock(&m_mu);
    Model *m = find_model_locked(modelDesc->modelId);
    gear = m ? m->curGear : -1;
    pthread_mutex_unlock(&m_mu);
    if (gear < 0) gear = largest_gear(&modelDesc->def, t); /* no gear set yet: the largest */
  }
  return fill_dims("aclmdlGetCurOutputDims", modelDesc, index, 1, gear, dims);
}

SIMACL_API aclDataType aclmdlGetInputDataType(const aclmdlDesc *modelDesc, size_t index) {
  const Tensor *t = desc_tensor("aclmdlGetInputDataType", modelDesc, index, 0);
  return t ? (aclDataType)t->dtype : ACL_DT_UNDEFINED;
}

SIMACL_API aclDataType aclmdlGetOutputDataType(const aclmdlDesc *modelDesc, size_t index) {
  const Tensor *t = desc_tensor("aclmdlGetOutputDataType", modelDesc, index, 1);
  return t ? (aclDataType)t->dtype : ACL_DT_UNDEFINED;
}

SIMACL_API aclFormat aclmdlGetInputFormat(const aclmdlDesc *modelDesc, size_t index) {
  const Tensor *t = desc_tensor("aclmdlGetInputFormat", modelDesc, index, 0);
  return t ? (aclFormat)t->format : ACL_FORMAT_UNDEFINED;
}

SIMACL_API aclFormat aclmdlGetOutputFormat(const aclmdlDesc *modelDesc, size_t index) {
  const Tensor *t = desc_tensor("aclmdlGetOutputFormat", modelDesc, index, 1);
  return t ? (aclFormat)t->format : ACL_FORMAT_UNDEFINED;
}

/* Out of range: "" (a string the caller may read), with the message set. */
SIMACL_API const char *aclmdlGetInputNameByIndex(const aclmdlDesc *modelDesc, size_t index) {
  const Tensor *t = desc_tensor("aclmdlGetInputNameByIndex", modelDesc, index, 0);
  return t ? t->name : "";
}

SIMACL_API const char *aclmdlGetOutputNameByIndex(const aclmdlDesc *modelDesc, size_t index) {
  const Tensor *t = desc_tensor("aclmdlGetOutputNameByIndex", modelDesc, index, 1);
  return t ? t->name : "";
}

SIMACL_API aclError aclmdlGetInputIndexByName(const aclmdlDesc *modelDesc, const char *name, size_t *index) {
  if (!desc_live(modelDesc) || !modelDesc->filled || !name || !index)
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputIndexByName: bad descriptor or NULL argument");
  for (int32_t i = 0; i < modelDesc->def.nin; i++)
    if (strcmp(modelDesc->def.in[i].name, name) == 0) {
      *index = (size_t)i;
      return ACL_SUCCESS;
    }
  return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputIndexByName: no input named %s", name);
}

SIMACL_API aclError aclmdlGetDynamicBatch(const aclmdlDesc *modelDesc, aclmdlBatch *batch) {
  if (!desc_live(modelDesc) || !modelDesc->filled || !batch)
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetDynamicBatch: bad descriptor or NULL batch");
  memset(batch, 0, sizeof *batch);
  if (modelDesc->def.dynKind != DYN_BATCH) return ACL_SUCCESS; /* batchCount 0: not batch-dynamic */
  batch->batchCount = (size_t)modelDesc->def.gearCount;
  for (int32_t g = 0; g < modelDesc->def.gearCount; g++) batch->batch[g] = modelDesc->def.gears[g][0];
  return ACL_SUCCESS;
}

SIMACL_API aclError aclmdlGetDynamicHW(const aclmdlDesc *modelDesc, size_t index, aclmdlHW *hw) {
  if (!desc_live(modelDesc) || !modelDesc->filled || !hw)
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetDynamicHW: bad descriptor or NULL hw");
  if (index != (size_t)-1 && index >= (size_t)modelDesc->def.nin)
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetDynamicHW: index %zu out of range", index);
  memset(hw, 0, sizeof *hw);
  if (modelDesc->def.dynKind != DYN_HW) return ACL_SUCCESS;
  hw->hwCount = (size_t)modelDesc->def.gearCount;
  for (int32_t g = 0; g < modelDesc->def.gearCount; g++)
    hw->hw[g][0] = modelDesc->def.gears[g][0], hw->hw[g][1] = modelDesc->def.gears[g][1];
  return ACL_SUCCESS;
}

SIMACL_API aclError aclmdlGetInputDynamicGearCount(const aclmdlDesc *modelDesc, size_t index, size_t *gearCount) {
  if (!desc_live(modelDesc) || !modelDesc->filled || !gearCount)
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputDynamicGearCount: bad descriptor or NULL gearCount");
  if (index != (size_t)-1 && index >= (size_t)modelDesc->def.nin)
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetInputDynamicGearCount: index %zu out of range", index);
  *gearCount = (size_t)modelDesc->def.gearCount;
  return ACL_SUCCESS;
}

/* ---- datasets ---------------------------------------------------------------------------- */

static int set_live_locked(const aclmdlDataset *s) {
  for (aclmdlDataset *p = m_sets; p; p = p->next)
    if (p == s) return 1;
  return 0;
}

static int set_live(const aclmdlDataset *s) {
  pthread_mutex_lock(&m_mu);
  int ok = s && set_live_locked(s);
  pthread_mutex_unlock(&m_mu);
  if (s && !ok) simacl_count("bad_handles", 1);
  return ok;
}

SIMACL_API aclmdlDataset *aclmdlCreateDataset(void) {
  int32_t inj = simacl_fault_check("aclmdlCreateDataset");
  if (inj) {
    simacl_fail(inj, "aclmdlCreateDataset: injected fault");
    return NULL;
  }
  aclmdlDataset *s = calloc(1, sizeof *s);
  if (!s) {
    simacl_fail(ACL_ERROR_BAD_ALLOC, "aclmdlCreateDataset: out of memory");
    return NULL;
  }
  s->magic = DATASET_MAGIC;
  pthread_mutex_lock(&m_mu);
  s->next = m_sets, m_sets = s;
  pthread_mutex_unlock(&m_mu);
  simacl_count("datasets_live", 1);
  return s;
}

SIMACL_API aclError aclmdlDestroyDataset(const aclmdlDataset *dataset) {
  pthread_mutex_lock(&m_mu);
  aclmdlDataset **pp = &m_sets;
  while (*pp && *pp != dataset) pp = &(*pp)->next;
  aclmdlDataset *s = *pp;
  if (s) *pp = s->next;
  pthread_mutex_unlock(&m_mu);
  if (!s) {
    simacl_count("bad_handles", 1);
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlDestroyDataset: %p is not a live dataset", (const void *)dataset);
  }
  /* Like the real runtime, the data buffers are the caller's to destroy. */
  free(s->bufs);
  s->magic = 0;
  free(s);
  simacl_count("datasets_live", -1);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclmdlAddDatasetBuffer(aclmdlDataset *dataset, aclDataBuffer *dataBuffer) {
  if (!set_live(dataset) || !simacl_buffer_valid(dataBuffer))
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlAddDatasetBuffer: not a live dataset / data buffer");
  int32_t inj = simacl_fault_check("aclmdlAddDatasetBuffer");
  if (inj) return simacl_fail(inj, "aclmdlAddDatasetBuffer: injected fault");
  pthread_mutex_lock(&m_mu);
  aclError rc = 0;
  if (dataset->n == dataset->cap) {
    size_t cap = dataset->cap ? dataset->cap * 2 : 8;
    aclDataBuffer **nb = cap > 4096 ? NULL : realloc(dataset->bufs, cap * sizeof *nb);
    if (nb) dataset->bufs = nb, dataset->cap = cap;
    else rc = ACL_ERROR_BAD_ALLOC;
  }
  if (!rc) dataset->bufs[dataset->n++] = dataBuffer;
  pthread_mutex_unlock(&m_mu);
  if (rc) return simacl_fail(rc, "aclmdlAddDatasetBuffer: too many buffers");
  return ACL_SUCCESS;
}

SIMACL_API size_t aclmdlGetDatasetNumBuffers(const aclmdlDataset *dataset) {
  if (!set_live(dataset)) {
    simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetDatasetNumBuffers: not a live dataset");
    return 0;
  }
  return dataset->n;
}

SIMACL_API aclDataBuffer *aclmdlGetDatasetBuffer(const aclmdlDataset *dataset, size_t index) {
  if (!set_live(dataset) || index >= dataset->n) {
    simacl_fail(ACL_ERROR_INVALID_PARAM, "aclmdlGetDatasetBuffer: not a live dataset or index out of range");
    return NULL;
  }
  return dataset->bufs[index];
}

/* ---- dynamic gears ----------------------------------------------------------------------- */

static aclError write_gear(const char *fn, Model *m, aclmdlDataset *dataset, size_t index, int32_t dynKind, int kind,
                           uint64_t h, uint64_t w);

/* The gear input's device bytes: batch u64, or h u64 + w u64 (what Set*Size writes). */
static aclError gear_target(const char *fn, Model *m, aclmdlDataset *dataset, size_t index, uint8_t **view) {
  const ModelDef *d = &m->def;
  if (index != (size_t)(d->nin - 1))
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: index %zu is not the %s input (%d)", fn, index, ACL_DYNAMIC_TENSOR_NAME, d->nin - 1);
  if (!set_live(dataset) || index >= dataset->n)
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: the dataset has no buffer at index %zu", fn, index);
  aclDataBuffer *b = dataset->bufs[index];
  if (!simacl_buffer_valid(b)) return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: a destroyed data buffer", fn);
  size_t need = (size_t)d->in[index].maxBytes;
  void *addr = aclGetDataBufferAddr(b);
  if (aclGetDataBufferSizeV2(b) < need)
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: the %s buffer holds %zu bytes, %zu needed", fn, ACL_DYNAMIC_TENSOR_NAME, aclGetDataBufferSizeV2(b), need);
  *view = simacl_device_view(addr, need, NULL);
  if (!*view) {
    simacl_count("not_device_memory", 1);
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: the %s buffer %p is not aclrtMalloc device memory", fn, ACL_DYNAMIC_TENSOR_NAME, addr);
  }
  return ACL_SUCCESS;
}

static aclError set_gear(const char *fn, uint32_t modelId, aclmdlDataset *dataset, size_t index, int kind, uint64_t h, uint64_t w) {
  simacl_ctx *ctx;
  aclError rc = simacl_enter(fn, 1, &ctx);
  if (rc) return rc;
  pthread_mutex_lock(&m_mu);
  Model *m = find_model_locked(modelId);
  int32_t dynKind = m ? m->def.dynKind : 0;
  int otherCtx = m && m->ctx != ctx;
  if (m && !otherCtx) m->inflight++; /* holds off Unload while the gear is written */
  pthread_mutex_unlock(&m_mu);
  if (!m) return simacl_fail(ACL_ERROR_INVALID_MODEL_ID, "%s: model id %u is not loaded", fn, modelId);
  if (otherCtx) return simacl_fail(ACL_ERROR_RT_MODEL_CONTEXT, "%s: model %u was loaded in another context", fn, modelId);
  rc = write_gear(fn, m, dataset, index, dynKind, kind, h, w);
  pthread_mutex_lock(&m_mu);
  m->inflight--;
  pthread_mutex_unlock(&m_mu);
  return rc;
}

static aclError write_gear(const char *fn, Model *m, aclmdlDataset *dataset, size_t index, int32_t dynKind, int kind,
                           uint64_t h, uint64_t w) {
  uint32_t modelId = m->id;
  if (dynKind == DYN_NONE) return simacl_fail(ACL_ERROR_MODEL_NOT_DYNAMIC, "%s: model %u has no dynamic gears", fn, modelId);
  if (dynKind != kind)
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: model %u has dynamic %s gears (one kind per model)", fn, modelId, dynKind == DYN_BATCH ? "batch" : "HW");
  int32_t g = -1;
  for (int32_t i = 0; i < m->def.gearCount && g < 0; i++)
    if (m->def.gears[i][0] == h && (kind == DYN_BATCH || m->def.gears[i][1] == w)) g = i;
  if (g < 0) {
    if (kind == DYN_BATCH) return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: batch %llu is not one of the model's gears", fn, (unsigned long long)h);
    return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: %llux%llu is not one of the model's HW gears", fn, (unsigned long long)h, (unsigned long long)w);
  }
  uint8_t *view;
  aclError rc = gear_target(fn, m, dataset, index, &view);
  if (rc) return rc;
  memcpy(view, &h, 8);
  if (kind == DYN_HW) memcpy(view + 8, &w, 8);
  pthread_mutex_lock(&m_mu);
  m->curGear = g;
  pthread_mutex_unlock(&m_mu);
  simacl_count("gears_set", 1);
  return ACL_SUCCESS;
}

SIMACL_API aclError aclmdlSetDynamicBatchSize(uint32_t modelId, aclmdlDataset *dataset, size_t index, uint64_t batchSize) {
  return set_gear("aclmdlSetDynamicBatchSize", modelId, dataset, index, DYN_BATCH, batchSize, 0);
}

SIMACL_API aclError aclmdlSetDynamicHWSize(uint32_t modelId, aclmdlDataset *dataset, size_t index, uint64_t height, uint64_t width) {
  return set_gear("aclmdlSetDynamicHWSize", modelId, dataset, index, DYN_HW, height, width);
}

/* ---- execution --------------------------------------------------------------------------- */

typedef struct {
  Model *model;       /* pinned by inflight (async) or by the caller's validity (sync) */
  int32_t gear;
  int32_t nin, nout;
  uint8_t *in[MAX_TENSORS + 1], *out[MAX_TENSORS];
  void *pinned[2 * MAX_TENSORS + 1];
  int32_t npinned;
} Run;

/* Validate a dataset against the model and resolve each buffer to the bytes the model reads. */
static aclError bind(const char *fn, const Model *m, const aclmdlDataset *set, int output, Run *run) {
  const ModelDef *d = &m->def;
  int32_t want = output ? d->nout : d->nin;
  if (!set_live(set)) return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: the %s dataset is not live", fn, output ? "output" : "input");
  if (set->n != (size_t)want)
    return simacl_fail(output ? ACL_ERROR_MODEL_OUTPUT_NOT_MATCH : ACL_ERROR_MODEL_INPUT_NOT_MATCH,
                       "%s: the %s dataset has %zu buffers, the model %d%s", fn, output ? "output" : "input", set->n, want,
                       !output && d->dynKind ? " (including " ACL_DYNAMIC_TENSOR_NAME ")" : "");
  for (int32_t i = 0; i < want; i++) {
    const Tensor *t = output ? &d->out[i] : &d->in[i];
    aclDataBuffer *b = set->bufs[i];
    if (!simacl_buffer_valid(b)) return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: %s %d: a destroyed data buffer", fn, output ? "output" : "input", i);
    void *addr = aclGetDataBufferAddr(b);
    size_t size = aclGetDataBufferSizeV2(b);
    if (!addr || size < t->maxBytes)
      return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: %s %d (%s): buffer of %zu bytes at %p, %llu needed", fn,
                         output ? "output" : "input", i, t->name, size, addr, (unsigned long long)t->maxBytes);
    uint8_t *view = simacl_device_view(addr, size, NULL);
    if (!view) {
      simacl_count("not_device_memory", 1);
      return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: %s %d (%s): %p is not aclrtMalloc device memory (run mode ACL_HOST: copy with aclrtMemcpy)",
                         fn, output ? "output" : "input", i, t->name, addr);
    }
    if (output) run->out[i] = view;
    else run->in[i] = view;
    run->pinned[run->npinned++] = addr;
  }
  if (output) run->nout = want;
  else run->nin = want;
  return ACL_SUCCESS;
}

static void release_run(Run *run) {
  if (!run->model) return;
  pthread_mutex_lock(&m_mu);
  run->model->inflight--;
  pthread_mutex_unlock(&m_mu);
  run->model = NULL;
}

/* On success and on any failure after the model was found, run->model holds an inflight reference
 * (release_run drops it). */
static aclError prepare(const char *fn, uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output, simacl_ctx *ctx, Run *run) {
  memset(run, 0, sizeof *run);
  pthread_mutex_lock(&m_mu);
  Model *m = find_model_locked(modelId);
  int otherCtx = m && m->ctx != ctx;
  if (m && !otherCtx) m->inflight++; /* Unload refuses until release_run */
  pthread_mutex_unlock(&m_mu);
  if (!m) {
    simacl_count("bad_handles", 1);
    return simacl_fail(ACL_ERROR_INVALID_MODEL_ID, "%s: model id %u is not loaded", fn, modelId);
  }
  if (otherCtx) return simacl_fail(ACL_ERROR_RT_MODEL_CONTEXT, "%s: model %u was loaded in another context", fn, modelId);
  run->model = m, run->gear = -1;
  aclError rc = bind(fn, m, input, 0, run);
  if (!rc) rc = bind(fn, m, output, 1, run);
  if (rc) return rc;
  if (m->def.dynKind != DYN_NONE) {
    /* The gear is whatever Set*Size wrote into the gear input's device bytes. */
    uint64_t h = 0, w = 0;
    memcpy(&h, run->in[m->def.nin - 1], 8);
    if (m->def.dynKind == DYN_HW) memcpy(&w, run->in[m->def.nin - 1] + 8, 8);
    for (int32_t g = 0; g < m->def.gearCount && run->gear < 0; g++)
      if (m->def.gears[g][0] == h && (m->def.dynKind == DYN_BATCH || m->def.gears[g][1] == w)) run->gear = g;
    if (run->gear < 0)
      return simacl_fail(ACL_ERROR_INVALID_PARAM, "%s: no valid gear in the %s input (call aclmdlSetDynamic%sSize on this dataset)", fn,
                         ACL_DYNAMIC_TENSOR_NAME, m->def.dynKind == DYN_BATCH ? "Batch" : "HW");
  }
  return ACL_SUCCESS;
}

static void compute(const Run *run) {
  const ModelDef *d = &run->model->def;
  int32_t users = d->nin - (d->dynKind ? 1 : 0);
  uint64_t len[MAX_TENSORS];
  for (int32_t k = 0; k < users; k++) {
    int64_t dims[MAX_RANK];
    resolve(d, &d->in[k], run->gear, dims);
    len[k] = count_of(d->in[k].rank, dims);
  }
  for (int32_t o = 0; o < d->nout; o++) {
    const Tensor *t = &d->out[o];
    int64_t dims[MAX_RANK];
    resolve(d, t, run->gear, dims);
    uint64_t n = count_of(t->rank, dims);
    int es = elem_size(t->dtype);
    for (uint64_t j = 0; j < n; j++) {
      double v = 0;
      if (t->op == OP_SUM) {
        for (int32_t k = 0; k < users; k++)
          if (len[k]) v = v + load(run->in[k] + (j % len[k]) * (uint64_t)elem_size(d->in[k].dtype), d->in[k].dtype);
      } else if (t->source < 0) {
        v = (double)j;
      } else if (len[t->source]) {
        const Tensor *s = &d->in[t->source];
        v = load(run->in[t->source] + (j % len[t->source]) * (uint64_t)elem_size(s->dtype), s->dtype);
      }
      double y = t->a * v;
      y = y + t->b;
      store(run->out[o] + j * (uint64_t)es, t->dtype, y);
    }
  }
}

/* One run on the calling thread (sync) or a stream worker (async). */
static aclError run_model(const char *fn, const Run *run) {
  Model *m = run->model;
  pthread_mutex_lock(&m_mu);
  int clash = m->executing++ > 0;
  pthread_mutex_unlock(&m_mu);
  aclError rc = 0;
  if (clash) {
    simacl_count("concurrent_exec", 1);
    rc = simacl_fail(ACL_ERROR_GE_FAILURE, "%s: model %u is already executing on another thread or stream (the real runtime's behaviour is undefined; serialise runs of one model id)", fn, m->id);
  }
  int32_t taskFault = rc ? 0 : simacl_fault_check("task");
  if (!rc && simacl_fault_check("stall")) rc = simacl_stall_wait();
  if (!rc) rc = simacl_busy(simacl_run_latency_us(m->def.latencyUs, m->def.jitterUs));
  if (!rc && taskFault) rc = simacl_fail(taskFault, "%s: injected task failure", fn);
  if (!rc) rc = simacl_device_fault_code();
  if (!rc) compute(run);
  else if (rc == simacl_device_fault_code()) simacl_fail(rc, "%s: the simulated device failed during the run", fn);
  pthread_mutex_lock(&m_mu);
  m->executing--;
  pthread_mutex_unlock(&m_mu);
  simacl_count("executions", 1);
  return rc;
}

SIMACL_API aclError aclmdlExecute(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output) {
  simacl_ctx *ctx;
  aclError rc = simacl_enter("aclmdlExecute", 1, &ctx);
  if (rc) return rc;
  Run *run = malloc(sizeof *run);
  if (!run) return simacl_fail(ACL_ERROR_BAD_ALLOC, "aclmdlExecute: out of memory");
  rc = prepare("aclmdlExecute", modelId, input, output, ctx, run);
  if (!rc) rc = run_model("aclmdlExecute", run);
  release_run(run);
  free(run);
  return rc;
}

static aclError async_job(void *arg) {
  Run *run = arg;
  aclError rc = simacl_device_fault_code(); /* queued work of a faulted device fails */
  if (!rc) rc = run_model("aclmdlExecuteAsync", run);
  return rc;
}

static void async_done(void *arg) {
  Run *run = arg;
  for (int32_t i = 0; i < run->npinned; i++) simacl_device_pin(run->pinned[i], -1);
  release_run(run);
  free(run);
}

SIMACL_API aclError aclmdlExecuteAsync(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output, aclrtStream stream) {
  simacl_ctx *ctx;
  aclError rc = simacl_enter("aclmdlExecuteAsync", 1, &ctx);
  if (rc) return rc;
  Run *run = malloc(sizeof *run);
  if (!run) return simacl_fail(ACL_ERROR_BAD_ALLOC, "aclmdlExecuteAsync: out of memory");
  rc = prepare("aclmdlExecuteAsync", modelId, input, output, ctx, run);
  if (rc) {
    release_run(run);
    free(run);
    return rc;
  }
  /* The datasets are resolved now (the simulator snapshots them); the buffers stay pinned. */
  for (int32_t i = 0; i < run->npinned; i++) simacl_device_pin(run->pinned[i], 1);
  rc = simacl_stream_enqueue(stream, ctx, async_job, async_done, run);
  if (rc) {
    async_done(run);
    return rc;
  }
  simacl_count("async_executions", 1);
  return ACL_SUCCESS;
}
