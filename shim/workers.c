/*
 * The shim's worker threads and the process-wide completion queue behind er_request_submit.
 * Jobs run in submission order on up to `limit` threads (created on demand, kept for reuse).
 * Completions are tags in a FIFO that callers drain with er_completion_wait.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define MAX_WORKERS 64u

typedef struct job {
  void (*fn)(void *);
  void *arg;
  struct job *next;
} job;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t work;
  job *head, *tail;
  uint32_t threads, idle, limit;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, MAX_WORKERS};

static struct {
  pthread_mutex_t lock;
  pthread_cond_t ready;
  uint32_t *tags;
  uint32_t head, count, cap;
  int wake;
} done = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0};

static void *worker_main(void *unused) {
  pthread_mutex_lock(&pool.lock);
  for (;;) {
    while (!pool.head) {
      pool.idle++;
      pthread_cond_wait(&pool.work, &pool.lock);
      pool.idle--;
    }
    job *j = pool.head;
    pool.head = j->next;
    if (!pool.head) pool.tail = NULL;
    pthread_mutex_unlock(&pool.lock);
    j->fn(j->arg);
    free(j);
    pthread_mutex_lock(&pool.lock);
  }
  return NULL;
}

ER_API int32_t er_set_worker_limit(uint32_t limit) {
  if (limit < 1 || limit > MAX_WORKERS)
    return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "worker limit must be 1..%u, got %u", MAX_WORKERS, limit);
  pthread_mutex_lock(&pool.lock);
  pool.limit = limit;
  pthread_mutex_unlock(&pool.lock);
  return ER_OK;
}

int32_t er_pool_submit(void (*fn)(void *), void *arg) {
  job *j = malloc(sizeof *j);
  if (!j) return er_fail(ER_ERR_OUT_OF_MEMORY, NULL, NULL, "out of memory");
  j->fn = fn;
  j->arg = arg;
  j->next = NULL;
  pthread_mutex_lock(&pool.lock);
  uint32_t queued = 0;
  for (job *q = pool.head; q; q = q->next) queued++;
  if (pool.idle <= queued && pool.threads < pool.limit) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, worker_main, NULL) == 0) pool.threads++;
    pthread_attr_destroy(&attr);
    if (pool.threads == 0) {
      pthread_mutex_unlock(&pool.lock);
      free(j);
      return er_fail(ER_ERR_OUT_OF_MEMORY, NULL, "pthread_create", "cannot start a worker thread");
    }
  }
  if (pool.tail) pool.tail->next = j;
  else pool.head = j;
  pool.tail = j;
  pthread_cond_signal(&pool.work);
  pthread_mutex_unlock(&pool.lock);
  return ER_OK;
}

void er_completion_post(uint32_t tag) {
  pthread_mutex_lock(&done.lock);
  if (done.count == done.cap) {
    uint32_t cap = done.cap ? done.cap * 2 : 64;
    uint32_t *tags = malloc(cap * sizeof *tags);
    if (tags) {
      for (uint32_t i = 0; i < done.count; i++) tags[i] = done.tags[(done.head + i) % done.cap];
      free(done.tags);
      done.tags = tags;
      done.head = 0;
      done.cap = cap;
    }
  }
  /* Out of memory here would lose a completion: the caller's run would never settle. The
     queue only grows to the number of requests in flight, so this is a few bytes. */
  if (done.count < done.cap) {
    done.tags[(done.head + done.count) % done.cap] = tag;
    done.count++;
  }
  pthread_cond_broadcast(&done.ready);
  pthread_mutex_unlock(&done.lock);
}

ER_API int32_t er_completion_wait(uint32_t *tags, uint32_t cap, int32_t timeout_ms) {
  if (!tags || cap == 0) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "tags must hold at least one tag");
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  if (timeout_ms > 0) {
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) deadline.tv_sec++, deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&done.lock);
  while (done.count == 0 && !done.wake) {
    if (timeout_ms == 0) break;
    if (timeout_ms < 0) pthread_cond_wait(&done.ready, &done.lock);
    else if (pthread_cond_timedwait(&done.ready, &done.lock, &deadline) == ETIMEDOUT) break;
  }
  uint32_t n = 0;
  while (n < cap && done.count > 0) {
    tags[n++] = done.tags[done.head];
    done.head = (done.head + 1) % done.cap;
    done.count--;
  }
  if (n == 0) done.wake = 0;
  pthread_mutex_unlock(&done.lock);
  return (int32_t)n;
}

ER_API void er_completion_wake(void) {
  pthread_mutex_lock(&done.lock);
  done.wake = 1;
  pthread_cond_broadcast(&done.ready);
  pthread_mutex_unlock(&done.lock);
}
