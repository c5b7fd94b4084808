/*
 * The shim's worker threads and the completion queues behind er_request_submit.
 * Jobs run in submission order on up to `limit` threads (created on demand, kept for reuse).
 * Completions are tags in a FIFO per queue that callers drain with er_completion_ready/take.
 *
 * Waiting uses semaphores, not condition variables: under many threads, glibc 2.36's
 * pthread_cond_signal was seen hanging in __condvar_quiesce_and_switch_g1 (a known glibc condvar
 * defect), which froze every worker. A semaphore holds one token per queued job / tag / wake.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
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
  sem_t jobs; /* one token per queued job */
  job *head, *tail;
  uint32_t threads, queued, limit;
  atomic_uint idle;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .limit = MAX_WORKERS};

/*
 * A completion queue: tags of finished runs, drained by one waiter. Each JS realm (the main thread,
 * every Worker) takes its own, so a realm never takes, and drops, a tag another realm waits for.
 * Queue structs are never deallocated: a waiter of a realm that died may still sleep in one.
 */
typedef struct cqueue {
  pthread_mutex_t lock;
  sem_t ready; /* one token per posted tag and per wake */
  uint32_t *tags;
  uint32_t head, count, cap;
  int in_use;
  atomic_int waiters; /* threads in er_completion_ready */
  _Atomic double woke_ms; /* er_completion_woke_ms */
} cqueue;

#define MAX_QUEUES 4096u

static cqueue default_queue = {.lock = PTHREAD_MUTEX_INITIALIZER, .in_use = 1};
/* queues[0] is the default queue; others are made by er_completion_queue_new (under queues_lock). */
static cqueue *queues[MAX_QUEUES] = {&default_queue};
static pthread_mutex_t queues_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_once_t sems_once = PTHREAD_ONCE_INIT;

/*
 * Worker threads live as long as the process, parked in this library's code. Deno unloads a
 * library when its handle is dropped (at the latest when the runtime shuts down), and a parked
 * thread would then wake into unmapped memory: a crash at exit. So before the first worker starts,
 * the library pins itself in memory (RTLD_NODELETE: dlclose no longer unmaps it).
 */
