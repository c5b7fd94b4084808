/* libdnn.so simulator: loads HBSIM1 model files (tests/sim/FORMAT.md), answers property
 * queries, and turns hbDNNInferV2 into simulator tasks run by libhbucp.so (sim_ucp.c).
 * A test double only: the "model" is a documented affine map, not a neural network.
 *
 * The parser must never crash on any byte sequence: every read is bounds-checked and every
 * size is validated before it is used to allocate or index. */
#pragma STDC FP_CONTRACT OFF /* a*v+b must round twice, exactly like the TS reference */

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim.h"
#include "sim_numeric.h"

#define MAX_RANK HB_DNN_TENSOR_MAX_DIMENSIONS
#define MAX_DIM (1 << 30)
#define MAX_SPAN (1ull << 40)
#define MAX_FILE (1u << 30)
#define MAX_IO 64
#define MAX_SCALES (1 << 20)

/* ---- model structures ------------------------------------------------------------------ */

typedef struct {
  char *name;
  int32_t dtype, rank;
  int32_t dims[MAX_RANK];
  int64_t stride[MAX_RANK];
  int64_t aligned;
  int32_t quantiType, axis, scaleLen, zpLen;
  float *scales;
  int32_t *zps;
  uint32_t dynAlign;
  int32_t source; /* outputs: input index, or -1 = element index */
  double a, b;
} SimTensor;

struct SimPack;
typedef struct {
  struct SimPack *pack;
  char *name;
  int32_t cores;
  uint32_t latencyUs, functionCalls;
  int32_t nin, nout;
  SimTensor *in, *out;
} SimModel;

typedef struct SimPack {
  struct SimPack *next;
  int released;
  int refs; /* live sub-task contexts; the pack is freed when released and refs == 0 */
  int32_t nmodels;
  SimModel *models;
  const char **names;
} SimPack;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static SimPack *g_packs;

SIM_API const char *hbDNNGetVersion(void) { return hbSimStringsNull(1) ? NULL : "3.13.6_(simulator)"; }

SIM_API const char *hbDNNGetErrorDesc(int32_t code) {
  if (hbSimStringsNull(4)) return NULL;
  switch (code) {
    case -100001: return "HB_DNN_INVALID_ARGUMENT / INVALID_(PACKED_)DNN_HANDLE (simulator): invalid argument or handle";
    case -100002: return "HB_DNN_API_USE_ERROR (simulator): API used in a wrong state or order";
    case -200001: return "HB_DNN_TASK_NUM_EXCEED_LIMIT (simulator): too many coexisting tasks (max 32)";
    case -200002: return "HB_DNN_TIMEOUT (simulator): timed out";
    case -200003: return "HB_DNN_RUN_TASK_FAILED (simulator): task run failed";
    case -200004: return "HB_DNN_INVALID_TASK_HANDLE (simulator): invalid task handle";
    case -400001: return "HB_DNN_OUT_OF_MEMORY (simulator): out of memory";
    case -500001: return "HB_DNN_CAN_NOT_OPEN_FILE (simulator): cannot open model file";
    case -600001: return "HB_DNN_MODEL_NUMBER_EXCEED_LIMIT (simulator): too many models";
    case -600002: return "HB_DNN_INVALID_MODEL (simulator): invalid simulator model file";
    case -600003: return "HB_DNN_MODEL_IS_RUNNING (simulator): model in use";
    case -600004: return "HB_DNN_INCOMPATIBLE_MODEL (simulator): incompatible model";
    default: return hbUCPGetErrorDesc(code); /* the codes are shared with UCP (A.6) */
  }
}

/* ---- numerics (mirrored exactly by simfile.ts) ------------------------------------------ */

static int elem_size(int32_t dt) {
  static const int8_t k[] = {1, 1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8, 1};
  return dt >= 0 && dt < HB_DNN_TENSOR_TYPE_MAX ? k[dt] : 0;
}

static int is_int_type(int32_t dt) {
  return dt != HB_DNN_TENSOR_TYPE_F16 && dt != HB_DNN_TENSOR_TYPE_F32 && dt != HB_DNN_TENSOR_TYPE_F64 &&
         dt != HB_DNN_TENSOR_TYPE_BOOL8;
}

static double load(const uint8_t *p, int32_t dt) {
  switch (dt) {
    case HB_DNN_TENSOR_TYPE_S4:
    case HB_DNN_TENSOR_TYPE_S8: return (int8_t)p[0];
    case HB_DNN_TENSOR_TYPE_U4:
    case HB_DNN_TENSOR_TYPE_U8:
    case HB_DNN_TENSOR_TYPE_BOOL8: return p[0];
    case HB_DNN_TENSOR_TYPE_F16: { uint16_t v; memcpy(&v, p, 2); return f16_to_f64(v); }
    case HB_DNN_TENSOR_TYPE_S16: { int16_t v; memcpy(&v, p, 2); return v; }
    case HB_DNN_TENSOR_TYPE_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case HB_DNN_TENSOR_TYPE_F32: { float v; memcpy(&v, p, 4); return v; }
    case HB_DNN_TENSOR_TYPE_S32: { int32_t v; memcpy(&v, p, 4); return v; }
    case HB_DNN_TENSOR_TYPE_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case HB_DNN_TENSOR_TYPE_F64: { double v; memcpy(&v, p, 8); return v; }
    case HB_DNN_TENSOR_TYPE_S64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case HB_DNN_TENSOR_TYPE_U64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    default: return 0;
  }
}

