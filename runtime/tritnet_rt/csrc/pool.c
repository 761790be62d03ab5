/* A small thread pool: tn_set_threads(n) keeps n-1 workers; tn_parallel hands out tasks through an atomic
 * counter, the calling thread working too. Idle workers spin for TN_SPIN_US, then sleep on a condition
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

/* A job is (fn, ctx, ntasks) plus a generation. Tasks are claimed by CAS on state = generation<<32 | next,
 * so a worker that wakes late can never run a task of a later job; the caller runs tasks too and then
 * waits only for tasks already claimed, never for a worker the OS has not scheduled.
 * The 64-bit atomics are single instructions on x86-64, AArch64 and ARMv7 (ldrexd/strexd); armv6 (Raspberry Pi
 * OS 32-bit's baseline) has no such instruction and GCC calls libatomic (__atomic_load_8, ...), which
 * build_ext.py links on 32-bit ARM. */
#define TN_MAX_THREADS 64
static pthread_t workers[TN_MAX_THREADS];
static int nthreads = 1, nworkers = 0;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static _Atomic uint64_t state;
static atomic_uint generation;
static atomic_int done_tasks, sleepers, quit;
static tn_task_fn job_fn;
static void *job_ctx;
static atomic_int job_tasks;          /* read by late workers before their CAS fails */

static void run_tasks(uint32_t gen) {
    for (;;) {
        uint64_t s = atomic_load(&state);
        if ((uint32_t)(s >> 32) != gen || (int)(uint32_t)s >= atomic_load(&job_tasks)) return;
        if (!atomic_compare_exchange_weak(&state, &s, s + 1)) continue;
        job_fn(job_ctx, (int)(uint32_t)s);
        atomic_fetch_add(&done_tasks, 1);
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

static void *worker(void *arg) {
    unsigned seen = (unsigned)(uintptr_t)arg;
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
        run_tasks(seen);
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
    for (int i = 0; i < n - 1; i++)
        if (pthread_create(&workers[nworkers], NULL, worker, (void *)(uintptr_t)atomic_load(&generation)) == 0)
            nworkers++;
}

void tn_parallel(int ntasks, tn_task_fn fn, void *ctx) {
    if (nworkers == 0 || ntasks <= 1) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t);
        return;
    }
    /* The new generation goes into the claim word first: a worker still looping over the previous job (all
     * its tasks done) then fails the generation check or its CAS, and can never claim a task of this job
     * under the old generation while the job's fields below are being written. */
    unsigned gen = atomic_load(&generation) + 1;
    atomic_store(&state, (uint64_t)gen << 32);
    job_fn = fn; job_ctx = ctx; atomic_store(&job_tasks, ntasks);
    atomic_store(&done_tasks, 0);
    atomic_store(&generation, gen);              /* publishes the fields: workers start run_tasks(gen) */
    if (atomic_load(&sleepers)) {
        pthread_mutex_lock(&mu);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&mu);
    }
    run_tasks(gen);
    for (int spins = 0; atomic_load(&done_tasks) < ntasks; spins++)
        if (spins > 1000) sched_yield();
}
#endif