static void pin_library(void) {
  Dl_info info;
  if (dladdr((void *)pin_library, &info) && info.dli_fname) dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

static void init_sems(void) {
  pin_library();
  sem_init(&pool.jobs, 0, 0);
  sem_init(&default_queue.ready, 0, 0);
}

void er_pin_library(void) { pthread_once(&sems_once, init_sems); }

static void wait_token(sem_t *sem) {
  while (sem_wait(sem) != 0 && errno == EINTR) {
  }
}

/*
 * pthread_create's error (it does not set errno). EAGAIN is a thread limit (ulimit -u, the
 * kernel's threads-max, or no room for a stack), not a heap shortage: BACKEND naming the limit.
 */
static int32_t thread_fail(int err, const char *what) {
  if (err == EAGAIN)
    return er_fail(ER_ERR_BACKEND, NULL, "pthread_create",
                   "cannot start %s: the process or system thread limit is reached (ulimit -u, "
                   "/proc/sys/kernel/threads-max)",
                   what);
  return er_fail(ER_ERR_BACKEND, NULL, "pthread_create", "cannot start %s: %s", what, strerror(err));
}

static void *worker_main(void *unused) {
  for (;;) {
    atomic_fetch_add(&pool.idle, 1);
    wait_token(&pool.jobs);
    atomic_fetch_sub(&pool.idle, 1);
    pthread_mutex_lock(&pool.lock);
    job *j = pool.head;
    pool.head = j->next;
    if (!pool.head) pool.tail = NULL;
    pool.queued--;
    pthread_mutex_unlock(&pool.lock);
    j->fn(j->arg);
    free(j);
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

/* Queues a job; a worker takes it once er_pool_start is called (start: at once). */
static int32_t enqueue(void (*fn)(void *), void *arg, int start) {
  job *j = malloc(sizeof *j);
  if (!j) return er_fail(ER_ERR_OUT_OF_MEMORY, NULL, NULL, "out of memory");
  j->fn = fn;
  j->arg = arg;
  j->next = NULL;
  pthread_once(&sems_once, init_sems);
  pthread_mutex_lock(&pool.lock);
  if (atomic_load(&pool.idle) <= pool.queued && pool.threads < pool.limit) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&t, &attr, worker_main, NULL);
    if (err == 0) pool.threads++;
    pthread_attr_destroy(&attr);
    if (pool.threads == 0) {
      pthread_mutex_unlock(&pool.lock);
      free(j);
      return thread_fail(err, "a worker thread");
    }
  }
  if (pool.tail) pool.tail->next = j;
  else pool.head = j;
  pool.tail = j;
  pool.queued++;
  pthread_mutex_unlock(&pool.lock);
  if (start) sem_post(&pool.jobs);
  return ER_OK;
}

int32_t er_pool_submit(void (*fn)(void *), void *arg) { return enqueue(fn, arg, 1); }

int32_t er_pool_submit_later(void (*fn)(void *), void *arg) { return enqueue(fn, arg, 0); }

void er_pool_start(void) { sem_post(&pool.jobs); }

/* The queue with this id, or NULL if there is none (never made, or freed). */
static cqueue *find_queue(uint32_t id) {
  if (id >= MAX_QUEUES) return NULL;
  pthread_mutex_lock(&queues_lock);
  cqueue *q = queues[id] && queues[id]->in_use ? queues[id] : NULL;
  pthread_mutex_unlock(&queues_lock);
  return q;
}

ER_API int32_t er_completion_queue_new(uint32_t *out) {
  if (!out) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "out must not be NULL");
  pthread_once(&sems_once, init_sems);
  pthread_mutex_lock(&queues_lock);
  uint32_t id = 1;
  /* A freed queue with a thread still asleep in it (its realm ended mid-wait) is never reused:
     that thread would take the new owner's tokens. */
  while (id < MAX_QUEUES && queues[id] && (queues[id]->in_use || atomic_load(&queues[id]->waiters))) id++;
  if (id == MAX_QUEUES) {
    pthread_mutex_unlock(&queues_lock);
    return er_fail(ER_ERR_OUT_OF_MEMORY, NULL, NULL, "all %u completion queues are in use", MAX_QUEUES - 1);
  }
  cqueue *q = queues[id];
  if (!q) {
    q = calloc(1, sizeof *q);
    if (!q || pthread_mutex_init(&q->lock, NULL) != 0 || sem_init(&q->ready, 0, 0) != 0) {
      free(q);
      pthread_mutex_unlock(&queues_lock);
      return er_fail(ER_ERR_OUT_OF_MEMORY, NULL, NULL, "cannot create a completion queue");
    }
    queues[id] = q;
  } else {
    /* A reused queue starts empty: drop the tokens and tags its previous owner left. */
    while (sem_trywait(&q->ready) == 0) {
    }
    pthread_mutex_lock(&q->lock);
    q->head = q->count = 0;
    pthread_mutex_unlock(&q->lock);
  }
  q->in_use = 1;
  pthread_mutex_unlock(&queues_lock);
  *out = id;
  return ER_OK;
}

ER_API int32_t er_completion_queue_free(uint32_t id) {
  if (id == 0) return ER_OK; /* the default queue lives as long as the process */
  pthread_mutex_lock(&queues_lock);
  int found = id < MAX_QUEUES && queues[id] && queues[id]->in_use;
  if (found) {
    queues[id]->in_use = 0;
    /* A waiter still asleep (its realm stopping with runs out) is woken: it returns, and the id
       can be handed out again once it has left. */
    for (int w = atomic_load(&queues[id]->waiters); w > 0; w--) sem_post(&queues[id]->ready);
  }
  pthread_mutex_unlock(&queues_lock);
  return found ? ER_OK : er_fail(ER_ERR_NOT_FOUND, NULL, NULL, "no completion queue %u", id);
}