static void store(uint8_t *p, int32_t dt, double y, const SimTensor *m, int ch) {
  switch (dt) {
    case HB_DNN_TENSOR_TYPE_F16: { uint16_t v = f64_to_f16(y); memcpy(p, &v, 2); return; }
    case HB_DNN_TENSOR_TYPE_F32: { float v = (float)y; memcpy(p, &v, 4); return; }
    case HB_DNN_TENSOR_TYPE_F64: memcpy(p, &y, 8); return;
    case HB_DNN_TENSOR_TYPE_BOOL8: p[0] = y != 0; return; /* NaN counts as true */
    default: break;
  }
  double v = y;
  if (m->quantiType == HB_DNN_QUANTI_SCALE) {
    v = v / (double)m->scales[ch];
    if (m->zpLen) v = v + (double)m->zps[ch];
  }
  if (isnan(v)) v = 0;
  v = rhe(v);
  switch (dt) {
    case HB_DNN_TENSOR_TYPE_S4: p[0] = (uint8_t)(int8_t)fmin(fmax(v, -8), 7); return;
    case HB_DNN_TENSOR_TYPE_U4: p[0] = (uint8_t)fmin(fmax(v, 0), 15); return;
    case HB_DNN_TENSOR_TYPE_S8: p[0] = (uint8_t)(int8_t)fmin(fmax(v, -128), 127); return;
    case HB_DNN_TENSOR_TYPE_U8: p[0] = (uint8_t)fmin(fmax(v, 0), 255); return;
    case HB_DNN_TENSOR_TYPE_S16: { int16_t q = (int16_t)fmin(fmax(v, -32768), 32767); memcpy(p, &q, 2); return; }
    case HB_DNN_TENSOR_TYPE_U16: { uint16_t q = (uint16_t)fmin(fmax(v, 0), 65535); memcpy(p, &q, 2); return; }
    case HB_DNN_TENSOR_TYPE_S32: { int32_t q = (int32_t)fmin(fmax(v, -2147483648.0), 2147483647.0); memcpy(p, &q, 4); return; }
    case HB_DNN_TENSOR_TYPE_U32: { uint32_t q = (uint32_t)fmin(fmax(v, 0), 4294967295.0); memcpy(p, &q, 4); return; }
    case HB_DNN_TENSOR_TYPE_S64: {
      int64_t q = v >= 0x1p63 ? INT64_MAX : v < -0x1p63 ? INT64_MIN : (int64_t)v;
      memcpy(p, &q, 8);
      return;
    }
    case HB_DNN_TENSOR_TYPE_U64: {
      uint64_t q = v >= 0x1p64 ? UINT64_MAX : v <= 0 ? 0 : (uint64_t)v;
      memcpy(p, &q, 8);
      return;
    }
    default: return;
  }
}

/* ---- shape/stride checks --------------------------------------------------------------- */

/* Bytes spanned by a fully known layout (last element's offset + its size), 0 on overflow. */
static uint64_t layout_span(int rank, const int32_t *dims, const int64_t *stride, int esize) {
  uint64_t span = (uint64_t)esize;
  for (int i = 0; i < rank; i++) {
    uint64_t t;
    if (__builtin_mul_overflow((uint64_t)(dims[i] - 1), (uint64_t)stride[i], &t) ||
        __builtin_add_overflow(span, t, &span) || span > MAX_SPAN)
      return 0;
  }
  return span;
}

/* Known strides must not overlap: stride[i] >= stride[i+1] * dims[i+1], innermost >= esize. */
static int strides_ok(int rank, const int32_t *dims, const int64_t *stride, int esize) {
  for (int i = rank - 1; i >= 0; i--) {
    if (stride[i] == -1) continue;
    if (stride[i] < 1 || stride[i] > (int64_t)MAX_SPAN) return 0;
    if (i == rank - 1) {
      if (stride[i] < esize) return 0;
      continue;
    }
    if (stride[i + 1] == -1 || dims[i + 1] == -1) return 0; /* fixed outer over dynamic inner */
    int64_t inner;
    if (__builtin_mul_overflow(stride[i + 1], (int64_t)dims[i + 1], &inner) || stride[i] < inner) return 0;
  }
  return 1;
}

/* ---- parser ---------------------------------------------------------------------------- */

typedef struct {
  const uint8_t *p;
  size_t n, off;
  int bad;
} Rd;

static const uint8_t *rd_bytes(Rd *r, size_t k) {
  if (r->bad || k > r->n - r->off) {
    r->bad = 1;
    return NULL;
  }
  const uint8_t *q = r->p + r->off;
  r->off += k;
  return q;
}
#define RD_FN(name, T)                  \
  static T name(Rd *r) {                \
    T v = 0;                            \
    const uint8_t *q = rd_bytes(r, sizeof v); \
    if (q) memcpy(&v, q, sizeof v);     \
    return v;                           \
  }
RD_FN(rd_u16, uint16_t)
RD_FN(rd_u32, uint32_t)
RD_FN(rd_i32, int32_t)
RD_FN(rd_u64, uint64_t)
RD_FN(rd_i64, int64_t)
RD_FN(rd_f32, float)
RD_FN(rd_f64, double)

