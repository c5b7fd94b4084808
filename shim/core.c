/* The er_* ABI: packs, models and requests dispatched to a backend. */
#include <stdatomic.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

struct er_pack {
  const er_backend_ops *ops;
  void *state;
  uint32_t model_count;
  atomic_int refs; /* the pack handle itself + every model opened from it */
};

struct er_model {
  er_pack *pack;
  void *state;
  uint32_t n_in, n_out;
  er_tensor_desc *inputs, *outputs;
  atomic_int refs; /* the model handle itself + every request */
};

enum { PHASE_IDLE, PHASE_SUBMITTED, PHASE_DONE, PHASE_ORPHANED };

struct er_request {
  er_model *model;
  void *state;
  er_tensor_buf *inputs, *outputs;
  atomic_flag running; /* one run at a time per request, sync or submitted */
  /* A submitted run: */
  atomic_int phase;
  er_sched sched;
  atomic_int cancel; /* see er_sched.cancel */
  atomic_int freeing; /* er_request_free has begun: the run posts no tag, whatever ended it */
  uint32_t tag;
  uint32_t queue; /* the completion queue tag goes to (er_request_set_queue; 0 = the default) */
  int32_t result;
  er_saved_error error;
  int32_t started;       /* request_start in er_request_submit: 1 started, 0 not, < 0 its error (the run's) */
  struct timespec start; /* when the submitted run started, if so */
  /* The submitted run's tag went out before its worker was done (run_done_early): whoever takes
     its end (er_request_finish, or er_request_free) first waits for `settled`. */
  atomic_int early;
  pthread_mutex_t post_lock; /* orders an early tag against er_request_free */
  sem_t settled;
  sem_t start_done; /* posted once er_request_submit is done with the run: its worker may go */
  uint32_t last_run_us; /* native duration of the last run, sync or submitted */
  double timing[ER_TIMING_WORDS]; /* er_request_timing: see edgerun.h */
};

ER_API uint32_t er_abi_version(void) { return ER_ABI_VERSION; }

/* A CLOCK_MONOTONIC time in ms, as er_clock_ms reports it. */
static double ms_of(const struct timespec *ts) { return (double)ts->tv_sec * 1e3 + (double)ts->tv_nsec / 1e6; }

ER_API double er_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ms_of(&ts);
}

/* Live handles and runs on worker threads, for leak checks (er_debug_live_counts). */
static atomic_int live_packs, live_models, live_requests, live_submitted;

ER_API void er_debug_live_counts(int32_t *counts) {
  if (!counts) return;
  counts[0] = atomic_load(&live_packs);
  counts[1] = atomic_load(&live_models);
  counts[2] = atomic_load(&live_requests);
  counts[3] = atomic_load(&live_submitted);
}

/*
 * Runs the backend and records how long the native part took. The record keeps nanoseconds, on
 * er_clock_ms's clock and in its units: a caller's end-to-end time (its er_clock_ms before the
 * call to timing[1]) then never comes out shorter than timing[0], which whole microseconds did
 * (the start rounded down by up to 1 us).
 */
static int32_t timed_run(er_request *r, const er_sched *sched, const struct timespec *started) {
  struct timespec start, end;
  if (started) start = *started;
  else clock_gettime(CLOCK_MONOTONIC, &start);
  int32_t rc = r->model->pack->ops->request_run(r->state, sched);
  clock_gettime(CLOCK_MONOTONIC, &end);
  int64_t spent_ns = (int64_t)(end.tv_sec - start.tv_sec) * 1000000000 + (end.tv_nsec - start.tv_nsec);
  uint64_t spent_us = spent_ns > 0 ? (uint64_t)spent_ns / 1000 : 0;
  r->last_run_us = spent_us > UINT32_MAX ? UINT32_MAX : (uint32_t)spent_us;
  r->timing[0] = (double)spent_ns / 1e6;
  r->timing[1] = ms_of(&end);
  return rc;
}

const er_backend_desc *er_backend_find(uint32_t id) {
  for (uint32_t i = 0; i < er_backend_rows; i++)
    if (er_backends[i].id == id) return &er_backends[i];
  return NULL;
}

/* Appends printf output to buf at *at, never past cap (the text is cut, still NUL-terminated). */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t cap, size_t *at, const char *fmt, ...) {
  if (*at >= cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *at, cap - *at, fmt, ap);
  va_end(ap);
  if (n > 0) *at += (size_t)n;
  if (*at >= cap) *at = cap - 1;
}