void er_completion_post(uint32_t queue, uint32_t tag) {
  pthread_once(&sems_once, init_sems);
  /* A queue freed by its realm: nobody waits for this tag any more. */
  cqueue *q = find_queue(queue);
  if (!q) return;
  pthread_mutex_lock(&q->lock);
  if (q->count == q->cap) {
    uint32_t cap = q->cap ? q->cap * 2 : 64;
    uint32_t *tags = malloc(cap * sizeof *tags);
    if (tags) {
      for (uint32_t i = 0; i < q->count; i++) tags[i] = q->tags[(q->head + i) % q->cap];
      free(q->tags);
      q->tags = tags;
      q->head = 0;
      q->cap = cap;
    }
  }
  /* Out of memory here would lose a completion: the caller's run would never settle. The
     queue only grows to the number of requests in flight, so this is a few bytes. */
  int stored = q->count < q->cap;
  if (stored) {
    q->tags[(q->head + q->count) % q->cap] = tag;
    q->count++;
  }
  pthread_mutex_unlock(&q->lock);
  if (stored) sem_post(&q->ready);
}

/* Takes one token: 1 got it, 0 timed out. */
static int take_token(sem_t *ready, int32_t timeout_ms) {
  if (timeout_ms == 0) return sem_trywait(ready) == 0;
  if (timeout_ms < 0) {
    wait_token(ready);
    return 1;
  }
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) deadline.tv_sec++, deadline.tv_nsec -= 1000000000L;
  for (;;) {
    if (sem_timedwait(ready, &deadline) == 0) return 1;
    if (errno != EINTR) return 0;
  }
}

ER_API int32_t er_completion_ready(uint32_t queue, int32_t timeout_ms) {
  pthread_once(&sems_once, init_sems);
  /* Found and counted under queues_lock, so er_completion_queue_free either sees this waiter (and
     wakes it) or this call sees the queue freed. While a thread sleeps here the queue is not
     handed to another realm (er_completion_queue_new). */
  pthread_mutex_lock(&queues_lock);
  cqueue *q = queue < MAX_QUEUES && queues[queue] && queues[queue]->in_use ? queues[queue] : NULL;
  if (q) atomic_fetch_add(&q->waiters, 1);
  pthread_mutex_unlock(&queues_lock);
  if (!q) return er_fail(ER_ERR_NOT_FOUND, NULL, NULL, "no completion queue %u", queue);
  int got = take_token(&q->ready, timeout_ms);
  if (got) atomic_store(&q->woke_ms, er_clock_ms());
  atomic_fetch_sub(&q->waiters, 1);
  return got;
}

ER_API double er_completion_woke_ms(uint32_t queue) {
  return queue < MAX_QUEUES && queues[queue] ? atomic_load(&queues[queue]->woke_ms) : 0;
}

ER_API int32_t er_debug_queue_waiters(uint32_t queue) {
  return queue < MAX_QUEUES && queues[queue] ? atomic_load(&queues[queue]->waiters) : 0;
}

ER_API int32_t er_completion_take(uint32_t queue, uint32_t *tags, uint32_t cap) {
  if (!tags || cap == 0) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "tags must hold at least one tag");
  cqueue *q = find_queue(queue);
  if (!q) return er_fail(ER_ERR_NOT_FOUND, NULL, NULL, "no completion queue %u", queue);
  pthread_mutex_lock(&q->lock);
  uint32_t n = 0;
  while (n < cap && q->count > 0) {
    tags[n++] = q->tags[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
  }
  pthread_mutex_unlock(&q->lock);
  /* er_completion_ready took one token; each further tag has its own (posted, or about to be: a
     later wait may then find an empty queue and take returns 0, which callers treat like a
     wake). A token with no tag was a wake. */
  for (uint32_t i = 1; i < n; i++)
    if (sem_trywait(&q->ready) != 0) break;
  return (int32_t)n;
}

