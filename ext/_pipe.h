/* The hashing thread of BodyHasher: SHA-256 of large relaxed bodies on a
 * second core while the caller's thread canonicalizes the next block.
 *
 * Relaxed canonicalization and SHA-256 of the result cost about 1 : 5 on one
 * core, one after the other.  A pipe overlaps them: the caller's thread
 * canonicalizes into a ring of FDK_PIPE_SLOTS blocks and publishes each full
 * one; a native thread (no GIL, no Python) hashes the published blocks in
 * order.  The hash is OpenSSL's, from the libcrypto hashlib loaded (_evp.h).
 * BodyHasher (in _stream.pxi) gives a large body a pipe only where the
 * process's other large bodies leave a core free for it.  Where no such
 * library is loaded, or the platform has no POSIX threads and
 * dl_iterate_phdr, fdk_pipe_load() fails and BodyHasher hashes on the
 * caller's thread as always.
 *
 * What the worker hashes is a queue of entries, each a stretch of memory:
 * the filled part of a ring block, or (fdk_pipe_publish_ref) a long verbatim
 * run of the caller's own buffer, which relaxed canonicalization leaves as
 * it is (base64 parts, mostly): hashed where it lies instead of copied, so
 * that the worker reads it as one core's SHA-256 would, not from the cache
 * of the core that copied it.  The producer waits for its references to be
 * hashed (fdk_pipe_drain) before the caller's buffer may go.
 *
 * A pipe is used by one producer thread (the BodyHasher's caller, serialized
 * by its busy flag) and its one worker.  head (entries published) is written
 * by the producer only, tail (entries hashed) by the worker only; each waits on
 * the other by polling for up to FDK_PIPE_SPIN_NS (yielding the CPU to any
 * thread that can run), then on the condition variable (every change
 * of head, tail or quit is followed by a broadcast under the mutex, so no
 * wake-up is lost).  A child of fork() has no worker: a pipe that was started
 * before the fork refuses further use there (fdk_pipe_usable).
 *
 * Pipes outlive their bodies: fdk_pipe_put() keeps a finished pipe, its
 * worker polling for a while and then asleep, for the next large body
 * (fdk_pipe_get()), up to as many as the caller says (fdk_pipes_release()
 * ends them: BodyHasher does before os.fork()).  A thread started and
 * joined, a ring mapped, faulted in and unmapped for every body, with the
 * wait for a first whole block, cost 0.24-0.28 ms of a 10 MB body's 6 ms on
 * the virtual machine this was measured on.
 */
#ifndef FDK_PIPE_H
#define FDK_PIPE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_evp.h"

#define FDK_PIPE_SLOTS 4
#define FDK_PIPE_BLOCK (256 * 1024)
#define FDK_PIPE_ENTRIES 64
#define FDK_PIPE_EARLY 4

#if FDK_HAVE_EVP /* (the same platforms: POSIX threads beside dl_iterate_phdr) */
#define FDK_HAVE_PIPE 1
#include <pthread.h>
#include <sched.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FDK_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define FDK_CPU_RELAX() __asm__ __volatile__("yield" ::: "memory")
#else
#define FDK_CPU_RELAX() ((void)0)
#endif
#else
#define FDK_HAVE_PIPE 0
#endif

/* How long a waiting side polls before it sleeps: about two blocks' hashing.
 * Waking a sleeping thread costs 50-250 us on virtual machines, as much as
 * hashing a block, while the caller's thread waits about 100 us for each
 * block the worker frees (it canonicalizes several times faster than SHA-256
 * hashes): polling keeps the ring full.  Longer waits (a worker descheduled,
 * a caller reading its next chunk from disk) sleep. */
#define FDK_PIPE_SPIN_NS 300000
/* How long the producer polls for the worker to hash the runs it handed
 * over from the caller's buffer before update() returns: a whole chunk of
 * the library's (1 MiB) at a slow SHA-256 (500 MB/s).  The producer has
 * nothing else to do meanwhile, and a sleep there costs a wake-up per chunk,
 * on the path every large body takes. */