/* "1 (ort), 2 (hbdnn)": the ids of every row, for the error of an unknown id. */
static int32_t unknown_backend(uint32_t id) {
  char list[256] = "";
  size_t at = 0;
  for (uint32_t i = 0; i < er_backend_rows; i++)
    append(list, sizeof list, &at, "%s%u (%s)", i ? ", " : "", er_backends[i].id, er_backends[i].ops->name);
  return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "unknown backend %u; the backends are %s", id, list);
}

/* One path per row, allocated by the first er_backend_set_search_path (sized by the table). */
#define SEARCH_PATH_CAP 4096
static char *_Atomic search_paths;

ER_API int32_t er_backend_set_search_path(uint32_t backend, const char *paths) {
  er_clear_error();
  const er_backend_desc *d = er_backend_find(backend);
  if (!d) return unknown_backend(backend);
  if (paths && strlen(paths) >= SEARCH_PATH_CAP)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "search path longer than %d bytes", SEARCH_PATH_CAP - 1);
  char *all = atomic_load(&search_paths);
  if (!all) {
    char *fresh = calloc(er_backend_rows, SEARCH_PATH_CAP);
    if (!fresh) return er_fail(ER_ERR_OUT_OF_MEMORY, NULL, NULL, "out of memory");
    /* Another thread may have won the race: keep its copy. Kept for the process's life. */
    if (atomic_compare_exchange_strong(&search_paths, &all, fresh)) all = fresh;
    else free(fresh);
  }
  snprintf(all + (size_t)(d - er_backends) * SEARCH_PATH_CAP, SEARCH_PATH_CAP, "%s", paths ? paths : "");
  return ER_OK;
}

const char *er_backend_search_path(uint32_t backend) {
  const er_backend_desc *d = er_backend_find(backend);
  char *all = atomic_load(&search_paths);
  return d && all ? all + (size_t)(d - er_backends) * SEARCH_PATH_CAP : "";
}

ER_API int32_t er_backend_load(uint32_t backend, char *version, uint32_t cap) {
  er_clear_error();
  const er_backend_desc *d = er_backend_find(backend);
  if (!d) return unknown_backend(backend);
  const char *v = NULL;
  int32_t rc = d->ops->load(&v);
  if (rc == ER_OK && version && cap) snprintf(version, cap, "%s", v ? v : "");
  return rc;
}

ER_API uint32_t er_backend_count(void) { return er_backend_rows; }

static const char *const HONOURS_NAMES[] = {"priority", "customId", "cores", "timeoutMs"};

ER_API int32_t er_backend_info(uint32_t index, char *json, uint32_t cap, uint32_t *len) {
  if (index >= er_backend_rows)
    return er_fail(ER_ERR_NOT_FOUND, NULL, NULL, "backend index %u out of range (%u backends)", index, er_backend_rows);
  const er_backend_desc *d = &er_backends[index];
  /* The table's strings are plain ASCII literals of this file's authors: nothing to escape. */
  char body[1024];
  size_t at = 0;
  append(body, sizeof body, &at, "{\"id\":%u,\"name\":\"%s\",\"extensions\":[", d->id, d->ops->name);
  for (uint32_t i = 0; d->extensions && d->extensions[i]; i++)
    append(body, sizeof body, &at, "%s\"%s\"", i ? "," : "", d->extensions[i]);
  append(body, sizeof body, &at, "],\"probe\":%s,\"taskLimit\":%u,\"defaultRequests\":%u,\"honours\":[",
         d->probe ? "true" : "false", d->task_limit, d->default_requests);
  for (uint32_t bit = 0, n = 0; bit < sizeof HONOURS_NAMES / sizeof *HONOURS_NAMES; bit++)
    if (d->honours & (1u << bit)) append(body, sizeof body, &at, "%s\"%s\"", n++ ? "," : "", HONOURS_NAMES[bit]);
  append(body, sizeof body, &at, "],\"searchPath\":\"%s\"}", d->search_path ? d->search_path : "");
  if (len) *len = (uint32_t)at;
  if (json && cap) snprintf(json, cap, "%s", body);
  return ER_OK;
}

static int has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * Picks a backend from the extension, else from the first bytes of the file (an ONNX protobuf
 * without its extension), both from the table. Anything else is refused rather than guessed:
 * a wrong guess fails later with a misleading error.
 */