ER_API int32_t er_completion_wait(uint32_t *tags, uint32_t cap, int32_t timeout_ms) {
  if (!tags || cap == 0) return er_fail(ER_ERR_INVALID_ARGUMENT, NULL, NULL, "tags must hold at least one tag");
  int32_t ready = er_completion_ready(0, timeout_ms);
  return ready == 1 ? er_completion_take(0, tags, cap) : ready;
}

ER_API int32_t er_completion_wake_on(uint32_t queue) {
  pthread_once(&sems_once, init_sems);
  cqueue *q = find_queue(queue);
  if (!q) return er_fail(ER_ERR_NOT_FOUND, NULL, NULL, "no completion queue %u", queue);
  sem_post(&q->ready);
  return ER_OK;
}

ER_API void er_completion_wake(void) { er_completion_wake_on(0); }

/*
 * Alarms: one timer thread, started at the first alarm, fires each armed alarm once its deadline
 * passes. It waits on a semaphore (see above) with a timeout: CLOCK_REALTIME, as sem_timedwait
 * takes, but the deadlines are monotonic and rechecked on every wake, so a clock step only makes
 * one wait end early or late.
 */
static struct {
  pthread_mutex_t lock; /* held while an alarm fires: er_alarm_disarm waits out a firing alarm */
  sem_t wake;           /* posted when an alarm becomes the earliest */
  er_alarm *head;
  int started;
} alarms = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *alarm_main(void *unused) {
  for (;;) {
    pthread_mutex_lock(&alarms.lock);
    uint64_t now = er_now_us(), next = 0;
    for (er_alarm **p = &alarms.head; *p;) {
      er_alarm *a = *p;
      if (a->deadline_us <= now) {
        *p = a->next;
        a->armed = 0;
        a->fired = 1;
        a->fire(a->arg);
        continue;
      }
      if (!next || a->deadline_us < next) next = a->deadline_us;
      p = &a->next;
    }
    pthread_mutex_unlock(&alarms.lock);
    if (!next) {
      wait_token(&alarms.wake);
      continue;
    }
    uint64_t wait_us = next - now;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)(wait_us / 1000000u);
    deadline.tv_nsec += (long)(wait_us % 1000000u) * 1000L;
    if (deadline.tv_nsec >= 1000000000L) deadline.tv_sec++, deadline.tv_nsec -= 1000000000L;
    while (sem_timedwait(&alarms.wake, &deadline) != 0 && errno == EINTR) {
    }
  }
  return NULL;
}

int32_t er_alarm_arm(er_alarm *a, uint32_t timeout_ms) {
  pthread_once(&sems_once, init_sems);
  a->deadline_us = er_now_us() + (uint64_t)timeout_ms * 1000u;
  a->fired = 0;
  pthread_mutex_lock(&alarms.lock);
  if (!alarms.started) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sem_init(&alarms.wake, 0, 0);
    int err = pthread_create(&t, &attr, alarm_main, NULL);
    alarms.started = err == 0;
    pthread_attr_destroy(&attr);
    if (!alarms.started) {
      sem_destroy(&alarms.wake);
      pthread_mutex_unlock(&alarms.lock);
      return thread_fail(err, "the timer thread");
    }
  }
  int earliest = 1;
  for (er_alarm *o = alarms.head; o && earliest; o = o->next) earliest = a->deadline_us < o->deadline_us;
  a->next = alarms.head;
  alarms.head = a;
  a->armed = 1;
  pthread_mutex_unlock(&alarms.lock);
  if (earliest) sem_post(&alarms.wake);
  return ER_OK;
}

int er_alarm_disarm(er_alarm *a) {
  pthread_mutex_lock(&alarms.lock);
  if (a->armed) {
    for (er_alarm **p = &alarms.head; *p; p = &(*p)->next) {
      if (*p == a) {
        *p = a->next;
        break;
      }
    }
    a->armed = 0;
  }
  int fired = a->fired;
  pthread_mutex_unlock(&alarms.lock);
  return fired;
}
