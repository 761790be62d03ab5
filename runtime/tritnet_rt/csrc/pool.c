/* A small thread pool: tn_set_threads(n) keeps n-1 workers; tn_parallel splits the tasks between them and the
 * calling thread (a range each, then stealing). Idle workers spin for TN_SPIN_US, then sleep on a condition
 * variable, so they cost nothing while other libraries (PyTorch, ONNX Runtime) run. */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime under -std=c11 */
#include "tn.h"
#include <stdint.h>
#include <stdlib.h>
#ifdef _WIN32
int tn_get_threads(void) { return 1; }
void tn_set_threads(int n) { (void)n; }
void tn_parallel(int ntasks, tn_task_fn fn, void *ctx) { for (int t = 0; t < ntasks; t++) fn(ctx, t); }
#else
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <time.h>

/* A job is (fn, ctx, ntasks). Each thread (the caller is thread 0, worker k thread k + 1) first gets a contiguous
 * range of the tasks, claimed from its front; a thread whose range is empty takes tasks one at a time from the
 * back of the others'. Consecutive jobs (a network's layers) split the same way, so a thread works on the same
 * images at batch > 1 and reads the activations it wrote itself, where one shared counter moved them between
 * cores layer after layer (ResNet-20 at batch 8 ran slower on two threads than on one).
 * A range is one 64-bit word, generation (16 bits) | next (24) | end (24), claimed by CAS: a worker that wakes
 * late holds an older word, so its CAS fails, and the caller waits only for tasks already claimed, never for a
 * worker the OS has not scheduled. Jobs of more than RANGE_MAX tasks run as several jobs.
 * The 64-bit atomics are single instructions on x86-64, AArch64 and ARMv7 (ldrexd/strexd); armv6 (Raspberry Pi
 * OS 32-bit's baseline) has no such instruction and GCC calls libatomic (__atomic_load_8, ...), which
 * build_ext.py links on 32-bit ARM. */
#define TN_MAX_THREADS 64
#define RANGE_MAX ((1 << 24) - 1)
static pthread_t workers[TN_MAX_THREADS];
static int nthreads = 1, nworkers = 0;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static _Atomic uint64_t ranges[TN_MAX_THREADS];
static atomic_uint generation;
static atomic_int done_tasks, sleepers, quit, job_threads;
static tn_task_fn job_fn;
static void *job_ctx;
static int job_base;

static uint64_t range_word(unsigned gen, uint32_t next, uint32_t end) {
    return (uint64_t)(gen & 0xFFFF) << 48 | (uint64_t)next << 24 | end;
}

/* the next task of range r for this thread: from the front of its own (mine), else from the back; -1: none */
static int claim(unsigned gen, int r, int mine) {
    for (;;) {
        uint64_t w = atomic_load(&ranges[r]);
        uint32_t next = (uint32_t)(w >> 24) & RANGE_MAX, end = (uint32_t)w & RANGE_MAX;
        if ((unsigned)(w >> 48) != (gen & 0xFFFF) || next >= end) return -1;
        uint64_t v = mine ? range_word(gen, next + 1, end) : range_word(gen, next, end - 1);
        if (atomic_compare_exchange_weak(&ranges[r], &w, v)) return (int)(mine ? next : end - 1);
    }
}

/* set while a thread runs a task: a tn_parallel inside a task (run_together's plans) runs on that thread */
static __thread int in_task;

static void run_tasks(unsigned gen, int self) {
    int T = atomic_load(&job_threads);
    if (self >= T) return;
    for (int k = 0; k < T; k++) {                 /* its own range, then the others' from the next thread on */
        int r = (self + k) % T, t;
        while ((t = claim(gen, r, k == 0)) >= 0) {
            in_task = 1;
            job_fn(job_ctx, job_base + t);
            in_task = 0;
            atomic_fetch_add(&done_tasks, 1);
        }
    }
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

/* How long an idle worker spins before it sleeps. A forward pass dispatches a job per layer with gaps of a few
 * to tens of microseconds between them; waking a sleeping worker costs a futex call and, in a VM, an
 * inter-processor interrupt that can take longer than a small layer. So workers stay awake through a whole
 * forward pass and only sleep once the runtime has been idle for this long. */
#define TN_SPIN_US 2000.0

static unsigned worker_start[TN_MAX_THREADS];

static void *worker(void *arg) {
    int self = (int)(uintptr_t)arg;
    unsigned seen = worker_start[self];
    for (;;) {
        int spins = 0;
        double since = now_us();
        while (atomic_load(&generation) == seen && !atomic_load(&quit)) {
            if ((++spins & 255) == 0 && now_us() - since > TN_SPIN_US) {
                pthread_mutex_lock(&mu);
                atomic_fetch_add(&sleepers, 1);
                while (atomic_load(&generation) == seen && !atomic_load(&quit)) pthread_cond_wait(&wake, &mu);
                atomic_fetch_sub(&sleepers, 1);
                pthread_mutex_unlock(&mu);
            }
        }
        if (atomic_load(&quit)) return NULL;
        seen = atomic_load(&generation);
        run_tasks(seen, self);
    }
}

int tn_get_threads(void) { return nthreads; }

void tn_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > TN_MAX_THREADS) n = TN_MAX_THREADS;
    if (n == nthreads) return;
    if (nworkers) {                           /* stop the old workers */
        pthread_mutex_lock(&mu);
        atomic_store(&quit, 1);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&mu);
        for (int i = 0; i < nworkers; i++) pthread_join(workers[i], NULL);
        atomic_store(&quit, 0);
        nworkers = 0;
    }
    nthreads = n;
    for (int i = 0; i < n - 1; i++) {
        worker_start[nworkers + 1] = atomic_load(&generation);
        if (pthread_create(&workers[nworkers], NULL, worker, (void *)(uintptr_t)(nworkers + 1)) == 0) nworkers++;
    }
}

static void parallel_job(int base, int ntasks, tn_task_fn fn, void *ctx) {
    /* The new generation goes into the range words first, with empty ranges: a worker still in the previous job
     * (all its tasks done) then fails its generation check or its CAS while the job's fields are written. */
    unsigned gen = atomic_load(&generation) + 1;
    int T = nworkers + 1;
    for (int i = 0; i < T; i++) atomic_store(&ranges[i], range_word(gen, 0, 0));
    job_fn = fn; job_ctx = ctx; job_base = base;
    atomic_store(&job_threads, T);
    atomic_store(&done_tasks, 0);
    for (int i = 0; i < T; i++)
        atomic_store(&ranges[i], range_word(gen, (uint32_t)((long)ntasks * i / T),
                                            (uint32_t)((long)ntasks * (i + 1) / T)));
    atomic_store(&generation, gen);              /* publishes the fields: workers start run_tasks(gen) */
    if (atomic_load(&sleepers)) {
        pthread_mutex_lock(&mu);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&mu);
    }
    run_tasks(gen, 0);
    for (int spins = 0; atomic_load(&done_tasks) < ntasks; spins++)
        if (spins > 1000) sched_yield();
}

void tn_parallel(int ntasks, tn_task_fn fn, void *ctx) {
    if (nworkers == 0 || ntasks <= 1 || in_task) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t);
        return;
    }
    for (int base = 0; base < ntasks; base += RANGE_MAX)
        parallel_job(base, ntasks - base < RANGE_MAX ? ntasks - base : RANGE_MAX, fn, ctx);
}
#endif