#define FDK_PIPE_DRAIN_SPIN_NS 2000000



typedef struct fdk_pipe_s {
    void *ctx;                        /* the EVP context: the worker's alone while it runs */
    unsigned char *mem;               /* the ring, FDK_PIPE_SLOTS blocks */
    const unsigned char *at[FDK_PIPE_ENTRIES]; /* each entry's octets ... */
    Py_ssize_t len[FDK_PIPE_ENTRIES]; /* ... and their number */
    uint64_t used[FDK_PIPE_SLOTS];    /* per ring block: 1 + the entry that last took it, or 0 */
    int slot;                         /* the ring block being filled (producer) */
    uint64_t head;                    /* entries published: written by the producer */
    uint64_t tail;                    /* entries hashed: written by the worker */
    int failed;                       /* an EVP call failed */
    unsigned long gen;                /* fork generation the worker belongs to */
    unsigned char *cur;               /* the ring block being filled (producer) */
    Py_ssize_t fill;                  /* octets in it */
    Py_ssize_t sent;                  /* octets of it published (or passed over) */
    int taken;                        /* some of it was published */
    uint64_t first;                   /* head when the body began */
    int quit;                         /* the worker ends once the queue is empty */
    struct fdk_pipe_s *next;          /* the kept pipes' list */
#if FDK_HAVE_PIPE
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
#endif
} fdk_pipe_t;

#if FDK_HAVE_PIPE

static unsigned long fdk_fork_gen = 0;

/* The kept pipes (fdk_pipe_put), under fdk_kept_mu. */
static pthread_mutex_t fdk_kept_mu = PTHREAD_MUTEX_INITIALIZER;
static fdk_pipe_t *fdk_kept = NULL;
static int fdk_kept_n = 0;

/* In a child of fork(): a new generation, and no kept pipes (their workers
 * stayed in the parent; their memory is left as it is, copy-on-write, rather
 * than freed by a handler of fork()). */
static void fdk_atfork_child(void)
{
    __atomic_add_fetch(&fdk_fork_gen, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_init(&fdk_kept_mu, NULL);
    fdk_kept = NULL;
    fdk_kept_n = 0;
}

/* How many fork()s this process is from the one that first found the hash
   (0 where none was found: no pipe ever runs there). */
static unsigned long fdk_fork_generation(void) { return __atomic_load_n(&fdk_fork_gen, __ATOMIC_SEQ_CST); }

/* The EVP functions (fdk_evp_load(), under the GIL), with this process's
 * fork generation counted from then on.  0 when ready, -1 otherwise. */
static int fdk_pipe_load(void)
{
    static int state = 0; /* 1 ready, -1 not to be had */
    if (state == 0) {
        state = fdk_evp_load() == 0 ? 1 : -1;
        if (state == 1)
            pthread_atfork(NULL, NULL, fdk_atfork_child);
    }
    return state == 1 ? 0 : -1;
}

static inline int64_t fdk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Poll until *p >= v (or, with stop, *stop is set) or spin_ns have passed;
 * returns the last value read.  The clock is read every 64 polls. */
static uint64_t fdk_poll_until(const uint64_t *p, uint64_t v, const int *stop, int64_t spin_ns)
{
    int64_t until = 0;
    uint64_t x;
    unsigned k = 0;
    for (;;) {
        x = __atomic_load_n(p, __ATOMIC_ACQUIRE);
        if (x >= v || (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE)))
            return x;
        if ((++k & 63) == 0) {
            int64_t now = fdk_now_ns();
            sched_yield(); /* another thread that can run here comes first */
            if (until == 0)
                until = now + spin_ns;
            else if (now >= until)
                return x;
        }
        FDK_CPU_RELAX();
    }
}