static int32_t detect_backend(const char *path, const er_backend_desc **out) {
  for (uint32_t i = 0; i < er_backend_rows; i++)
    for (const char *const *ext = er_backends[i].extensions; ext && *ext; ext++)
      if (has_suffix(path, *ext)) return *out = &er_backends[i], ER_OK;
  FILE *f = fopen(path, "rb");
  uint8_t head[ER_PROBE_BYTES] = {0};
  size_t n = f ? fread(head, 1, sizeof head, f) : 0;
  if (f) fclose(f);
  for (uint32_t i = 0; i < er_backend_rows; i++)
    if (er_backends[i].probe && er_backends[i].probe(head, n)) return *out = &er_backends[i], ER_OK;
  char extensions[512] = "", names[256] = "";
  size_t at = 0, names_at = 0;
  for (uint32_t i = 0; i < er_backend_rows; i++) {
    const er_backend_desc *d = &er_backends[i];
    for (const char *const *ext = d->extensions; ext && *ext; ext++)
      append(extensions, sizeof extensions, &at, "%s%s", ext == d->extensions ? (i ? "; " : "") : ", ", *ext);
    append(extensions, sizeof extensions, &at, " (%s)", d->ops->name);
    append(names, sizeof names, &names_at, "%s\"%s\"", i ? ", " : "", d->ops->name);
  }
  return er_fail(ER_ERR_UNSUPPORTED, NULL, NULL,
                 "cannot tell which backend runs '%s': the known extensions are %s, and its first bytes match no "
                 "known format; rename the file or pass the backend option (one of %s)",
                 path, extensions, names);
}

static int32_t check_file(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return er_fail(ER_ERR_FILE, NULL, "stat", "model file '%s' does not exist", path);
  if (S_ISDIR(st.st_mode)) return er_fail(ER_ERR_FILE, NULL, NULL, "'%s' is a directory, not a model file", path);
  if (!S_ISREG(st.st_mode)) return er_fail(ER_ERR_FILE, NULL, NULL, "'%s' is not a regular file", path);
  if (st.st_size == 0) return er_fail(ER_ERR_INVALID_MODEL, NULL, NULL, "model file '%s' is empty", path);
  FILE *f = fopen(path, "rb");
  if (!f) {
    /* Out of descriptors is the process's state, not the file's: say so rather than "cannot be read". */
    if (errno == EMFILE || errno == ENFILE)
      return er_fail(ER_ERR_FILE, NULL, "fopen", "model file '%s' cannot be opened: too many open files (%s)", path,
                     errno == EMFILE ? "the process's limit, ulimit -n" : "the system's limit");
    return er_fail(ER_ERR_FILE, NULL, "fopen", "model file '%s' cannot be read", path);
  }
  fclose(f);
  return ER_OK;
}

ER_API int32_t er_pack_open(const char *path, uint32_t backend, const char *options, er_pack **out) {
  er_clear_error();
  if (!path || !out) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "path and out must not be NULL");
  *out = NULL;
  int32_t rc = check_file(path);
  if (rc != ER_OK) return rc;
  const er_backend_desc *d = backend == ER_BACKEND_AUTO ? NULL : er_backend_find(backend);
  if (backend == ER_BACKEND_AUTO && (rc = detect_backend(path, &d)) != ER_OK) return rc;
  if (!d) return unknown_backend(backend);
  const er_backend_ops *ops = d->ops;
  const char *version = NULL;
  rc = ops->load(&version);
  if (rc != ER_OK) return rc;
  er_pack *pack = calloc(1, sizeof *pack);
  if (!pack) return er_fail(ER_ERR_OUT_OF_MEMORY, ops->name, NULL, "out of memory");
  rc = ops->pack_open(path, options, &pack->state, &pack->model_count);
  if (rc != ER_OK) {
    free(pack);
    return rc;
  }
  pack->ops = ops;
  atomic_init(&pack->refs, 1);
  atomic_fetch_add(&live_packs, 1);
  *out = pack;
  return ER_OK;
}

ER_API int32_t er_pack_count(er_pack *pack, uint32_t *out) {
  if (!pack || !out) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "pack and out must not be NULL");
  *out = pack->model_count;
  return ER_OK;
}

ER_API int32_t er_pack_name(er_pack *pack, uint32_t index, char *buf, uint32_t cap, uint32_t *len) {
  if (!pack) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "pack must not be NULL");
  if (index >= pack->model_count)
    return er_fail(ER_ERR_NOT_FOUND, pack->ops->name, NULL, "model index %u out of range (%u models)", index,
                   pack->model_count);
  const char *name = pack->ops->pack_name(pack->state, index);
  if (!name) name = "";
  size_t n = strlen(name);
  if (len) *len = (uint32_t)n;
  if (buf && cap) snprintf(buf, cap, "%s", name);
  return ER_OK;
}