static char *rd_name(Rd *r) {
  uint16_t len = rd_u16(r);
  if (r->bad || len == 0 || len > 255) {
    r->bad = 1;
    return NULL;
  }
  const uint8_t *q = rd_bytes(r, len);
  if (!q || memchr(q, 0, len)) {
    r->bad = 1;
    return NULL;
  }
  char *s = malloc((size_t)len + 1);
  if (!s) {
    r->bad = 1;
    return NULL;
  }
  memcpy(s, q, len);
  s[len] = 0;
  return s;
}

static void free_tensor(SimTensor *t) {
  free(t->name);
  free(t->scales);
  free(t->zps);
}

static void free_model(SimModel *m) {
  for (int i = 0; m->in && i < m->nin; i++) free_tensor(&m->in[i]);
  for (int i = 0; m->out && i < m->nout; i++) free_tensor(&m->out[i]);
  free(m->in);
  free(m->out);
  free(m->name);
}

/* Outputs may have -1 dims: dim i then takes the run-time dim i of the source input, and the
 * output's strides (all -1) are dense at run time. */
static int parse_tensor(Rd *r, SimTensor *t, int isOutput, int32_t nin, const SimTensor *ins) {
  t->name = rd_name(r);
  t->dtype = rd_i32(r);
  t->rank = rd_i32(r);
  if (r->bad || !elem_size(t->dtype) || t->rank < 1 || t->rank > MAX_RANK) return 0;
  int esize = elem_size(t->dtype), dynamic = 0;
  int dynOut = 0;
  for (int i = 0; i < t->rank; i++) {
    t->dims[i] = rd_i32(r);
    if (t->dims[i] == -1) dynamic = 1, dynOut |= isOutput;
    else if (t->dims[i] < 1 || t->dims[i] > MAX_DIM) return 0;
  }
  for (int i = 0; i < t->rank; i++) {
    t->stride[i] = rd_i64(r);
    if (t->stride[i] == -1 && !isOutput) dynamic = 1;
    else if (t->stride[i] == -1 && !dynOut) return 0; /* outputs: -1 strides only with -1 dims */
    else if (t->stride[i] != -1 && (t->stride[i] < 1 || dynOut)) return 0;
  }
  t->aligned = rd_i64(r); /* -1: the runtime gives no size (NV12, dynamic tensors) */
  t->quantiType = rd_i32(r);
  t->axis = rd_i32(r);
  if (r->bad || !strides_ok(t->rank, t->dims, t->stride, esize) || t->aligned < -1) return 0;
  if (!dynamic && t->aligned != -1) {
    uint64_t span = layout_span(t->rank, t->dims, t->stride, esize);
    if (!span || (uint64_t)t->aligned < span) return 0; /* alignedByteSize too small */
  }
  if (t->axis < -1 || t->axis >= t->rank) return 0;
  t->scaleLen = rd_i32(r);
  if (r->bad || t->scaleLen < 0 || t->scaleLen > MAX_SCALES || (size_t)t->scaleLen * 4 > r->n - r->off) return 0;
  if (t->scaleLen) {
    t->scales = malloc(sizeof(float) * (size_t)t->scaleLen);
    if (!t->scales) return 0;
    for (int i = 0; i < t->scaleLen; i++) {
      t->scales[i] = rd_f32(r);
      if (!isfinite(t->scales[i]) || !(t->scales[i] > 0)) return 0;
    }
  }
  t->zpLen = rd_i32(r);
  if (r->bad || t->zpLen < 0 || t->zpLen > MAX_SCALES || (size_t)t->zpLen * 4 > r->n - r->off) return 0;
  if (t->zpLen) {
    t->zps = malloc(sizeof(int32_t) * (size_t)t->zpLen);
    if (!t->zps) return 0;
    for (int i = 0; i < t->zpLen; i++) t->zps[i] = rd_i32(r);
  }
  t->dynAlign = rd_u32(r);
  if (r->bad || t->dynAlign > 4096) return 0;
  if (t->quantiType == HB_DNN_QUANTI_NONE) {
    if (t->scaleLen || t->zpLen) return 0;
  } else if (t->quantiType == HB_DNN_QUANTI_SCALE) {
    if (!is_int_type(t->dtype) || t->scaleLen < 1) return 0;
    if (t->zpLen && t->zpLen != t->scaleLen) return 0;
    /* scaleLen > 1 = per-axis: one scale per index of the (fixed) quantizeAxis dim. */
    if (t->scaleLen > 1 && (t->axis < 0 || t->dims[t->axis] != t->scaleLen)) return 0;
  } else {
    return 0;
  }
  if (isOutput) {
    t->source = rd_i32(r);
    t->a = rd_f64(r);
    t->b = rd_f64(r);
    if (r->bad || t->source < -1 || t->source >= nin || !isfinite(t->a) || !isfinite(t->b)) return 0;
    for (int i = 0; dynOut && i < t->rank; i++)
      if (t->dims[i] == -1 && (t->source < 0 || i >= ins[t->source].rank)) return 0;
  }
  return !r->bad;
}

static int names_unique(SimTensor *t, int n) {
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (!strcmp(t[i].name, t[j].name)) return 0;
  return 1;
}

