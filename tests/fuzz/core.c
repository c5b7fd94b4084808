/*
 * Fuzz target: the er_* ABI layer of shim/core.c — tensor-info packing (er_model_tensor),
 * request tensor words (er_request_tensor), names, quantization, model info JSON, set_shape checks,
 * write/read dispatch and handle release order — over a test backend whose model descriptions and
 * request buffers come from the input. core.c is included whole so this backend can stand in for
 * the vendor ones (it defines the backend table, er_backends, with this backend as its one row).
 */
#include "../../shim/core.c"

#include <unistd.h>

#include "fuzz_input.h"

static fuzz_input in;

static int32_t t_load(const char **version) {
  *version = "fuzz";
  return ER_OK;
}

static char pack_names[3][40];

static int32_t t_pack_open(const char *path, const char *options, void **pack, uint32_t *count) {
  *count = fuzz_u8(&in) % 4;
  for (uint32_t i = 0; i < 3; i++) {
    fuzz_take(&in, pack_names[i], sizeof pack_names[i] - 1);
    pack_names[i][sizeof pack_names[i] - 1] = 0;
  }
  *pack = pack_names;
  return fuzz_u8(&in) == 0xEE ? ER_ERR_INVALID_MODEL : ER_OK;
}
static const char *t_pack_name(void *pack, uint32_t index) { return index < 3 ? pack_names[index] : NULL; }
static void t_pack_close(void *pack) {}

static int32_t fill_desc(er_tensor_desc *d) {
  char name[24];
  fuzz_take(&in, name, sizeof name - 1);
  name[sizeof name - 1] = 0;
  d->name = strdup(name);
  d->dtype = fuzz_u8(&in) % 14;
  d->vendor_type = fuzz_i32(&in);
  d->rank = fuzz_u8(&in) % (ER_MAX_DIMS + 1);
  d->flags = fuzz_u8(&in) & 7;
  for (uint32_t i = 0; i < d->rank; i++) {
    d->shape[i] = fuzz_extent(&in);
    d->strides[i] = fuzz_extent(&in);
  }
  d->byte_size = (uint64_t)fuzz_extent(&in);
  uint8_t q = fuzz_u8(&in);
  d->quant_type = q & 1;
  d->quant_axis = (int32_t)(q >> 1) % 12 - 1;
  d->scale_count = fuzz_u8(&in) % 9;
  d->zero_point_count = fuzz_u8(&in) % 9;
  d->scales = d->scale_count ? calloc(d->scale_count, sizeof *d->scales) : NULL;
  d->zero_points = d->zero_point_count ? calloc(d->zero_point_count, sizeof *d->zero_points) : NULL;
  for (uint32_t i = 0; d->scales && i < d->scale_count; i++) d->scales[i] = fuzz_f32(&in);
  for (uint32_t i = 0; d->zero_points && i < d->zero_point_count; i++) d->zero_points[i] = fuzz_i32(&in);
  return d->name ? ER_OK : ER_ERR_OUT_OF_MEMORY;
}

typedef struct t_model {
  uint32_t n_in, n_out;
  er_tensor_desc *in, *out;
} t_model;

static int32_t t_model_open(void *pack, uint32_t index, void **model, uint32_t *n_in, er_tensor_desc **inputs,
                            uint32_t *n_out, er_tensor_desc **outputs) {
  t_model *m = calloc(1, sizeof *m);
  m->n_in = fuzz_u8(&in) % 4;
  m->n_out = fuzz_u8(&in) % 4;
  m->in = calloc(m->n_in ? m->n_in : 1, sizeof *m->in);
  m->out = calloc(m->n_out ? m->n_out : 1, sizeof *m->out);
  for (uint32_t i = 0; i < m->n_in; i++) fill_desc(&m->in[i]);
  for (uint32_t i = 0; i < m->n_out; i++) fill_desc(&m->out[i]);
  *model = m;
  *n_in = m->n_in;
  *n_out = m->n_out;
  *inputs = m->in;
  *outputs = m->out;
  return ER_OK;
}
static void t_model_close(void *model) { free(model); }

static int32_t t_model_info(void *model, char *buf, size_t cap, size_t *len) {
  char text[600];
  fuzz_take(&in, text, sizeof text - 1);
  text[sizeof text - 1] = 0;
  uint8_t repeat = fuzz_u8(&in) % 8;
  er_json_str(buf, cap, len, "backend", "fuzz", 0);
  for (uint8_t i = 0; i < repeat; i++) er_json_str(buf, cap, len, "text", text, 1);
  er_json_int(buf, cap, len, "n", fuzz_i64(&in), 1);
  return ER_OK;
}

/* A request's buffers: shapes and strides from the input, data allocated at the claimed size. */
typedef struct t_request {
  t_model *model;
  er_tensor_buf *bufs[2];
} t_request;

static void fill_buf(er_tensor_buf *b, const er_tensor_desc *d) {
  free(b->data);
  b->rank = d->rank;
  for (uint32_t i = 0; i < b->rank; i++) {
    b->shape[i] = fuzz_u8(&in) & 1 ? d->shape[i] : fuzz_extent(&in);
    b->strides[i] = fuzz_u8(&in) & 1 ? d->strides[i] : fuzz_extent(&in);
  }
  b->bytes = fuzz_u32(&in) % 4096;
  b->data = b->bytes ? calloc(1, b->bytes) : NULL;
}