static void pack_release(er_pack *pack) {
  if (atomic_fetch_sub(&pack->refs, 1) == 1) {
    pack->ops->pack_close(pack->state);
    free(pack);
    atomic_fetch_sub(&live_packs, 1);
  }
}

ER_API void er_pack_free(er_pack *pack) {
  if (pack) pack_release(pack);
}

ER_API int32_t er_pack_model(er_pack *pack, uint32_t index, er_model **out) {
  er_clear_error();
  if (!pack || !out) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "pack and out must not be NULL");
  *out = NULL;
  if (index >= pack->model_count)
    return er_fail(ER_ERR_NOT_FOUND, pack->ops->name, NULL, "model index %u out of range (%u models)", index,
                   pack->model_count);
  er_model *m = calloc(1, sizeof *m);
  if (!m) return er_fail(ER_ERR_OUT_OF_MEMORY, pack->ops->name, NULL, "out of memory");
  int32_t rc = pack->ops->model_open(pack->state, index, &m->state, &m->n_in, &m->inputs, &m->n_out, &m->outputs);
  if (rc != ER_OK) {
    free(m);
    return rc;
  }
  atomic_fetch_add(&pack->refs, 1);
  m->pack = pack;
  atomic_init(&m->refs, 1);
  atomic_fetch_add(&live_models, 1);
  *out = m;
  return ER_OK;
}

static void model_release(er_model *m) {
  if (atomic_fetch_sub(&m->refs, 1) != 1) return;
  m->pack->ops->model_close(m->state);
  for (uint32_t i = 0; i < m->n_in; i++) er_tensor_desc_clear(&m->inputs[i]);
  for (uint32_t i = 0; i < m->n_out; i++) er_tensor_desc_clear(&m->outputs[i]);
  free(m->inputs);
  free(m->outputs);
  pack_release(m->pack);
  free(m);
  atomic_fetch_sub(&live_models, 1);
}

ER_API int32_t er_model_retain(er_model *model) {
  if (!model) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "model must not be NULL");
  atomic_fetch_add(&model->refs, 1);
  return ER_OK;
}

ER_API void er_model_free(er_model *model) {
  if (model) model_release(model);
}

ER_API int32_t er_model_counts(er_model *model, uint32_t *counts) {
  if (!model || !counts) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "model and counts must not be NULL");
  counts[0] = model->n_in;
  counts[1] = model->n_out;
  return ER_OK;
}

static int32_t find_desc(er_model *model, uint32_t io, uint32_t index, const er_tensor_desc **out) {
  if (!model) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "model must not be NULL");
  if (io > ER_OUTPUT)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "io must be 0 (input) or 1 (output), got %u", io);
  uint32_t n = io == ER_INPUT ? model->n_in : model->n_out;
  const char *kind = io == ER_INPUT ? "input" : "output";
  if (index >= n) return er_fail(ER_ERR_NOT_FOUND, NULL, NULL, "%s index %u out of range (%u %ss)", kind, index, n, kind);
  *out = io == ER_INPUT ? &model->inputs[index] : &model->outputs[index];
  return ER_OK;
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_i32(uint8_t *p, int32_t v) { memcpy(p, &v, 4); }
static void put_i64(uint8_t *p, int64_t v) { memcpy(p, &v, 8); }

ER_API int32_t er_model_tensor(er_model *model, uint32_t io, uint32_t index, uint8_t *info, uint32_t cap) {
  const er_tensor_desc *d = NULL;
  int32_t rc = find_desc(model, io, index, &d);
  if (rc != ER_OK) return rc;
  if (!info || cap < ER_TENSOR_INFO_SIZE)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "tensor info needs %u bytes", ER_TENSOR_INFO_SIZE);
  memset(info, 0, ER_TENSOR_INFO_SIZE);
  put_u32(info + ER_TI_RECORD_SIZE, ER_TENSOR_INFO_SIZE);
  put_i32(info + ER_TI_DTYPE, d->dtype);
  put_u32(info + ER_TI_RANK, d->rank);
  put_u32(info + ER_TI_FLAGS, d->flags);
  for (uint32_t i = 0; i < ER_MAX_DIMS; i++) {
    put_i64(info + ER_TI_SHAPE + 8 * i, i < d->rank ? d->shape[i] : 0);
    put_i64(info + ER_TI_STRIDES + 8 * i, i < d->rank ? d->strides[i] : 0);
  }
  put_i64(info + ER_TI_BYTE_SIZE, (int64_t)d->byte_size);
  put_i32(info + ER_TI_QUANT_TYPE, d->quant_type);
  put_i32(info + ER_TI_QUANT_AXIS, d->quant_axis);
  put_u32(info + ER_TI_SCALE_COUNT, d->scale_count);
  put_u32(info + ER_TI_ZERO_POINT_COUNT, d->zero_point_count);
  put_i32(info + ER_TI_VENDOR_TYPE, d->vendor_type);
  put_u32(info + ER_TI_NAME_LENGTH, (uint32_t)strlen(d->name ? d->name : ""));
  return ER_OK;
}

