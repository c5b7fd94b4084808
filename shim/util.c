/* Thread-local last error, option parsing, library lookup and JSON helpers. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

typedef er_saved_error er_error;

static _Thread_local er_error last_error;

static void copy_field(char *dst, size_t cap, const char *src) {
  if (!src) src = "";
  snprintf(dst, cap, "%s", src);
}

static int32_t fail_v(int32_t code, const char *backend, const char *call, int32_t vendor_code,
                      const char *vendor_message, const char *fmt, va_list ap) {
  er_error *e = &last_error;
  copy_field(e->backend, sizeof e->backend, backend);
  copy_field(e->call, sizeof e->call, call);
  copy_field(e->vendor_message, sizeof e->vendor_message, vendor_message);
  e->vendor_code = vendor_code;
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  return code;
}

int32_t er_fail(int32_t code, const char *backend, const char *call, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fail_v(code, backend, call, 0, NULL, fmt, ap);
  va_end(ap);
  return code;
}

int32_t er_fail_vendor(int32_t code, const char *backend, const char *call, int32_t vendor_code,
                       const char *vendor_message, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fail_v(code, backend, call, vendor_code, vendor_message, fmt, ap);
  va_end(ap);
  return code;
}

void er_clear_error(void) { memset(&last_error, 0, sizeof last_error); }

void er_error_save(er_saved_error *out) { *out = last_error; }

void er_error_restore(const er_saved_error *in) { last_error = *in; }

static uint32_t copy_out(const char *src, char *buf, uint32_t cap) {
  size_t n = strlen(src);
  if (buf && cap > 0) {
    size_t m = n < cap - 1 ? n : cap - 1;
    memcpy(buf, src, m);
    buf[m] = 0;
  }
  return (uint32_t)n;
}

ER_API uint32_t er_last_error(char *buf, uint32_t cap) { return copy_out(last_error.message, buf, cap); }

ER_API uint32_t er_last_error_field(uint32_t field, char *buf, uint32_t cap) {
  switch (field) {
    case ER_FIELD_BACKEND: return copy_out(last_error.backend, buf, cap);
    case ER_FIELD_CALL: return copy_out(last_error.call, buf, cap);
    case ER_FIELD_VENDOR_MESSAGE: return copy_out(last_error.vendor_message, buf, cap);
    default: return copy_out("", buf, cap);
  }
}

ER_API int32_t er_last_vendor_code(void) { return last_error.vendor_code; }

int32_t er_option_int(const char *options, const char *key, int64_t *out) {
  if (!options) return 0;
  size_t key_len = strlen(key);
  const char *p = options;
  while (*p) {
    const char *end = strchr(p, ';');
    size_t item_len = end ? (size_t)(end - p) : strlen(p);
    if (item_len > key_len && strncmp(p, key, key_len) == 0 && p[key_len] == '=') {
      char value[32];
      size_t value_len = item_len - key_len - 1;
      if (value_len == 0 || value_len >= sizeof value) return -1;
      memcpy(value, p + key_len + 1, value_len);
      value[value_len] = 0;
      char *tail = NULL;
      errno = 0;
      long long v = strtoll(value, &tail, 10);
      if (errno || *tail) return -1;
      *out = v;
      return 1;
    }
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

static void append_tried(char *tried, size_t cap, const char *path, const char *why) {
  size_t used = strlen(tried);
  if (used + 1 >= cap) return;
  snprintf(tried + used, cap - used, "%s%s (%s)", used ? ", " : "", path, why);
}

static void *try_open(const char *path, int flags, char *tried, size_t cap) {
  void *h = dlopen(path, flags);
  if (!h) {
    const char *why = dlerror();
    /* dlerror repeats the path; keep only its reason to keep the list readable. */
    const char *colon = why ? strrchr(why, ':') : NULL;
    append_tried(tried, cap, path, colon ? colon + 2 : (why ? why : "not found"));
  }
  return h;
}

void *er_dlopen_first(const char *env_var, const char *const *names, const char *const *dirs, int flags,
                      char *tried, size_t tried_cap) {
  char path[4096];
  const char *env_dir = env_var ? getenv(env_var) : NULL;
  if (env_dir && *env_dir) {
    for (const char *const *n = names; *n; n++) {
      snprintf(path, sizeof path, "%s/%s", env_dir, *n);
      void *h = try_open(path, flags, tried, tried_cap);
      if (h) return h;
    }
  }
  for (const char *const *n = names; *n; n++) {
    void *h = try_open(*n, flags, tried, tried_cap);
    if (h) return h;
  }
  for (const char *const *d = dirs; d && *d; d++) {
    for (const char *const *n = names; *n; n++) {
      snprintf(path, sizeof path, "%s/%s", *d, *n);
      void *h = try_open(path, flags, tried, tried_cap);
      if (h) return h;
    }
  }
  return NULL;
}

void *er_dlopen_dirs(const char *env_var, const char *search_path, const char *file, const char *const *dirs,
                     int flags, char *tried, size_t tried_cap) {
  char path[4096];
  void *h = NULL;
  const char *env_dir = env_var ? getenv(env_var) : NULL;
  if (env_dir && *env_dir) {
    snprintf(path, sizeof path, "%s/%s", env_dir, file);
    if ((h = try_open(path, flags, tried, tried_cap))) return h;
  }
  for (const char *p = search_path; p && *p;) {
    size_t len = strcspn(p, ":");
    if (len > 0 && len < 3000) {
      snprintf(path, sizeof path, "%.*s/%s", (int)len, p, file);
      if ((h = try_open(path, flags, tried, tried_cap))) return h;
    }
    p += len + (p[len] == ':');
  }
  if ((h = try_open(file, flags, tried, tried_cap))) return h;
  for (const char *const *d = dirs; d && *d; d++) {
    snprintf(path, sizeof path, "%s/%s", *d, file);
    if ((h = try_open(path, flags, tried, tried_cap))) return h;
  }
  return NULL;
}

const char *er_lib_path(void *lib) {
  struct link_map *map = NULL;
  if (lib && dlinfo(lib, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && *map->l_name) return map->l_name;
  return "(unknown path)";
}

static void json_append(char *buf, size_t cap, size_t *len, const char *text) {
  size_t n = strlen(text);
  if (buf && *len + n < cap) memcpy(buf + *len, text, n + 1);
  *len += n;
}

void er_json_str(char *buf, size_t cap, size_t *len, const char *key, const char *value, int comma) {
  char item[512];
  char escaped[400];
  size_t j = 0;
  for (const char *s = value ? value : ""; *s && j + 7 < sizeof escaped; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      escaped[j++] = '\\';
      escaped[j++] = (char)c;
    } else if (c < 0x20) {
      j += (size_t)snprintf(escaped + j, sizeof escaped - j, "\\u%04x", c);
    } else {
      escaped[j++] = (char)c;
    }
  }
  escaped[j] = 0;
  snprintf(item, sizeof item, "%s\"%s\":\"%s\"", comma ? "," : "", key, escaped);
  json_append(buf, cap, len, item);
}

void er_json_int(char *buf, size_t cap, size_t *len, const char *key, int64_t value, int comma) {
  char item[128];
  snprintf(item, sizeof item, "%s\"%s\":%lld", comma ? "," : "", key, (long long)value);
  json_append(buf, cap, len, item);
}

uint64_t er_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int32_t er_time_left(int32_t timeout_ms, uint64_t start_us) {
  if (timeout_ms <= 0) return timeout_ms;
  int64_t left = (int64_t)timeout_ms - (int64_t)((er_now_us() - start_us) / 1000);
  return left < 1 ? 1 : (int32_t)left;
}