static int parse_model(Rd *r, SimModel *m) {
  m->name = rd_name(r);
  m->cores = (int32_t)rd_u32(r);
  m->latencyUs = rd_u32(r);
  m->functionCalls = rd_u32(r);
  uint32_t nin = rd_u32(r), nout = rd_u32(r);
  if (r->bad || m->cores < 1 || m->cores > SIM_MAX_CORES || m->latencyUs > 60000000u ||
      m->functionCalls < 1 || m->functionCalls > 1000 || nin > MAX_IO || nout < 1 || nout > MAX_IO)
    return 0;
  m->in = calloc(nin ? nin : 1, sizeof(SimTensor));
  m->out = calloc(nout, sizeof(SimTensor));
  if (!m->in || !m->out) return 0;
  for (uint32_t i = 0; i < nin; i++) {
    m->nin = (int32_t)i + 1; /* so free_model frees what was parsed so far */
    if (!parse_tensor(r, &m->in[i], 0, 0, NULL)) return 0;
  }
  m->nin = (int32_t)nin;
  for (uint32_t i = 0; i < nout; i++) {
    m->nout = (int32_t)i + 1;
    if (!parse_tensor(r, &m->out[i], 1, (int32_t)nin, m->in)) return 0;
  }
  return names_unique(m->in, m->nin) && names_unique(m->out, m->nout);
}

/* Parses one file image; appends its models to *models (*count entries, array of SIM_MAX_MODELS). */
static int32_t parse_file(const uint8_t *p, size_t n, SimModel *models, int32_t *count) {
  Rd r = {.p = p, .n = n};
  const uint8_t *magic = rd_bytes(&r, 8);
  if (!magic || memcmp(magic, "HBSIM1\0\0", 8) != 0) return HB_DNN_INVALID_MODEL;
  uint32_t version = rd_u32(&r), nmodels = rd_u32(&r);
  uint64_t size = rd_u64(&r);
  if (r.bad || version != 1 || size != n || nmodels < 1) return HB_DNN_INVALID_MODEL;
  if (nmodels > (uint32_t)(SIM_MAX_MODELS - *count)) return HB_DNN_MODEL_NUMBER_EXCEED_LIMIT;
  for (uint32_t i = 0; i < nmodels; i++) {
    SimModel *m = &models[(*count)++];
    memset(m, 0, sizeof *m);
    if (!parse_model(&r, m)) return HB_DNN_INVALID_MODEL;
  }
  if (r.off != n) return HB_DNN_INVALID_MODEL; /* trailing bytes */
  return HB_DNN_SUCCESS;
}

static int32_t make_pack(hbDNNPackedHandle_t *out, int32_t count, const uint8_t **imgs, const size_t *lens) {
  SimModel *models = calloc(SIM_MAX_MODELS, sizeof(SimModel));
  if (!models) return HB_DNN_OUT_OF_MEMORY;
  int32_t n = 0, rc = HB_DNN_SUCCESS;
  for (int32_t f = 0; f < count && !rc; f++) rc = parse_file(imgs[f], lens[f], models, &n);
  for (int32_t i = 0; i < n && !rc; i++)
    for (int32_t j = i + 1; j < n; j++)
      if (!strcmp(models[i].name, models[j].name)) rc = HB_DNN_INVALID_MODEL; /* duplicate name */
  SimPack *pk = rc ? NULL : calloc(1, sizeof *pk);
  const char **names = rc ? NULL : calloc((size_t)n, sizeof(char *));
  if (!rc && (!pk || !names)) rc = HB_DNN_OUT_OF_MEMORY;
  if (rc) {
    for (int32_t i = 0; i < n; i++) free_model(&models[i]);
    free(models);
    free(pk);
    free(names);
    return rc;
  }
  pk->models = models;
  pk->nmodels = n;
  pk->names = names;
  for (int32_t i = 0; i < n; i++) {
    models[i].pack = pk;
    names[i] = models[i].name;
  }
  pthread_mutex_lock(&g_mu);
  pk->next = g_packs;
  g_packs = pk;
  pthread_mutex_unlock(&g_mu);
  *out = pk;
  return HB_DNN_SUCCESS;
}

static int32_t read_file(const char *path, uint8_t **data, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return HB_DNN_CAN_NOT_OPEN_FILE;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return HB_DNN_CAN_NOT_OPEN_FILE;
  }
  if (st.st_size > (off_t)MAX_FILE) {
    close(fd);
    return HB_DNN_INVALID_MODEL;
  }
  size_t n = (size_t)st.st_size, got = 0;
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) {
    close(fd);
    return HB_DNN_OUT_OF_MEMORY;
  }
  while (got < n) {
    ssize_t k = read(fd, buf + got, n - got);
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(fd);
  *data = buf;
  *len = got; /* a file that shrank while reading is simply parsed as truncated */
  return HB_DNN_SUCCESS;
}

SIM_API int32_t hbDNNInitializeFromFiles(hbDNNPackedHandle_t *packed, char const **files, int32_t count) {
  if (!packed || !files || count < 1 || count > SIM_MAX_MODELS) return HB_DNN_INVALID_ARGUMENT;
  int32_t fault = hbSimFaultCheck("hbDNNInitializeFromFiles");
  if (fault) return fault;
  for (int32_t i = 0; i < count; i++)
    if (!files[i]) return HB_DNN_INVALID_ARGUMENT;
  uint8_t *imgs[SIM_MAX_MODELS] = {0};
  size_t lens[SIM_MAX_MODELS] = {0};
  int32_t rc = HB_DNN_SUCCESS;
  for (int32_t i = 0; i < count && !rc; i++) rc = read_file(files[i], &imgs[i], &lens[i]);
  if (!rc) rc = make_pack(packed, count, (const uint8_t **)imgs, lens);
  for (int32_t i = 0; i < count; i++) free(imgs[i]);
  return rc;
}