ER_API int32_t er_model_tensor_name(er_model *model, uint32_t io, uint32_t index, char *buf, uint32_t cap) {
  const er_tensor_desc *d = NULL;
  int32_t rc = find_desc(model, io, index, &d);
  if (rc != ER_OK) return rc;
  if (buf && cap) snprintf(buf, cap, "%s", d->name ? d->name : "");
  return ER_OK;
}

ER_API int32_t er_model_tensor_quant(er_model *model, uint32_t io, uint32_t index, float *scales,
                                     int32_t *zero_points, uint32_t cap) {
  const er_tensor_desc *d = NULL;
  int32_t rc = find_desc(model, io, index, &d);
  if (rc != ER_OK) return rc;
  for (uint32_t i = 0; scales && i < cap && i < d->scale_count; i++) scales[i] = d->scales[i];
  for (uint32_t i = 0; zero_points && i < cap && i < d->zero_point_count; i++) zero_points[i] = d->zero_points[i];
  return ER_OK;
}

ER_API int32_t er_model_info(er_model *model, char *buf, uint32_t cap, uint32_t *len) {
  if (!model) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "model must not be NULL");
  char body[2048];
  size_t n = 0;
  body[0] = 0;
  int32_t rc = model->pack->ops->model_info(model->state, body, sizeof body, &n);
  if (rc != ER_OK) return rc;
  int written = snprintf(buf, buf ? cap : 0, "{%s}", body);
  if (len) *len = (uint32_t)written;
  return ER_OK;
}

ER_API int32_t er_request_new(er_model *model, er_request **out) {
  er_clear_error();
  if (!model || !out) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "model and out must not be NULL");
  *out = NULL;
  er_request *r = calloc(1, sizeof *r);
  er_tensor_buf *in = calloc(model->n_in ? model->n_in : 1, sizeof *in);
  er_tensor_buf *outs = calloc(model->n_out ? model->n_out : 1, sizeof *outs);
  if (!r || !in || !outs) {
    free(r), free(in), free(outs);
    return er_fail(ER_ERR_OUT_OF_MEMORY, model->pack->ops->name, NULL, "out of memory");
  }
  int32_t rc = model->pack->ops->request_new(model->state, in, outs, &r->state);
  if (rc != ER_OK) {
    free(r), free(in), free(outs);
    return rc;
  }
  atomic_fetch_add(&model->refs, 1);
  r->model = model;
  r->inputs = in;
  r->outputs = outs;
  atomic_flag_clear(&r->running);
  atomic_init(&r->phase, PHASE_IDLE);
  pthread_mutex_init(&r->post_lock, NULL);
  sem_init(&r->settled, 0, 0);
  sem_init(&r->start_done, 0, 0);
  atomic_fetch_add(&live_requests, 1);
  *out = r;
  return ER_OK;
}

/* After an early tag: takes the token run_submitted posts (a short wait: that worker is awake). */
static void wait_settled(er_request *r) {
  if (!atomic_load(&r->early)) return;
  while (sem_wait(&r->settled) != 0 && errno == EINTR) {
  }
  atomic_store(&r->early, 0); /* the worker read it before posting: nothing waits twice */
}

static void request_destroy(er_request *r) {
  r->model->pack->ops->request_free(r->state);
  free(r->inputs);
  free(r->outputs);
  model_release(r->model);
  pthread_mutex_destroy(&r->post_lock);
  sem_destroy(&r->settled);
  sem_destroy(&r->start_done);
  free(r);
  atomic_fetch_sub(&live_requests, 1);
}

static void destroy_job(void *request) { request_destroy(request); }

