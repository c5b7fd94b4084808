/*
 * A test double for thread exhaustion, loaded with LD_PRELOAD: pthread_create fails with EAGAIN
 * (what glibc returns at the thread limit) for threads whose start routine lies in a library
 * whose path contains $EDGERUN_FAIL_THREADS_OF, and works for every other thread of the process
 * (the runtime's own). Used by tests/messages.test.ts.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

__attribute__((visibility("default"))) int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
  static create_fn real;
  if (!real) real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
  const char *target = getenv("EDGERUN_FAIL_THREADS_OF");
  Dl_info info;
  if (target && *target && dladdr((void *)start, &info) && info.dli_fname && strstr(info.dli_fname, target))
    return EAGAIN;
  return real(thread, attr, start, arg);
}