SIM_API int32_t hbDNNInitializeFromDDR(hbDNNPackedHandle_t *packed, const void **data, int32_t *lens,
                                       int32_t count) {
  if (!packed || !data || !lens || count < 1 || count > SIM_MAX_MODELS) return HB_DNN_INVALID_ARGUMENT;
  size_t sizes[SIM_MAX_MODELS];
  for (int32_t i = 0; i < count; i++) {
    if (!data[i] || lens[i] < 0) return HB_DNN_INVALID_ARGUMENT;
    sizes[i] = (size_t)lens[i];
  }
  return make_pack(packed, count, (const uint8_t **)data, sizes); /* copies: caller may free data */
}

/* ---- handles --------------------------------------------------------------------------- */

static void free_pack(SimPack *pk) {
  for (int32_t i = 0; i < pk->nmodels; i++) free_model(&pk->models[i]);
  free(pk->models);
  free(pk->names);
  free(pk);
}

static SimPack *find_pack(hbDNNPackedHandle_t h) { /* caller holds g_mu */
  for (SimPack *p = g_packs; p; p = p->next)
    if (p == h && !p->released) return p;
  return NULL;
}

static SimModel *find_model(hbDNNHandle_t h) { /* caller holds g_mu */
  for (SimPack *p = g_packs; p; p = p->next)
    if (!p->released && (uintptr_t)h >= (uintptr_t)p->models &&
        (uintptr_t)h < (uintptr_t)(p->models + p->nmodels) &&
        ((uintptr_t)h - (uintptr_t)p->models) % sizeof(SimModel) == 0)
      return (SimModel *)h;
  return NULL;
}

static void pack_unref(SimPack *pk) { /* caller holds g_mu */
  pk->refs--;
  if (pk->released && pk->refs == 0) {
    SimPack **pp = &g_packs;
    while (*pp != pk) pp = &(*pp)->next;
    *pp = pk->next;
    free_pack(pk);
  }
}

SIM_API int32_t hbDNNRelease(hbDNNPackedHandle_t h) {
  int32_t fault = hbSimFaultCheck("hbDNNRelease");
  if (fault) return fault; /* nothing released */
  pthread_mutex_lock(&g_mu);
  SimPack *pk = find_pack(h);
  if (!pk) {
    pthread_mutex_unlock(&g_mu);
    return HB_DNN_INVALID_PACKED_DNN_HANDLE;
  }
  if (pk->refs > 0) { /* like the real runtime: refused while tasks of its models are alive; kept */
    pthread_mutex_unlock(&g_mu);
    hbSimCountEvent("model_release_refused", 1);
    return HB_DNN_MODEL_IS_RUNNING;
  }
  pk->released = 1;
  pk->refs++;
  pack_unref(pk);
  pthread_mutex_unlock(&g_mu);
  hbSimCountEvent("models_released", 1);
  return HB_DNN_SUCCESS;
}

SIM_API int32_t hbDNNGetModelNameList(char const ***list, int32_t *count, hbDNNPackedHandle_t h) {
  if (!list || !count) return HB_DNN_INVALID_ARGUMENT;
  int32_t fault = hbSimFaultCheck("hbDNNGetModelNameList");
  if (fault) return fault;
  pthread_mutex_lock(&g_mu);
  SimPack *pk = find_pack(h);
  if (pk) {
    *list = pk->names;
    *count = pk->nmodels;
  }
  pthread_mutex_unlock(&g_mu);
  return pk ? HB_DNN_SUCCESS : HB_DNN_INVALID_PACKED_DNN_HANDLE;
}

SIM_API int32_t hbDNNGetModelHandle(hbDNNHandle_t *out, hbDNNPackedHandle_t h, char const *name) {
  if (!out || !name) return HB_DNN_INVALID_ARGUMENT;
  int32_t fault = hbSimFaultCheck("hbDNNGetModelHandle");
  if (fault) return fault;
  pthread_mutex_lock(&g_mu);
  SimPack *pk = find_pack(h);
  int32_t rc = pk ? HB_DNN_INVALID_ARGUMENT : HB_DNN_INVALID_PACKED_DNN_HANDLE;
  for (int32_t i = 0; pk && i < pk->nmodels; i++)
    if (!strcmp(pk->models[i].name, name)) {
      *out = &pk->models[i];
      rc = HB_DNN_SUCCESS;
      break;
    }
  pthread_mutex_unlock(&g_mu);
  return rc;
}

/* Looks up the model and one of its tensors; fills what the getters need under the lock. */
static int32_t with_tensor(hbDNNHandle_t h, int isOutput, int32_t idx, SimTensor **t) {
  SimModel *m = find_model(h);
  if (!m) return HB_DNN_INVALID_DNN_HANDLE;
  int32_t n = isOutput ? m->nout : m->nin;
  if (idx < 0 || idx >= n) return HB_DNN_INVALID_ARGUMENT;
  *t = isOutput ? &m->out[idx] : &m->in[idx];
  return HB_DNN_SUCCESS;
}

static int32_t get_count(int32_t *count, hbDNNHandle_t h, int isOutput) {
  if (!count) return HB_DNN_INVALID_ARGUMENT;
  int32_t fault = hbSimFaultCheck(isOutput ? "hbDNNGetOutputCount" : "hbDNNGetInputCount");
  if (fault) return fault;
  pthread_mutex_lock(&g_mu);
  SimModel *m = find_model(h);
  if (m) *count = isOutput ? m->nout : m->nin;
  pthread_mutex_unlock(&g_mu);
  return m ? HB_DNN_SUCCESS : HB_DNN_INVALID_DNN_HANDLE;
}