ER_API void er_request_free(er_request *r) {
  if (!r) return;
  const er_backend_ops *ops = r->model->pack->ops;
  /* Before the cancel: a run it ends posts no tag (run_submitted), nor does one ending now. */
  pthread_mutex_lock(&r->post_lock);
  atomic_store(&r->freeing, 1);
  pthread_mutex_unlock(&r->post_lock);
  /* Freed with a run out (a model closed mid-run): nobody wants its result, so ask the backend to
     stop it first (ort stops at the next node; hbdnn releases the task only if its thread has
     not submitted it yet),
     while the request is certainly still ours. */
  if (atomic_load(&r->phase) == PHASE_SUBMITTED && ops->request_cancel) {
    atomic_store(&r->cancel, 1);
    ops->request_cancel(r->state);
  }
  /* A run still on a worker thread owns the request: the worker frees it when the run ends. */
  int expected = PHASE_SUBMITTED;
  if (atomic_compare_exchange_strong(&r->phase, &expected, PHASE_ORPHANED)) return;
  wait_settled(r); /* after an early tag its worker may still be on its last lines */
  /* The device still uses its buffers: a worker thread waits for it, not the caller (a JS thread).
     Only if no worker can take the job does the caller wait. */
  if (ops->request_pending && ops->request_pending(r->state) && er_pool_submit(destroy_job, r) == ER_OK) return;
  request_destroy(r);
}

static int32_t find_buf(er_request *r, uint32_t io, uint32_t index, const er_tensor_desc **desc, er_tensor_buf **buf) {
  if (!r) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "request must not be NULL");
  int32_t rc = find_desc(r->model, io, index, desc);
  if (rc != ER_OK) return rc;
  *buf = io == ER_INPUT ? &r->inputs[index] : &r->outputs[index];
  return ER_OK;
}

int32_t er_request_input(er_request *r, uint32_t index, const er_tensor_desc **desc, er_tensor_buf **buf) {
  int32_t rc = find_buf(r, ER_INPUT, index, desc, buf);
  if (rc != ER_OK) return rc;
  if (atomic_load(&r->phase) == PHASE_SUBMITTED)
    return er_fail(ER_ERR_STATE, r->model->pack->ops->name, NULL, "request is running: its inputs are in use");
  return ER_OK;
}

ER_API int32_t er_request_tensor(er_request *r, uint32_t io, uint32_t index, uint64_t *out) {
  const er_tensor_desc *d = NULL;
  er_tensor_buf *b = NULL;
  int32_t rc = find_buf(r, io, index, &d, &b);
  if (rc != ER_OK) return rc;
  if (!out) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "out must not be NULL");
  memset(out, 0, ER_REQ_TENSOR_WORDS * sizeof *out);
  out[ER_RT_DATA] = (uint64_t)(uintptr_t)b->data;
  out[ER_RT_BYTES] = b->bytes;
  out[ER_RT_RANK] = b->rank;
  for (uint32_t i = 0; i < b->rank && i < ER_MAX_DIMS; i++) {
    out[ER_RT_SHAPE + i] = (uint64_t)b->shape[i];
    out[ER_RT_STRIDES + i] = (uint64_t)b->strides[i];
  }
  return ER_OK;
}

ER_API int32_t er_request_set_shape(er_request *r, uint32_t index, const int64_t *dims, uint32_t rank) {
  er_clear_error();
  const er_tensor_desc *d = NULL;
  er_tensor_buf *b = NULL;
  int32_t rc = find_buf(r, ER_INPUT, index, &d, &b);
  if (rc != ER_OK) return rc;
  int any_rank = (d->flags & ER_TENSOR_UNKNOWN_RANK) != 0;
  if (any_rank && (!dims || rank < 1 || rank > ER_MAX_DIMS))
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s' takes any rank 1..%d, got %u dimensions", d->name,
                   ER_MAX_DIMS, rank);
  if (!any_rank && (!dims || rank != d->rank))
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s' has rank %u, got %u dimensions", d->name, d->rank,
                   rank);
  int same = rank == b->rank;
  for (uint32_t i = 0; i < rank; i++) {
    if (dims[i] < 0)
      return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s': dimension %u is negative", d->name, i);
    if (!any_rank && d->shape[i] >= 0 && dims[i] != d->shape[i])
      return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "input '%s': dimension %u is fixed at %lld, got %lld",
                     d->name, i, (long long)d->shape[i], (long long)dims[i]);
    if (dims[i] != b->shape[i]) same = 0;
  }
  if (same) return ER_OK;
  const er_backend_ops *ops = r->model->pack->ops;
  if (!ops->request_set_shape)
    return er_fail(ER_ERR_UNSUPPORTED, ops->name, NULL, "backend does not support dynamic shapes");
  if (atomic_flag_test_and_set(&r->running))
    return er_fail(ER_ERR_STATE, ops->name, NULL, "request is running");
  rc = ops->request_set_shape(r->state, index, dims, rank);
  atomic_flag_clear(&r->running);
  return rc;
}