static int32_t t_request_new(void *model, er_tensor_buf *inputs, er_tensor_buf *outputs, void **out) {
  t_request *r = calloc(1, sizeof *r);
  r->model = model;
  r->bufs[0] = inputs;
  r->bufs[1] = outputs;
  for (uint32_t i = 0; i < r->model->n_in; i++) fill_buf(&inputs[i], &r->model->in[i]);
  for (uint32_t i = 0; i < r->model->n_out; i++) fill_buf(&outputs[i], &r->model->out[i]);
  *out = r;
  return ER_OK;
}

static void t_request_free(void *request) {
  t_request *r = request;
  for (uint32_t i = 0; i < r->model->n_in; i++) free(r->bufs[0][i].data);
  for (uint32_t i = 0; i < r->model->n_out; i++) free(r->bufs[1][i].data);
  free(r);
}

static int32_t t_request_set_shape(void *request, uint32_t index, const int64_t *dims, uint32_t rank) {
  t_request *r = request;
  er_tensor_buf *b = &r->bufs[0][index];
  fill_buf(b, &r->model->in[index]);
  for (uint32_t i = 0; i < rank && i < b->rank; i++) b->shape[i] = dims[i];
  return ER_OK;
}

static int32_t t_request_run(void *request, const er_sched *sched) { return fuzz_u8(&in) & 1 ? ER_OK : ER_ERR_BACKEND; }

/* Designated: a field added to er_backend_ops (shim/internal.h) must not shift the others. */
#define FUZZ_OPS                                                                                          \
  {.name = "fuzz", .load = t_load, .pack_open = t_pack_open, .pack_name = t_pack_name,                  \
   .pack_close = t_pack_close, .model_open = t_model_open, .model_close = t_model_close,                \
   .model_info = t_model_info, .request_new = t_request_new, .request_free = t_request_free,            \
   .request_set_shape = t_request_set_shape, .request_run = t_request_run}
/* The backend table (shim/backends.c is not linked): one row, under ort's id. */
static const er_backend_ops fuzz_ops = FUZZ_OPS;
const er_backend_desc er_backends[] = {{.id = ER_BACKEND_ORT, .task_limit = 1, .default_requests = 1, .ops = &fuzz_ops}};
const uint32_t er_backend_rows = 1;

/* An existing file for er_pack_open's checks (the test backend never reads it). */
static const char *model_file(void) {
  static char path[64];
  if (!path[0]) {
    snprintf(path, sizeof path, "/tmp/edgerun-fuzz-core-%d.bin", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (f) fputc('x', f), fclose(f);
  }
  return path;
}

static void exercise_request(er_model *m, uint32_t counts[2]) {
  er_request *r = NULL;
  if (er_request_new(m, &r) != ER_OK) return;
  uint64_t words[ER_REQ_TENSOR_WORDS];
  for (uint32_t io = 0; io < 3; io++)
    for (uint32_t k = 0; k < 5; k++) er_request_tensor(r, io, k, words);
  for (int step = 0; step < 6 && in.left; step++) {
    uint8_t op = fuzz_u8(&in);
    uint32_t index = fuzz_u8(&in) % 5;
    if (op % 4 == 0) {
      int64_t dims[ER_MAX_DIMS + 1];
      uint32_t rank = fuzz_u8(&in) % (ER_MAX_DIMS + 2);
      for (uint32_t i = 0; i < rank; i++) dims[i] = fuzz_extent(&in);
      er_request_set_shape(r, index, dims, rank);
    } else if (op % 4 == 3) {
      er_request_run(r, fuzz_u8(&in), 0, 0, 0);
    } else {
      uint32_t len = fuzz_u32(&in) % 8192;
      uint8_t *user = len ? malloc(len) : NULL;
      if (user) memset(user, 0x3f, len);
      if (op % 4 == 1) er_request_write(r, index, user, len, fuzz_u8(&in) % 3);
      else er_request_read(r, index, user, len, fuzz_u8(&in) % 3);
      free(user);
    }
  }
  for (uint32_t io = 0; io < 2; io++)
    for (uint32_t k = 0; k < counts[io]; k++) er_request_tensor(r, io, k, words);
  er_request_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in = (fuzz_input){data, size};
  er_pack *pack = NULL;
  if (er_pack_open(model_file(), ER_BACKEND_ORT, NULL, &pack) != ER_OK) return 0;
  uint32_t n = 0;
  er_pack_count(pack, &n);
  er_model *models[4] = {0};
  for (uint32_t i = 0; i < n + 1 && i < 4; i++) {
    char name[8];
    uint32_t len;
    er_pack_name(pack, i, name, fuzz_u8(&in) % 9, &len);
    er_pack_model(pack, i, &models[i]);
  }
  if (fuzz_u8(&in) & 1) er_pack_free(pack), pack = NULL; /* models keep it alive */
  for (uint32_t i = 0; i < 4; i++) {
    er_model *m = models[i];
    if (!m) continue;
    uint32_t counts[2] = {0, 0};
    er_model_counts(m, counts);
    for (uint32_t io = 0; io < 3; io++)
      for (uint32_t k = 0; k < 5; k++) {
        uint8_t info[ER_TENSOR_INFO_SIZE];
        char name[16];
        float scales[9];
        int32_t zps[9];
        er_model_tensor(m, io, k, info, ER_TENSOR_INFO_SIZE - (fuzz_u8(&in) == 1));
        er_model_tensor_name(m, io, k, name, fuzz_u8(&in) % 17);
        er_model_tensor_quant(m, io, k, scales, zps, fuzz_u8(&in) % 10);
      }
    char json[64];
    uint32_t len = 0;
    er_model_info(m, json, fuzz_u8(&in) % 65, &len);
    exercise_request(m, counts);
  }
  for (uint32_t i = 0; i < 4; i++) er_model_free(models[i]);
  er_pack_free(pack);
  return 0;
}