SIM_API int32_t hbDNNGetInputCount(int32_t *count, hbDNNHandle_t h) { return get_count(count, h, 0); }
SIM_API int32_t hbDNNGetOutputCount(int32_t *count, hbDNNHandle_t h) { return get_count(count, h, 1); }

static int32_t get_name(char const **name, hbDNNHandle_t h, int32_t idx, int isOutput) {
  if (!name) return HB_DNN_INVALID_ARGUMENT;
  int32_t fault = hbSimFaultCheck(isOutput ? "hbDNNGetOutputName" : "hbDNNGetInputName");
  if (fault) return fault;
  pthread_mutex_lock(&g_mu);
  SimTensor *t = NULL;
  int32_t rc = with_tensor(h, isOutput, idx, &t);
  if (!rc) *name = t->name;
  pthread_mutex_unlock(&g_mu);
  return rc;
}

SIM_API int32_t hbDNNGetInputName(char const **name, hbDNNHandle_t h, int32_t i) { return get_name(name, h, i, 0); }
SIM_API int32_t hbDNNGetOutputName(char const **name, hbDNNHandle_t h, int32_t i) { return get_name(name, h, i, 1); }

/* Properties of t with the given shape and strides (the model's, or a run's). */
static void fill_props(hbDNNTensorProperties *p, const SimTensor *t, const int32_t *dims, const int64_t *stride,
                       int64_t aligned) {
  memset(p, 0, sizeof *p);
  p->validShape.numDimensions = t->rank;
  for (int i = 0; i < t->rank; i++) {
    p->validShape.dimensionSize[i] = dims[i];
    p->stride[i] = stride[i];
  }
  p->tensorType = t->dtype;
  p->scale.scaleLen = t->scaleLen;
  p->scale.scaleData = t->scales; /* owned by the packed handle, valid until hbDNNRelease */
  p->scale.zeroPointLen = t->zpLen;
  p->scale.zeroPointData = t->zps;
  p->quantiType = (hbDNNQuantiType)t->quantiType;
  p->quantizeAxis = t->axis;
  p->alignedByteSize = aligned;
}

static int32_t get_props(hbDNNTensorProperties *p, hbDNNHandle_t h, int32_t idx, int isOutput) {
  if (!p) return HB_DNN_INVALID_ARGUMENT;
  int32_t fault = hbSimFaultCheck(isOutput ? "hbDNNGetOutputTensorProperties" : "hbDNNGetInputTensorProperties");
  if (fault) return fault;
  pthread_mutex_lock(&g_mu);
  SimTensor *t = NULL;
  int32_t rc = with_tensor(h, isOutput, idx, &t);
  if (!rc) fill_props(p, t, t->dims, t->stride, t->aligned);
  pthread_mutex_unlock(&g_mu);
  return rc;
}

SIM_API int32_t hbDNNGetInputTensorProperties(hbDNNTensorProperties *p, hbDNNHandle_t h, int32_t i) {
  return get_props(p, h, i, 0);
}
SIM_API int32_t hbDNNGetOutputTensorProperties(hbDNNTensorProperties *p, hbDNNHandle_t h, int32_t i) {
  return get_props(p, h, i, 1);
}

SIM_API int32_t hbDNNGetCompileBpuCoreNum(int32_t *n, hbDNNHandle_t h) {
  if (!n) return HB_DNN_INVALID_ARGUMENT;
  int32_t fault = hbSimFaultCheck("hbDNNGetCompileBpuCoreNum");
  if (fault) return fault;
  pthread_mutex_lock(&g_mu);
  SimModel *m = find_model(h);
  if (m) *n = m->cores;
  pthread_mutex_unlock(&g_mu);
  return m ? HB_DNN_SUCCESS : HB_DNN_INVALID_DNN_HANDLE;
}

/* ---- inference ------------------------------------------------------------------------- */

typedef struct {
  int32_t rank;
  int32_t dims[MAX_RANK];
  int64_t stride[MAX_RANK];
  uint64_t count, span;
  uint64_t region; /* bytes the device may touch: span, or for outputs max(span, alignedByteSize) */
  const SimTensor *m;
} RunTensor;

typedef struct {
  SimModel *model;
  int32_t nin, nout;
  RunTensor *t; /* nin inputs, then nout outputs */
  hbSimBufRef *bufs;
} RunCtx;

/* Dense logical index j -> byte offset through t's strides; *ch = index along axis. */
static uint64_t offset_of(const RunTensor *t, uint64_t j, int axis, int *ch) {
  uint64_t off = 0;
  for (int d = t->rank - 1; d >= 0; d--) {
    uint64_t i = j % (uint64_t)t->dims[d];
    j /= (uint64_t)t->dims[d];
    off += i * (uint64_t)t->stride[d];
    if (d == axis) *ch = (int)i;
  }
  return off;
}