ER_API int32_t er_request_write(er_request *r, uint32_t index, const void *src, uint32_t len, uint32_t mode) {
  const er_tensor_desc *d = NULL;
  er_tensor_buf *b = NULL;
  int32_t rc = find_buf(r, ER_INPUT, index, &d, &b);
  if (rc != ER_OK) return rc;
  return er_copy_in(d, b, src, len, mode);
}

ER_API int32_t er_request_read(er_request *r, uint32_t index, void *dst, uint32_t len, uint32_t mode) {
  const er_tensor_desc *d = NULL;
  er_tensor_buf *b = NULL;
  int32_t rc = find_buf(r, ER_OUTPUT, index, &d, &b);
  if (rc != ER_OK) return rc;
  return er_copy_out(d, b, dst, len, mode);
}

ER_API int32_t er_request_run(er_request *r, int32_t priority, int32_t custom_id, uint32_t core_mask,
                              int32_t timeout_ms) {
  if (!r) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "request must not be NULL");
  if (priority < 0 || priority > 255)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "priority must be 0..255, got %d", priority);
  if (atomic_flag_test_and_set(&r->running))
    return er_fail(ER_ERR_STATE, r->model->pack->ops->name, NULL, "request is already running");
  er_sched sched = {priority, custom_id, core_mask, timeout_ms, NULL, NULL, NULL};
  int32_t rc = timed_run(r, &sched, NULL);
  atomic_flag_clear(&r->running);
  return rc;
}

/*
 * The backend saw the device finish a submitted run while its worker waits to collect it: the
 * tag goes out now rather than after that worker wakes, one thread hop sooner. The worker still
 * collects the run; er_request_finish waits for it (wait_settled).
 */
static void run_done_early(void *arg) {
  er_request *r = arg;
  pthread_mutex_lock(&r->post_lock);
  if (!atomic_load(&r->freeing) && atomic_load(&r->phase) == PHASE_SUBMITTED && !atomic_load(&r->early)) {
    atomic_store(&r->early, 1);
    r->timing[ER_TIMING_DONE] = r->timing[ER_TIMING_POSTED] = er_clock_ms();
    er_completion_post(r->queue, r->tag);
  }
  pthread_mutex_unlock(&r->post_lock);
}

static void run_submitted(void *arg) {
  er_request *r = arg;
  /* er_request_submit may still be starting the run on its thread (a moment: it never blocks). */
  while (sem_wait(&r->start_done) != 0 && errno == EINTR) {
  }
  if (!r->started) r->timing[ER_TIMING_STARTED] = er_clock_ms();
  er_clear_error();
  if (r->started < 0) { /* failed at its start: er_request_submit saved the error */
    r->result = r->started;
    r->timing[0] = 0;
    r->timing[1] = er_clock_ms();
  } else {
    if (atomic_load(&r->cancel) && !r->started)
      r->result = er_fail(ER_ERR_CANCELLED, r->model->pack->ops->name, NULL, "the run was cancelled before it started");
    else
      r->result = timed_run(r, &r->sched, r->started ? &r->start : NULL);
    er_error_save(&r->error);
  }
  atomic_fetch_sub(&live_submitted, 1);
  /* Read before the phase says DONE: from then on er_request_free may destroy r at once. A free
     under way (its cancel may be what ended the run, before it could mark the run orphaned)
     gets no tag: the caller gave the request up. */
  uint32_t queue = r->queue, tag = r->tag;
  int freeing = atomic_load(&r->freeing), early = atomic_load(&r->early);
  if (!early) { /* stamped before the phase says DONE: r may be gone right after */
    r->timing[ER_TIMING_DONE] = r->timing[1];
    r->timing[ER_TIMING_POSTED] = er_clock_ms();
  }
  if (atomic_exchange(&r->phase, PHASE_DONE) == PHASE_ORPHANED) {
    /* A task of the request may be with a releaser job (hbdnn: the run was cancelled or timed
       out), which needs a free shim thread: freeing here would wait for it on this thread, and
       when every other thread waits too (runs waiting for the task slots that job gives back, or
       a limit of one) nothing moves again. So the free goes behind that job, and this thread
       back to the pool. */
    const er_backend_ops *ops = r->model->pack->ops;
    if (ops->request_pending && ops->request_pending(r->state) && er_pool_submit(destroy_job, r) == ER_OK) return;
    request_destroy(r);
    return;
  }
  if (early) {
    sem_post(&r->settled); /* its tag is out: the taker waits for this */
  } else if (!freeing) {
    er_completion_post(queue, tag);
  }
}