static inline uint64_t fdk_ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void fdk_st(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int fdk_ld_int(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

static void fdk_pipe_wake(fdk_pipe_t *p)
{
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* The worker: hash published entries in order, body after body, until told
 * to quit with none left.  Between bodies as between blocks it polls for up
 * to FDK_PIPE_SPIN_NS before it sleeps: bodies hashed back to back (a bulk
 * signer's, a benchmark's) find it awake, where waking it took 60-80 us on
 * the machine this was measured on. */
static void *fdk_pipe_main(void *arg)
{
    fdk_pipe_t *p = (fdk_pipe_t *)arg;
    uint64_t t = p->tail;
    for (;;) {
        if (fdk_ld(&p->head) == t) {
            if (fdk_poll_until(&p->head, t + 1, &p->quit, FDK_PIPE_SPIN_NS) == t) {
                /* (head only grows from t) */
                pthread_mutex_lock(&p->mu);
                while (fdk_ld(&p->head) == t && !fdk_ld_int(&p->quit))
                    pthread_cond_wait(&p->cv, &p->mu);
                pthread_mutex_unlock(&p->mu);
                if (fdk_ld(&p->head) == t)
                    break; /* told to quit, nothing left */
            }
        }
        {
            /* (each entry in one call: 16 KiB pieces, each next one asked for
               ahead with prefetches, hashed ring blocks 2-4% slower on the
               machine this was measured on, in counters of the thread's time) */
            int e = (int)(t % FDK_PIPE_ENTRIES);
            if (!p->failed && fdk_evp.update(p->ctx, p->at[e], (size_t)p->len[e]) != 1)
                p->failed = 1;
        }
        t += 1;
        fdk_st(&p->tail, t);
        fdk_pipe_wake(p);
    }
    return NULL;
}

/* Start a pipe in *p: 0, or -1 (nothing to undo) when memory, the hash or
 * the thread cannot be had. */
static int fdk_pipe_start(fdk_pipe_t *p)
{
    pthread_attr_t attr;
    int rc;
    memset(p, 0, sizeof(*p));
    p->mem = (unsigned char *)malloc((size_t)FDK_PIPE_SLOTS * FDK_PIPE_BLOCK);
    if (p->mem == NULL)
        return -1;
    p->ctx = fdk_evp.ctx_new();
    if (p->ctx == NULL || fdk_evp.init(p->ctx, fdk_evp.md, NULL) != 1)
        goto fail_ctx;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        goto fail_ctx;
    if (pthread_cond_init(&p->cv, NULL) != 0)
        goto fail_mu;
    p->cur = p->mem;
    p->gen = fdk_fork_generation();
    if (pthread_attr_init(&attr) != 0)
        goto fail_cv;
    pthread_attr_setstacksize(&attr, 256 * 1024);
    rc = pthread_create(&p->thread, &attr, fdk_pipe_main, p);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        goto fail_cv;
    return 0;
fail_cv:
    pthread_cond_destroy(&p->cv);
fail_mu:
    pthread_mutex_destroy(&p->mu);
fail_ctx:
    if (p->ctx)
        fdk_evp.ctx_free(p->ctx);
    free(p->mem);
    memset(p, 0, sizeof(*p));
    return -1;
}

/* The worker of this pipe (from fdk_pipe_get) exists in this process (not a
 * child of fork()). */
static inline int fdk_pipe_usable(const fdk_pipe_t *p)
{
    return p->gen == fdk_fork_generation();
}

/* Wait until the worker has hashed at least `want` entries, polling for up
 * to spin_ns first. */
static void fdk_pipe_wait_tail_for(fdk_pipe_t *p, uint64_t want, int64_t spin_ns)
{
    if (fdk_poll_until(&p->tail, want, NULL, spin_ns) >= want)
        return;
    pthread_mutex_lock(&p->mu);
    while (fdk_ld(&p->tail) < want)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void fdk_pipe_wait_tail(fdk_pipe_t *p, uint64_t want) { fdk_pipe_wait_tail_for(p, want, FDK_PIPE_SPIN_NS); }

/* Wait until the worker has hashed the runs handed over up to entry `want`
 * (fdk_pipe_publish_ref's value). */
static void fdk_pipe_drain(fdk_pipe_t *p, uint64_t want) { fdk_pipe_wait_tail_for(p, want, FDK_PIPE_DRAIN_SPIN_NS); }

/* Queue the n octets at `at` for the worker (n > 0), once the queue has room:
 * returns the number of entries published, this one included. */
static uint64_t fdk_pipe_enqueue(fdk_pipe_t *p, const unsigned char *at, Py_ssize_t n)
{
    uint64_t h = p->head;
    if (h >= FDK_PIPE_ENTRIES)
        fdk_pipe_wait_tail(p, h - FDK_PIPE_ENTRIES + 1); /* entry h % ENTRIES is free again */
    p->at[h % FDK_PIPE_ENTRIES] = at;
    p->len[h % FDK_PIPE_ENTRIES] = n;
    h += 1;
    fdk_st(&p->head, h);
    fdk_pipe_wake(p);
    return h;
}

/* Publish n octets of the ring block being filled, from `sent` on (n may be
 * less than fill - sent, under a limit: the rest is passed over); with
 * next, make the next ring block, once free, the one being filled (or this
 * one again, emptied, if none of it was published). */
static void fdk_pipe_publish(fdk_pipe_t *p, Py_ssize_t n, int next)
{
    if (n > 0) {
        p->used[p->slot] = fdk_pipe_enqueue(p, p->cur + p->sent, n);
        p->taken = 1;
    }
    p->sent = p->fill;
    if (next) {
        if (p->taken) {
            p->slot = (p->slot + 1) % FDK_PIPE_SLOTS;
            if (p->used[p->slot])
                fdk_pipe_wait_tail(p, p->used[p->slot]); /* its last entry is hashed */
            p->cur = p->mem + (size_t)p->slot * FDK_PIPE_BLOCK;
            p->taken = 0;
        }
        p->fill = 0;
        p->sent = 0;
    }
}

/* The body's first FDK_PIPE_EARLY entries are not yet published: the worker
 * waits for its first octets, so the producer publishes them in short pieces
 * as they are canonicalized, rather than a whole first block (256 KiB, some
 * 30 us of canonicalization) at once. */
static inline int fdk_pipe_early(const fdk_pipe_t *p) { return p->head - p->first < FDK_PIPE_EARLY; }

/* Publish the n octets at `at` (n > 0), memory of the caller's that must stay
 * as it is until fdk_pipe_drain(p, returned value) returns. */
static uint64_t fdk_pipe_publish_ref(fdk_pipe_t *p, const unsigned char *at, Py_ssize_t n)
{
    return fdk_pipe_enqueue(p, at, n);
}

/* A pipe for a new body: a kept one (fdk_pipe_put), else a new one.  NULL
 * when none can be had. */
static fdk_pipe_t *fdk_pipe_get(void)
{
    fdk_pipe_t *p;
    pthread_mutex_lock(&fdk_kept_mu);
    p = fdk_kept;
    if (p != NULL) {
        fdk_kept = p->next;
        fdk_kept_n -= 1;
    }
    pthread_mutex_unlock(&fdk_kept_mu);
    if (p != NULL) {
        p->next = NULL;
        p->first = p->head;
        return p;
    }
    p = (fdk_pipe_t *)malloc(sizeof(*p));
    if (p == NULL)
        return NULL;
    if (fdk_pipe_start(p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* Everything is published: wait for the worker to hash it and write the
 * digest (32 octets).  0, or -1 when an EVP call failed.  The pipe is then
 * done with (fdk_pipe_put): it hashes nothing more. */
static int fdk_pipe_finish(fdk_pipe_t *p, unsigned char *digest)
{
    unsigned char out[64];
    unsigned int outlen = 0;
    int ok;
    fdk_pipe_wait_tail(p, p->head);
    ok = !p->failed && fdk_evp.final(p->ctx, out, &outlen) == 1 && outlen == 32;
    if (ok)
        memcpy(digest, out, 32);
    return ok ? 0 : -1;
}

/* Done with a pipe (from fdk_pipe_get; NULL: nothing to do), finished or
 * not: once the worker has hashed what was queued, the pipe is kept for the
 * next body if fewer than `keep` are kept, else its worker is joined and
 * the pipe freed.  In a child of fork() the worker does not exist: nothing
 * is joined and the mutex is left alone. */
static void fdk_pipe_put(fdk_pipe_t *p, int keep)
{
    if (p == NULL)
        return;
    if (p->gen != fdk_fork_generation()) {
        free(p->mem);
        free(p);
        return;
    }
    fdk_pipe_wait_tail(p, p->head); /* (the worker is done with the ring and the context) */
    if (keep > 0 && fdk_evp.init(p->ctx, fdk_evp.md, NULL) == 1) {
        p->failed = 0;
        p->slot = 0;
        p->cur = p->mem;
        p->fill = 0;
        p->sent = 0;
        p->taken = 0;
        memset(p->used, 0, sizeof(p->used));
        pthread_mutex_lock(&fdk_kept_mu);
        if (fdk_kept_n < keep) {
            p->next = fdk_kept;
            fdk_kept = p;
            fdk_kept_n += 1;
            p = NULL;
        }
        pthread_mutex_unlock(&fdk_kept_mu);
        if (p == NULL)
            return;
    }
    __atomic_store_n(&p->quit, 1, __ATOMIC_RELEASE);
    fdk_pipe_wake(p);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    fdk_evp.ctx_free(p->ctx);
    free(p->mem);
    free(p);
}

/* End every kept pipe's worker and free the pipes (the caller's thread
 * must not hold fdk_kept_mu). */
static void fdk_pipes_release(void)
{
    fdk_pipe_t *p, *next;
    pthread_mutex_lock(&fdk_kept_mu);
    p = fdk_kept;
    fdk_kept = NULL;
    fdk_kept_n = 0;
    pthread_mutex_unlock(&fdk_kept_mu);
    for (; p != NULL; p = next) {
        next = p->next;
        fdk_pipe_put(p, 0);
    }
}

/* The number of pipes kept now; for tests. */
static int fdk_pipe_kept(void)
{
    int n;
    pthread_mutex_lock(&fdk_kept_mu);
    n = fdk_kept_n;
    pthread_mutex_unlock(&fdk_kept_mu);
    return n;
}

#else /* no pipe on this platform: BodyHasher hashes on the caller's thread */

static int fdk_pipe_load(void) { return -1; }
static unsigned long fdk_fork_generation(void) { return 0; }
static fdk_pipe_t *fdk_pipe_get(void) { return NULL; }
static inline int fdk_pipe_usable(const fdk_pipe_t *p) { (void)p; return 0; }
static void fdk_pipe_publish(fdk_pipe_t *p, Py_ssize_t n, int next) { (void)p; (void)n; (void)next; }
static inline int fdk_pipe_early(const fdk_pipe_t *p) { (void)p; return 0; }
static uint64_t fdk_pipe_publish_ref(fdk_pipe_t *p, const unsigned char *at, Py_ssize_t n)
{
    (void)p; (void)at; (void)n;
    return 0;
}
static void fdk_pipe_drain(fdk_pipe_t *p, uint64_t want) { (void)p; (void)want; }
static int fdk_pipe_finish(fdk_pipe_t *p, unsigned char *digest) { (void)p; (void)digest; return -1; }
static void fdk_pipe_put(fdk_pipe_t *p, int keep) { (void)p; (void)keep; }
static int fdk_pipe_kept(void) { return 0; }
static void fdk_pipes_release(void) {}

#endif
#endif /* FDK_PIPE_H */