static int32_t run_model(void *vctx, uint8_t *const *dev) {
  RunCtx *c = vctx;
  for (int32_t o = 0; o < c->nout; o++) {
    const RunTensor *ot = &c->t[c->nin + o];
    const SimTensor *om = ot->m;
    uint8_t *out = dev[c->nin + o];
    memset(out, 0xCD, (size_t)ot->region); /* padding gets a recognizable pattern */
    const RunTensor *it = om->source >= 0 ? &c->t[om->source] : NULL;
    const SimTensor *im = it ? it->m : NULL;
    int oaxis = om->scaleLen > 1 ? om->axis : -1, iaxis = im && im->scaleLen > 1 ? im->axis : -1;
    for (uint64_t j = 0; j < ot->count; j++) {
      double v;
      if (!it) {
        v = (double)j;
      } else {
        int ich = 0;
        uint64_t off = offset_of(it, j % it->count, iaxis, &ich);
        v = load(dev[om->source] + off, im->dtype);
        if (im->quantiType == HB_DNN_QUANTI_SCALE) {
          if (im->zpLen) v = v - (double)im->zps[ich];
          v = v * (double)im->scales[ich];
        }
      }
      double y = om->a * v; /* two statements + FP_CONTRACT OFF: no fused multiply-add */
      y = y + om->b;
      int och = 0;
      uint64_t off = offset_of(ot, j, oaxis, &och);
      store(out + off, om->dtype, y, om, och);
    }
  }
  return 0;
}

static void destroy_ctx(void *vctx) {
  RunCtx *c = vctx;
  if (!c) return;
  pthread_mutex_lock(&g_mu);
  pack_unref(c->model->pack);
  pthread_mutex_unlock(&g_mu);
  free(c->t);
  free(c->bufs);
  free(c);
}

static int is_dynamic_output(const SimTensor *m) {
  for (int i = 0; i < m->rank; i++)
    if (m->dims[i] == -1) return 1;
  return 0;
}

/* A dynamic output's shape for this run (from its source input) with dense strides. */
static int32_t dynamic_output(const hbDNNTensor *ut, const SimTensor *m, const RunTensor *src, RunTensor *rt) {
  int esize = elem_size(m->dtype);
  rt->rank = m->rank;
  rt->m = m;
  rt->count = 1;
  for (int i = m->rank - 1; i >= 0; i--) {
    rt->dims[i] = m->dims[i] == -1 ? src->dims[i] : m->dims[i];
    rt->stride[i] = i == m->rank - 1 ? esize : rt->stride[i + 1] * rt->dims[i + 1];
    if (__builtin_mul_overflow(rt->count, (uint64_t)rt->dims[i], &rt->count)) return HB_DNN_INVALID_ARGUMENT;
  }
  rt->span = layout_span(rt->rank, rt->dims, rt->stride, esize);
  rt->region = rt->span;
  /* The real runtime checks only virAddr and memSize of outputs; what it does when this run's
     shape outgrows memSize is unverified: the simulator refuses the task. */
  if (!rt->span || ut->sysMem.memSize < rt->region || !ut->sysMem.virAddr) return HB_DNN_INVALID_ARGUMENT;
  return HB_DNN_SUCCESS;
}

/* Validates one caller tensor against the model tensor and fills rt (ins: the checked inputs). */
static int32_t check_tensor(const hbDNNTensor *ut, const SimTensor *m, int isOutput, RunTensor *rt,
                            const RunTensor *ins) {
  const hbDNNTensorProperties *p = &ut->properties;
  int esize = elem_size(m->dtype);
  if (isOutput && is_dynamic_output(m)) return dynamic_output(ut, m, &ins[m->source], rt);
  if (p->validShape.numDimensions != m->rank || p->tensorType != m->dtype) return HB_DNN_INVALID_ARGUMENT;
  rt->rank = m->rank;
  rt->m = m;
  rt->count = 1;
  int32_t align = hbSimAlignment(); /* every caller-filled stride: a multiple of the SoC's alignment */
  for (int i = 0; i < m->rank; i++) {
    int32_t d = p->validShape.dimensionSize[i];
    if (m->dims[i] != -1 ? d != m->dims[i] : (d < 1 || d > MAX_DIM)) return HB_DNN_INVALID_ARGUMENT;
    int64_t s = p->stride[i];
    if (s < 1) return HB_DNN_INVALID_ARGUMENT; /* -1 left unfilled */
    if (isOutput && s != m->stride[i]) return HB_DNN_INVALID_ARGUMENT; /* outputs use the model's layout */
    if (m->stride[i] == -1 && (s % align || (m->dynAlign && s % m->dynAlign))) return HB_DNN_INVALID_ARGUMENT;
    rt->dims[i] = d;
    rt->stride[i] = s;
    if (__builtin_mul_overflow(rt->count, (uint64_t)d, &rt->count)) return HB_DNN_INVALID_ARGUMENT;
  }
  if (!strides_ok(rt->rank, rt->dims, rt->stride, esize)) return HB_DNN_INVALID_ARGUMENT;
  rt->span = layout_span(rt->rank, rt->dims, rt->stride, esize);
  if (!rt->span) return HB_DNN_INVALID_ARGUMENT;
  /* Outputs: like a real BPU, the simulator may write the whole alignedByteSize region. */
  rt->region = isOutput && m->aligned > 0 && (uint64_t)m->aligned > rt->span ? (uint64_t)m->aligned : rt->span;
  if (ut->sysMem.memSize < rt->region || !ut->sysMem.virAddr) return HB_DNN_INVALID_ARGUMENT;
  return HB_DNN_SUCCESS;
}

static int overlaps(const hbSimBufRef *a, const hbSimBufRef *b) {
  uintptr_t a0 = (uintptr_t)a->vir, b0 = (uintptr_t)b->vir;
  return a0 < b0 + b->len && b0 < a0 + a->len;
}

