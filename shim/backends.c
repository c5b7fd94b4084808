/*
 * The table of backends, one row each. A backend is its file in shim/backends/ (its
 * er_backend_ops) plus a row here: core.c, build.zig and the TypeScript side read everything
 * else from this table (docs/backends.md).
 */
#include "internal.h"

extern const er_backend_ops er_backend_ort;
extern const er_backend_ops er_backend_hbdnn;
extern const er_backend_ops er_backend_acl;

/* An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08. */
static int probe_onnx(const uint8_t *head, size_t n) { return n >= 1 && head[0] == 0x08; }

const er_backend_desc er_backends[] = {
    {.id = ER_BACKEND_ORT,
     .extensions = (const char *const[]){".onnx", ".ort", NULL},
     .probe = probe_onnx,
     .task_limit = 64, /* the shim's worker threads (er_set_worker_limit's maximum) */
     .default_requests = 4,
     .honours = ER_HONOURS_TIMEOUT,
     .search_path = "libonnxruntime.so.1 files, after $EDGERUN_ORT_LIB",
     .ops = &er_backend_ort},
    /* No probe: an .hbm has no documented magic, and a wrong guess fails later with a misleading
       error (a PNG sent to hbdnn reports a missing libhbucp.so). */
    {.id = ER_BACKEND_HBDNN,
     .extensions = (const char *const[]){".hbm", ".bin", NULL},
     .task_limit = 32, /* UCP's task cap per process (HB_UCP_MAX_TASK_NUM) */
     .default_requests = 32,
     .honours = ER_HONOURS_PRIORITY | ER_HONOURS_CUSTOM_ID | ER_HONOURS_CORES | ER_HONOURS_TIMEOUT,
     .search_path = "directories holding libdnn.so and libhbucp.so, after $EDGERUN_HBDNN_LIB_DIR",
     .ops = &er_backend_hbdnn},
    /* No probe: the .om header is not documented. priority and customId order edgerun's queue
       only (AscendCL has no execution priority); one model executes one run at a time. */
    {.id = ER_BACKEND_ACL,
     .extensions = (const char *const[]){".om", NULL},
     .task_limit = 64, /* the shim's worker threads, as ort */
     .default_requests = 4,
     .honours = ER_HONOURS_TIMEOUT,
     .search_path = "directories holding libascendcl.so or libacl_rt.so + libacl_mdl.so, after $EDGERUN_ACL_LIB_DIR",
     .ops = &er_backend_acl},
};

const uint32_t er_backend_rows = sizeof er_backends / sizeof er_backends[0];