ER_API int32_t er_request_submit(er_request *r, int32_t priority, int32_t custom_id, uint32_t core_mask,
                                 int32_t timeout_ms, uint32_t tag) {
  er_clear_error();
  if (!r) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "request must not be NULL");
  if (priority < 0 || priority > 255)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "priority must be 0..255, got %d", priority);
  if (atomic_flag_test_and_set(&r->running))
    return er_fail(ER_ERR_STATE, r->model->pack->ops->name, NULL, "request is already running");
  atomic_store(&r->cancel, 0);
  atomic_store(&r->early, 0);
  r->sched = (er_sched){priority, custom_id, core_mask, timeout_ms, &r->cancel, run_done_early, r};
  r->tag = tag;
  atomic_store(&r->phase, PHASE_SUBMITTED);
  atomic_fetch_add(&live_submitted, 1);
  clock_gettime(CLOCK_MONOTONIC, &r->start);
  r->timing[ER_TIMING_SUBMITTED] = ms_of(&r->start);
  r->started = 0;
  /* The worker comes first (a run started below must have a thread to collect it), woken after
     the start: the device gets the task before this thread pays for waking another. */
  int32_t rc = er_pool_submit_later(run_submitted, r);
  if (rc != ER_OK) {
    atomic_fetch_sub(&live_submitted, 1);
    atomic_store(&r->phase, PHASE_IDLE);
    atomic_flag_clear(&r->running);
    return rc;
  }
  /* Started here when the backend can do that without blocking: the device gets it now, and the
     worker (waiting for `start_done`) only collects it. */
  const er_backend_ops *ops = r->model->pack->ops;
  if (ops->request_start) {
    r->started = ops->request_start(r->state, &r->sched);
    if (r->started == 1) r->timing[ER_TIMING_STARTED] = er_clock_ms();
    if (r->started < 0) { /* the run's result: its tag reports it, the submit itself succeeded */
      er_error_save(&r->error);
      er_clear_error();
    }
  }
  sem_post(&r->start_done);
  er_pool_start();
  return ER_OK;
}

ER_API int32_t er_request_set_queue(er_request *r, uint32_t queue) {
  if (!r) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "request must not be NULL");
  if (atomic_load(&r->phase) != PHASE_IDLE)
    return er_fail(ER_ERR_STATE, r->model->pack->ops->name, NULL, "request is running: its queue is in use");
  r->queue = queue;
  return ER_OK;
}

ER_API int32_t er_request_finish(er_request *r) {
  if (!r) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "request must not be NULL");
  wait_settled(r);
  if (atomic_load(&r->phase) != PHASE_DONE)
    return er_fail(ER_ERR_STATE, r->model->pack->ops->name, NULL, "no completed run to finish");
  er_error_restore(&r->error);
  int32_t result = r->result;
  atomic_store(&r->phase, PHASE_IDLE);
  atomic_flag_clear(&r->running);
  return result;
}

ER_API int32_t er_request_cancel(er_request *r) {
  if (!r) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "request must not be NULL");
  const er_backend_ops *ops = r->model->pack->ops;
  if (!ops->request_cancel)
    return er_fail(ER_ERR_UNSUPPORTED, ops->name, NULL, "a running %s task cannot be stopped early", ops->name);
  if (atomic_load(&r->phase) != PHASE_SUBMITTED) return ER_OK;
  atomic_store(&r->cancel, 1);
  return ops->request_cancel(r->state);
}

ER_API int32_t er_request_usable(er_request *r) {
  if (!r) return 0;
  const er_backend_ops *ops = r->model->pack->ops;
  return ops->request_usable ? ops->request_usable(r->state) != 0 : 1;
}

ER_API int32_t er_request_busy(er_request *r) {
  return r && atomic_load(&r->phase) != PHASE_IDLE;
}

ER_API uint32_t er_request_last_run_us(er_request *r) { return r ? r->last_run_us : 0; }

ER_API double *er_request_timing(er_request *r) { return r ? r->timing : NULL; }