SIM_API int32_t hbDNNInferV2(hbUCPTaskHandle_t *taskHandle, hbDNNTensor *output, hbDNNTensor const *input,
                             hbDNNHandle_t dnnHandle) {
  int32_t fault = hbSimFaultCheck("hbDNNInferV2");
  if (fault) return fault; /* no task */
  pthread_mutex_lock(&g_mu);
  SimModel *m = find_model(dnnHandle);
  if (!m) {
    pthread_mutex_unlock(&g_mu);
    return HB_DNN_INVALID_DNN_HANDLE;
  }
  if (!output || (m->nin && !input)) {
    pthread_mutex_unlock(&g_mu);
    return HB_DNN_INVALID_ARGUMENT;
  }
  int32_t nin = m->nin, nout = m->nout, n = nin + nout, rc = HB_DNN_SUCCESS;
  RunCtx *c = calloc(1, sizeof *c);
  if (c) c->t = calloc((size_t)n, sizeof(RunTensor));
  if (c) c->bufs = calloc((size_t)n, sizeof(hbSimBufRef));
  if (!c || !c->t || !c->bufs) {
    pthread_mutex_unlock(&g_mu);
    if (c) {
      free(c->t);
      free(c->bufs);
    }
    free(c);
    return HB_DNN_OUT_OF_MEMORY;
  }
  c->model = m;
  c->nin = nin;
  c->nout = nout;
  for (int32_t i = 0; i < n && !rc; i++) {
    const hbDNNTensor *ut = i < nin ? &input[i] : &output[i - nin];
    rc = check_tensor(ut, i < nin ? &m->in[i] : &m->out[i - nin], i >= nin, &c->t[i], c->t);
    c->bufs[i] = (hbSimBufRef){ut->sysMem.virAddr, ut->sysMem.phyAddr, c->t[i].region, i >= nin};
  }
  m->pack->refs++; /* the context keeps the model alive even across hbDNNRelease */
  int32_t cores = m->cores;
  hbSimSubtaskDesc d = {.run = run_model, .destroy = destroy_ctx, .ctx = c, .latencyUs = m->latencyUs,
                        .functionCalls = (int32_t)m->functionCalls, .coreNum = cores,
                        .bufs = c->bufs, .bufCount = n};
  pthread_mutex_unlock(&g_mu);

  /* Buffers must come from hbUCPMalloc*; outputs must not alias anything. */
  for (int32_t i = 0; i < n && !rc; i++) rc = hbSimCheckBuffer(c->bufs[i].vir, c->bufs[i].phy, c->bufs[i].len);
  for (int32_t i = nin; i < n && !rc; i++)
    for (int32_t j = 0; j < n && !rc; j++)
      if (j != i && overlaps(&c->bufs[i], &c->bufs[j])) rc = HB_DNN_INVALID_ARGUMENT;
  if (rc) {
    destroy_ctx(c);
    return rc;
  }

  if (!taskHandle) { /* synchronous: default sched params, wait, release (A.7.1) */
    if (cores > 1 || hbSimOnWorkerThread()) { /* multi-core unsupported; on a worker it would deadlock */
      destroy_ctx(c);
      return HB_DNN_API_USE_ERROR;
    }
    hbUCPTaskHandle_t t = NULL;
    if ((rc = hbSimTaskCreate(&t, &d)) != 0) {
      destroy_ctx(c);
      return rc;
    }
    hbSimCountEvent("sync_infer", 1);
    hbUCPSchedParam sp = {.priority = HB_UCP_PRIORITY_LOWEST, .customId = 0, .backend = HB_UCP_CORE_ANY};
    rc = hbUCPSubmitTask(t, &sp);
    if (!rc) rc = hbUCPWaitTaskDone(t, 0);
    hbUCPReleaseTask(t);
    return rc;
  }
  rc = *taskHandle ? hbSimTaskAppend(*taskHandle, &d) : hbSimTaskCreate(taskHandle, &d);
  if (rc) destroy_ctx(c);
  return rc;
}

/* Outputs of a finished task: the run's shape for dynamic outputs, the model's otherwise. The
 * real errors are texts ("task is not done", "task run failed"); their codes are unverified. */
SIM_API int32_t hbDNNGetTaskOutputTensorProperties(hbDNNTensorProperties *p, hbUCPTaskHandle_t task, int32_t sub,
                                                   int32_t idx) {
  if (!p) return HB_DNN_INVALID_ARGUMENT;
  int32_t fault = hbSimFaultCheck("hbDNNGetTaskOutputTensorProperties");
  if (fault) return fault;
  void *ctx = NULL;
  int32_t state = 0, status = 0;
  int32_t rc = hbSimTaskQuery(task, sub, &ctx, &state, &status);
  if (rc) return rc;
  if (state != 3) return HB_DNN_API_USE_ERROR;   /* "task is not done" */
  if (status) return HB_DNN_RUN_TASK_FAILED;       /* "task run failed" */
  RunCtx *c = ctx;
  if (idx < 0 || idx >= c->nout) return HB_DNN_INVALID_ARGUMENT;
  const RunTensor *rt = &c->t[c->nin + idx];
  const SimTensor *t = rt->m;
  pthread_mutex_lock(&g_mu);
  fill_props(p, t, rt->dims, rt->stride, is_dynamic_output(t) || t->aligned < 0 ? (int64_t)rt->span : t->aligned);
  pthread_mutex_unlock(&g_mu);
  return HB_DNN_SUCCESS;
}
