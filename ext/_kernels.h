/* SIMD kernels of the compiled canonicalization core (fastdkim._canon).
 *
 * The body engine (_body.pxi) calls these to find, in one vector scan, the next
 * octet where the canonical form of a body can differ from the input, copying
 * the verbatim stretch before it on the way, and (relaxed) to canonicalize
 * whole lines block by block; the relaxed form of header fields (_headers.pxi)
 * copies each run of octets above SP with one scan (fdk_copy_dense; on the
 * avx512 path a whole field value is compacted at once, fdk_relax_value), and
 * the header index reads each line with one scan for its end and one for its
 * name (fdk_index_block, its loop in _index.h).  Paths, one chosen at run
 * time (fdk_path):
 *
 *   scalar  plain loops, any CPU;
 *   sse2    16-octet scans that stop at each WSP run (x86-64 baseline);
 *   ssse3   relaxed: 16-octet blocks compacted with a shuffle per 8 octets
 *           (a keep-mask indexes a table of shuffle controls);
 *   avx2    relaxed: the same on 32-octet blocks; header lines 32 octets at
 *           a time (the avx512 path too);
 *   avx512  relaxed: 64-octet blocks, compacted by one compress instruction
 *           (AVX-512 BW and VBMI2).
 *
 * The ssse3, avx2 and avx512 functions are compiled for their instruction
 * sets with target attributes (the build needs no -m flags) and called only
 * when the CPU has them (GCC and Clang on x86-64; elsewhere sse2 or scalar).
 * Every path gives the same results.  FASTDKIM_NO_SIMD at compile time leaves
 * only the scalar path.  Included once, by the module that Cython generates
 * from _canon.pyx, after Python.h.
 */
#ifndef FASTDKIM_KERNELS_H
#define FASTDKIM_KERNELS_H

#include <Python.h>
#include <stdlib.h>
#include <string.h>
#if (defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64)) && !defined(FASTDKIM_NO_SIMD)
#  include <emmintrin.h>
#  define FDK_SSE2 1
#endif
#if defined(_MSC_VER) && !defined(__clang__)
#  include <intrin.h>
#  define FDK_INLINE static __forceinline
#elif defined(__GNUC__)
#  define FDK_INLINE static inline __attribute__((always_inline))
#else
#  define FDK_INLINE static inline
#endif
/* Run-time dispatch to the ssse3, avx2 and avx512 functions: GCC and Clang on x86-64. */
#if defined(FDK_SSE2) && defined(__GNUC__) && defined(__x86_64__)
#  include <immintrin.h>
#  define FDK_DISPATCH 1
#  define FDK_TARGET(t) __attribute__((target(t)))
#endif
#if defined(FDK_SSE2)
#  if defined(_MSC_VER) && !defined(__clang__)
static __inline int fdk_ctz(unsigned int x) { unsigned long r; _BitScanForward(&r, x); return (int)r; }
static __inline int fdk_ctz64(unsigned long long x) { unsigned long r; _BitScanForward64(&r, x); return (int)r; }
#  else
#    define fdk_ctz(x) __builtin_ctz(x)
#    define fdk_ctz64(x) __builtin_ctzll(x)
#  endif
#endif

#define FDK_RELAXED 1
#define FDK_BARE_LF 2

/* Could the canonical output differ from the input at b[p]?  (Or does a
   decision there depend on the next chunk?)  b[p-1] must exist.  A false
   positive only ends a verbatim run early, so the tests may over-approximate:
   a SP followed by any octet <= 0x20 counts. */
FDK_INLINE int fdk_special_at(const unsigned char *b, Py_ssize_t p, Py_ssize_t n, int mode)
{
    unsigned char c = b[p];
    if (c == '\r')
        return p + 1 == n;              /* its LF may start the next chunk */
    if (mode & FDK_RELAXED) {
        if (c == '\t')
            return 1;
        if (c == ' ')
            return p + 1 == n || b[p + 1] <= 0x20;
    }
    if (c == '\n' && (mode & FDK_BARE_LF))
        return b[p - 1] != '\r';
    return 0;
}

#if defined(FDK_SSE2)
/* fdk_special_at() for the 16 positions q[0..15]; q[-1] and q[16] are readable. */
FDK_INLINE int fdk_mask16(const unsigned char *q, int mode, __m128i *cur)
{
    __m128i c = _mm_loadu_si128((const __m128i *)q);
    __m128i m = _mm_setzero_si128();
    *cur = c;
    if (mode & FDK_RELAXED) {
        __m128i nx = _mm_loadu_si128((const __m128i *)(q + 1));
        m = _mm_or_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('\t')),
                _mm_and_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8(' ')),
                              _mm_cmpeq_epi8(_mm_min_epu8(nx, _mm_set1_epi8(0x20)), nx)));
    }
    if (mode & FDK_BARE_LF) {
        __m128i pv = _mm_loadu_si128((const __m128i *)(q - 1));
        m = _mm_or_si128(m, _mm_andnot_si128(_mm_cmpeq_epi8(pv, _mm_set1_epi8('\r')),
                                             _mm_cmpeq_epi8(c, _mm_set1_epi8('\n'))));
    }
    return _mm_movemask_epi8(m);
}
#endif

/* The verbatim run starting at the content octet b[i] ends at the first
   p > i where fdk_special_at() holds (or at n); return that p.  While
   scanning, copy b[i:min(p, i + win)] to out, which must have room for
   win + 16 octets (whole 16-octet blocks are stored).  vec: use SSE2. */
FDK_INLINE Py_ssize_t fdk_run_copy_impl(const unsigned char *b, Py_ssize_t i, Py_ssize_t n,
                                        int mode, unsigned char *out, Py_ssize_t win, int vec)
{
    Py_ssize_t p = i + 1;
    out[0] = b[i];
#if defined(FDK_SSE2)
    if (vec) {
        const Py_ssize_t last = n - 17;     /* q[16] readable while p <= last */
        const Py_ssize_t wend = i + win;
        __m128i c0, c1, c2, c3;
        int mask;
        while (p <= last && p < wend) {
            mask = fdk_mask16(b + p, mode, &c0);
            _mm_storeu_si128((__m128i *)(out + (p - i)), c0);
            if (mask)
                return p + fdk_ctz(mask);
            p += 16;
        }
        while (p + 48 <= last) {            /* past the copy window: scan only */
            unsigned long long m0 = (unsigned)fdk_mask16(b + p, mode, &c0);
            unsigned long long m1 = (unsigned)fdk_mask16(b + p + 16, mode, &c1);
            unsigned long long m2 = (unsigned)fdk_mask16(b + p + 32, mode, &c2);
            unsigned long long m3 = (unsigned)fdk_mask16(b + p + 48, mode, &c3);
            unsigned long long m = m0 | (m1 << 16) | (m2 << 32) | (m3 << 48);
            if (m)
                return p + fdk_ctz64(m);
            p += 64;
        }
        while (p <= last) {
            mask = fdk_mask16(b + p, mode, &c0);
            if (mask)
                return p + fdk_ctz(mask);
            p += 16;
        }
    }
#endif
    for (; p < n; p++) {
        if (fdk_special_at(b, p, n, mode))
            return p;
        if (p - i < win)
            out[p - i] = b[p];
    }
    return n;
}

/* First index >= i that is neither SP nor HTAB, or n.  vec: use SSE2. */
FDK_INLINE Py_ssize_t fdk_skip_wsp_impl(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int vec)
{
    if (i >= n || (b[i] != ' ' && b[i] != '\t'))
        return i;                       /* a single blank: the common case */
#if defined(FDK_SSE2)
    while (vec && i + 16 <= n) {
        __m128i c = _mm_loadu_si128((const __m128i *)(b + i));
        int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8(' ')),
                                                  _mm_cmpeq_epi8(c, _mm_set1_epi8('\t'))));
        if (mask != 0xFFFF)
            return i + fdk_ctz(~mask & 0xFFFF);
        i += 16;
    }
#endif
    while (i < n && (b[i] == ' ' || b[i] == '\t'))
        i++;
    return i;
}

/* Relaxed line content from the content octet b[i]: copy it to out,
   reducing every WSP run that has more content after it on the same line
   to one SP, until an octet the state machine must see (a WSP run before
   CR, LF or the chunk end; a CR at the chunk end; a bare LF in bare_lf
   mode) or until at least win octets were written (out has room for
   win + 16).  Returns the input position reached; *pw is the number of
   octets written and *pseg the start of the last verbatim stretch (from
   there on, output and input agree octet for octet).  vec: use SSE2. */
FDK_INLINE Py_ssize_t fdk_relaxed_impl(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int mode,
                                       unsigned char *out, Py_ssize_t win,
                                       Py_ssize_t *pw, Py_ssize_t *pseg, int vec)
{
    Py_ssize_t p = i + 1, o = 1, seg = i, e;
    unsigned char c;
    out[0] = b[i];
    for (;;) {
#if defined(FDK_SSE2)
        if (vec) {
            const Py_ssize_t last = n - 17;     /* q[16] readable while p <= last */
            __m128i c0;
            int mask;
            while (p <= last && o < win) {
                mask = fdk_mask16(b + p, mode, &c0);
                _mm_storeu_si128((__m128i *)(out + o), c0);
                if (mask) {
                    int t = fdk_ctz(mask);
                    p += t;
                    o += t;
                    goto special;
                }
                p += 16;
                o += 16;
            }
        }
#endif
        while (p < n && o < win) {
            if (fdk_special_at(b, p, n, mode))
                goto special;
            out[o++] = b[p++];
        }
        break;                          /* chunk end or window full */
    special:
        c = b[p];
        if (c != ' ' && c != '\t')
            break;
        e = fdk_skip_wsp_impl(b, p + 1, n, vec);
        if (e >= n || b[e] == '\r' || ((mode & FDK_BARE_LF) && b[e] == '\n'))
            break;                      /* the run may end the line */
        out[o++] = ' ';
        p = seg = e;                    /* b[e] is line content */
        out[o++] = b[p++];
    }
    *pw = o;
    *pseg = seg;
    return p;
}

/* ---------------------------------------------------------------------------
   Run-time choice of path. */

#define FDK_PATH_SCALAR 0
#define FDK_PATH_SSE2 1
#define FDK_PATH_SSSE3 2
#define FDK_PATH_AVX2 3
#define FDK_PATH_AVX512 4
#define FDK_PATHS 5

static const char *const fdk_path_names[FDK_PATHS] = {"scalar", "sse2", "ssse3", "avx2", "avx512"};
static int fdk_path = FDK_PATH_SCALAR;     /* the live path (fdk_path_init sets it) */

/* Shuffle controls compacting 8 octets: entry m lists, in order, the indices
   of the set bits of m; fdk_cnt[m] is how many there are. */
static unsigned char fdk_lut[256][8];
static unsigned char fdk_cnt[256];

/* The best path this CPU (and build) can run. */
static int fdk_path_best(void)
{
#if defined(FDK_DISPATCH)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi2"))
        return FDK_PATH_AVX512;
    if (__builtin_cpu_supports("avx2"))
        return FDK_PATH_AVX2;
    if (__builtin_cpu_supports("ssse3"))
        return FDK_PATH_SSSE3;
    return FDK_PATH_SSE2;
#elif defined(FDK_SSE2)
    return FDK_PATH_SSE2;
#else
    return FDK_PATH_SCALAR;
#endif
}

/* The path called name ("scalar", "sse2", "ssse3", "avx2", "avx512"), or -1. */
static int fdk_path_by_name(const char *name)
{
    int k;
    for (k = 0; k < FDK_PATHS; k++)
        if (strcmp(name, fdk_path_names[k]) == 0)
            return k;
    return -1;
}

/* Fill the tables and make the best path live; returns it. */
static int fdk_path_init(void)
{
    int m, j, k;
    for (m = 0; m < 256; m++) {
        k = 0;
        for (j = 0; j < 8; j++)
            if (m & (1 << j))
                fdk_lut[m][k++] = (unsigned char)j;
        fdk_cnt[m] = (unsigned char)k;
        for (; k < 8; k++)
            fdk_lut[m][k] = 0x80;           /* a zero octet, never counted */
    }
    fdk_path = fdk_path_best();
    return fdk_path;
}

/* ---------------------------------------------------------------------------
   Relaxed lines in blocks (ssse3, avx2, avx512).

   From a content octet b[i] (not WSP, CR or LF) on, in the state "inside a
   line, nothing pending", the fate of each octet depends only on itself and
   the two after it:
     - a WSP (SP or HTAB) followed by another WSP is dropped (the last of a
       run stands for the run);
     - a WSP followed by CR LF is dropped (the run ends the line);
     - any other WSP becomes one SP, and every other octet is kept.
   An empty line keeps its CRLF when content follows, and a CR not before LF
   is content; with bare_lf a LF not after CR ends a line too (a WSP before
   it is dropped, and it becomes CRLF: the block stops before it, and the
   next one starts after it).  The output is committed only up to the last
   plain octet (neither WSP, CR nor LF: a control octet is one too) in the
   blocks done: there the state is again "inside a line, nothing pending",
   and what follows (empty lines held back, a run that may end the line or
   the body, the chunk end) goes back to the state machine.

   Only so far, so the kernels stop once FDK_STALE octets have passed
   without a plain octet: what they did past the commit point is work thrown
   away, and without that bound a body of lines holding no plain octet (WSP,
   CR, LF, a lone LF or CR that is content) would cost a whole window of
   work for each octet of progress. */
#define FDK_STALE 128

FDK_INLINE int fdk_is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Is the WSP rule above dropping b[j]?  b[j + 2] must be readable. */
FDK_INLINE int fdk_wsp_dropped(const unsigned char *b, Py_ssize_t j, int bare_lf)
{
    return fdk_is_wsp(b[j]) && (fdk_is_wsp(b[j + 1]) || (b[j + 1] == '\r' && b[j + 2] == '\n')
                                || (bare_lf && b[j + 1] == '\n'));
}

/* The commit point: from input p and output o (reached together; the two
   octets after p readable; a plain octet before p, after any bare LF),
   back to just after the last plain octet, but not before i + 1.  Sets
   *pw, returns the input position. */
FDK_INLINE Py_ssize_t fdk_blocks_commit(const unsigned char *b, Py_ssize_t i, Py_ssize_t p, Py_ssize_t o,
                                        int bare_lf, Py_ssize_t *pw)
{
    while (p - 1 > i && (fdk_is_wsp(b[p - 1]) || b[p - 1] == '\r' || b[p - 1] == '\n')) {
        p--;
        if (!fdk_wsp_dropped(b, p, bare_lf))
            o--;
    }
    *pw = o;
    return p;
}

#if defined(FDK_DISPATCH)
/* How far ahead of a block the line kernels prefetch the input: it streams
   in from memory, and a block is done in a few cycles. */
#  define FDK_PREFETCH 1024
#  define FDK_TARGET_INLINE(t) static inline __attribute__((always_inline)) __attribute__((target(t)))

/* Store the octets of c whose bit in keep (16 bits) is set at out + o, in
   order; returns the new o.  Writes up to 16 octets past o. */
FDK_TARGET_INLINE("ssse3") Py_ssize_t fdk_compact16(__m128i c, unsigned keep, unsigned char *out, Py_ssize_t o)
{
    unsigned lo = keep & 0xFF, hi = keep >> 8;
    __m128i s0 = _mm_loadl_epi64((const __m128i *)fdk_lut[lo]);
    __m128i s1 = _mm_add_epi8(_mm_loadl_epi64((const __m128i *)fdk_lut[hi]), _mm_set1_epi8(8));
    _mm_storel_epi64((__m128i *)(out + o), _mm_shuffle_epi8(c, s0));
    o += fdk_cnt[lo];
    _mm_storel_epi64((__m128i *)(out + o), _mm_shuffle_epi8(c, s1));
    return o + fdk_cnt[hi];
}

/* One 16-octet block at q (q[-1] and q[17] readable): canonical octets to
   out + *po.  Returns how many octets it took: 16, or, with bare_lf, those
   before the first bare LF (the caller ends the line there).  *pcontent:
   whether they hold a plain octet (neither WSP, CR nor LF); *pclean: whether the block came out
   verbatim (16 octets, no HTAB, nothing dropped). */
FDK_TARGET_INLINE("ssse3") int fdk_block16(const unsigned char *q, int bare_lf, unsigned char *out,
                                           Py_ssize_t *po, int *pcontent, int *pclean)
{
    const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    __m128i c = _mm_loadu_si128((const __m128i *)q);
    __m128i n1 = _mm_loadu_si128((const __m128i *)(q + 1));
    __m128i n2 = _mm_loadu_si128((const __m128i *)(q + 2));
    __m128i ist = _mm_cmpeq_epi8(c, tab);
    __m128i w = _mm_or_si128(_mm_cmpeq_epi8(c, sp), ist);
    __m128i w1 = _mm_or_si128(_mm_cmpeq_epi8(n1, sp), _mm_cmpeq_epi8(n1, tab));
    __m128i crlf1 = _mm_and_si128(_mm_cmpeq_epi8(n1, cr), _mm_cmpeq_epi8(n2, lf));
    __m128i drop;
    unsigned keep, lim = 0xFFFF;
    int t = 16;
    if (bare_lf)    /* a WSP before a LF: before a bare LF */
        crlf1 = _mm_or_si128(crlf1, _mm_cmpeq_epi8(n1, lf));
    drop = _mm_and_si128(w, _mm_or_si128(w1, crlf1));
    if (bare_lf) {
        __m128i pv = _mm_loadu_si128((const __m128i *)(q - 1));
        unsigned bl = (unsigned)_mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(pv, cr), _mm_cmpeq_epi8(c, lf)));
        if (bl) {
            t = fdk_ctz(bl);
            lim = (1u << t) - 1;
        }
    }
    *pcontent = (~(unsigned)_mm_movemask_epi8(_mm_or_si128(w, _mm_or_si128(_mm_cmpeq_epi8(c, cr), _mm_cmpeq_epi8(c, lf))))
                 & lim) != 0;
    *pclean = t == 16 && _mm_movemask_epi8(_mm_or_si128(drop, ist)) == 0;
    if (*pclean) {
        _mm_storeu_si128((__m128i *)(out + *po), c);
        *po += 16;
        return 16;
    }
    keep = ~(unsigned)_mm_movemask_epi8(drop) & lim;
    c = _mm_xor_si128(c, _mm_and_si128(ist, _mm_set1_epi8(' ' ^ '\t')));
    if (keep == 0xFFFF) {
        _mm_storeu_si128((__m128i *)(out + *po), c);
        *po += 16;
    } else {
        *po = fdk_compact16(c, keep, out, *po);
    }
    return t;
}

/* Relaxed line content from the content octet b[i], 16 octets per step:
   canonical octets to out (room for win + 16), up to the commit point, which
   is returned (*pw: octets written).  i + 1 means no progress.  With clean
   > 0, stop after clean octets in a row came out verbatim (the caller may
   hash a long verbatim run in place). */
FDK_TARGET("ssse3") static Py_ssize_t fdk_relaxed_ssse3(const unsigned char *b, Py_ssize_t i, Py_ssize_t n,
                                                       int bare_lf, unsigned char *out, Py_ssize_t win,
                                                       Py_ssize_t clean, Py_ssize_t *pw)
{
    Py_ssize_t p = i + 1, o = 1, last = i + 1, last_o = 1, streak = 0;
    int content, verbatim, t;
    out[0] = b[i];
    while (p + 18 <= n && o < win && p - last < FDK_STALE) {
        t = fdk_block16(b + p, bare_lf, out, &o, &content, &verbatim);
        p += t;
        if (content) {
            last = p;
            last_o = o;
        }
        if (t < 16) {                   /* a bare LF ends the line */
            out[o] = '\r';
            out[o + 1] = '\n';
            o += 2;
            p++;
            streak = 0;
            continue;
        }
        streak = verbatim ? streak + 16 : 0;
        if (clean && streak >= clean)
            break;
    }
    return fdk_blocks_commit(b, i, last, last_o, bare_lf, pw);
}

/* The same, 32 octets per step (16 at the end). */
FDK_TARGET("avx2") static Py_ssize_t fdk_relaxed_avx2(const unsigned char *b, Py_ssize_t i, Py_ssize_t n,
                                                     int bare_lf, unsigned char *out, Py_ssize_t win,
                                                     Py_ssize_t clean, Py_ssize_t *pw)
{
    const __m256i sp = _mm256_set1_epi8(' '), tab = _mm256_set1_epi8('\t');
    const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n');
    const __m256i flip = _mm256_set1_epi8(' ' ^ '\t');
    Py_ssize_t p = i + 1, o = 1, last = i + 1, last_o = 1, streak = 0;
    int content, verbatim, t;
    out[0] = b[i];
    while (p + 34 <= n && o + 32 <= win && p - last < FDK_STALE) {
        const unsigned char *q = b + p;
        __m256i c = _mm256_loadu_si256((const __m256i *)q);
        __m256i n1 = _mm256_loadu_si256((const __m256i *)(q + 1));
        __m256i n2 = _mm256_loadu_si256((const __m256i *)(q + 2));
        _mm_prefetch((const char *)q + FDK_PREFETCH, _MM_HINT_T0);
        __m256i ist = _mm256_cmpeq_epi8(c, tab);
        __m256i w = _mm256_or_si256(_mm256_cmpeq_epi8(c, sp), ist);
        __m256i w1 = _mm256_or_si256(_mm256_cmpeq_epi8(n1, sp), _mm256_cmpeq_epi8(n1, tab));
        __m256i crlf1 = _mm256_and_si256(_mm256_cmpeq_epi8(n1, cr), _mm256_cmpeq_epi8(n2, lf));
        __m256i drop, dt;
        unsigned keep, lim = 0xFFFFFFFFu;
        if (bare_lf)    /* a WSP before a LF: before a bare LF */
            crlf1 = _mm256_or_si256(crlf1, _mm256_cmpeq_epi8(n1, lf));
        drop = _mm256_and_si256(w, _mm256_or_si256(w1, crlf1));
        dt = _mm256_or_si256(drop, ist);
        t = 32;
        if (bare_lf) {   /* take the octets before a bare LF */
            __m256i pv = _mm256_loadu_si256((const __m256i *)(q - 1));
            unsigned bl = (unsigned)_mm256_movemask_epi8(_mm256_andnot_si256(_mm256_cmpeq_epi8(pv, cr),
                                                                            _mm256_cmpeq_epi8(c, lf)));
            if (bl) {
                t = fdk_ctz(bl);
                lim = (1u << t) - 1;
            }
        }
        content = (~(unsigned)_mm256_movemask_epi8(_mm256_or_si256(
                       w, _mm256_or_si256(_mm256_cmpeq_epi8(c, cr), _mm256_cmpeq_epi8(c, lf)))) & lim) != 0;
        /* no branch on the block's contents: in ordinary text, blocks with
           and without a WSP run alternate unpredictably */
        streak = (t == 32 && _mm256_testz_si256(dt, dt)) ? streak + 32 : 0;
        keep = ~(unsigned)_mm256_movemask_epi8(drop) & lim;
        c = _mm256_xor_si256(c, _mm256_and_si256(ist, flip));
        o = fdk_compact16(_mm256_castsi256_si128(c), keep & 0xFFFF, out, o);
        o = fdk_compact16(_mm256_extracti128_si256(c, 1), keep >> 16, out, o);
        p += t;
        if (content) {
            last = p;
            last_o = o;
        }
        if (t < 32) {                   /* a bare LF ends the line */
            out[o] = '\r';
            out[o + 1] = '\n';
            o += 2;
            p++;
            continue;
        }
        if (clean && streak >= clean)
            goto done;
    }
    while (p + 18 <= n && o < win && p - last < FDK_STALE) {
        t = fdk_block16(b + p, bare_lf, out, &o, &content, &verbatim);
        p += t;
        if (content) {
            last = p;
            last_o = o;
        }
        if (t < 16) {                   /* a bare LF ends the line */
            out[o] = '\r';
            out[o + 1] = '\n';
            o += 2;
            p++;
            streak = 0;
            continue;
        }
        streak = verbatim ? streak + 16 : 0;
        if (clean && streak >= clean)
            break;
    }
done:
    return fdk_blocks_commit(b, i, last, last_o, bare_lf, pw);
}

/* The same, 64 octets per step (16 at the end). */
FDK_TARGET("avx2,avx512f,avx512bw,avx512vbmi2,popcnt")
static Py_ssize_t fdk_relaxed_avx512(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int bare_lf,
                                     unsigned char *out, Py_ssize_t win, Py_ssize_t clean, Py_ssize_t *pw)
{
    const __m512i sp = _mm512_set1_epi8(' '), tab = _mm512_set1_epi8('\t');
    const __m512i cr = _mm512_set1_epi8('\r'), lf = _mm512_set1_epi8('\n');
    Py_ssize_t p = i + 1, o = 1, last = i + 1, last_o = 1, streak = 0;
    int content, verbatim, t;
    out[0] = b[i];
    while (p + 66 <= n && o + 64 <= win && p - last < FDK_STALE) {
        const unsigned char *q = b + p;
        __m512i c = _mm512_loadu_si512((const void *)q);
        __m512i n1 = _mm512_loadu_si512((const void *)(q + 1));
        __m512i n2 = _mm512_loadu_si512((const void *)(q + 2));
        _mm_prefetch((const char *)q + FDK_PREFETCH, _MM_HINT_T0);
        __mmask64 ist = _mm512_cmpeq_epi8_mask(c, tab);
        __mmask64 w = _mm512_cmpeq_epi8_mask(c, sp) | ist;
        __mmask64 w1 = _mm512_cmpeq_epi8_mask(n1, sp) | _mm512_cmpeq_epi8_mask(n1, tab);
        __mmask64 crlf1 = _mm512_cmpeq_epi8_mask(n1, cr) & _mm512_cmpeq_epi8_mask(n2, lf);
        __mmask64 drop, keep, lim = ~(__mmask64)0;
        t = 64;
        if (bare_lf)    /* a WSP before a LF: before a bare LF */
            crlf1 |= _mm512_cmpeq_epi8_mask(n1, lf);
        drop = w & (w1 | crlf1);
        if (bare_lf) {   /* take the octets before a bare LF */
            __m512i pv = _mm512_loadu_si512((const void *)(q - 1));
            __mmask64 bl = _mm512_cmpeq_epi8_mask(c, lf) & ~_mm512_cmpeq_epi8_mask(pv, cr);
            if (bl) {
                t = fdk_ctz64(bl);
                lim = ((__mmask64)1 << t) - 1;
            }
        }
        content = (~(w | _mm512_cmpeq_epi8_mask(c, cr) | _mm512_cmpeq_epi8_mask(c, lf)) & lim) != 0;
        keep = ~drop & lim;
        c = _mm512_mask_mov_epi8(c, ist, sp);
        _mm512_storeu_si512((void *)(out + o), _mm512_maskz_compress_epi8(keep, c));
        o += (Py_ssize_t)_mm_popcnt_u64(keep);
        streak = (t == 64 && !(drop | ist)) ? streak + 64 : 0;
        p += t;
        if (content) {
            last = p;
            last_o = o;
        }
        if (t < 64) {                   /* a bare LF ends the line */
            out[o] = '\r';
            out[o + 1] = '\n';
            o += 2;
            p++;
            continue;
        }
        if (clean && streak >= clean)
            goto done;
    }
    while (p + 18 <= n && o < win && p - last < FDK_STALE) {
        t = fdk_block16(b + p, bare_lf, out, &o, &content, &verbatim);
        p += t;
        if (content) {
            last = p;
            last_o = o;
        }
        if (t < 16) {                   /* a bare LF ends the line */
            out[o] = '\r';
            out[o + 1] = '\n';
            o += 2;
            p++;
            streak = 0;
            continue;
        }
        streak = verbatim ? streak + 16 : 0;
        if (clean && streak >= clean)
            break;
    }
done:
    return fdk_blocks_commit(b, i, last, last_o, bare_lf, pw);
}

/* Where the verbatim run of relaxed canonicalization starting at the
   content octet b[i] ends: the first p > i where fdk_special_at() holds (in
   relaxed mode, with bare_lf or not), or n.  Scans only. */
FDK_TARGET("avx2") static Py_ssize_t fdk_run_end_avx2(const unsigned char *b, Py_ssize_t i, Py_ssize_t n,
                                                     int bare_lf)
{
    const __m256i sp = _mm256_set1_epi8(' '), tab = _mm256_set1_epi8('\t');
    const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n');
    const __m256i blank = _mm256_set1_epi8(0x20);
    const int mode = FDK_RELAXED | (bare_lf ? FDK_BARE_LF : 0);
    Py_ssize_t p = i + 1;
    while (p + 65 <= n) {
        const unsigned char *q = b + p;
        __m256i c0 = _mm256_loadu_si256((const __m256i *)q);
        __m256i c1 = _mm256_loadu_si256((const __m256i *)(q + 32));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(q + 1));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(q + 33));
        __m256i m0 = _mm256_or_si256(_mm256_cmpeq_epi8(c0, tab),
                                     _mm256_and_si256(_mm256_cmpeq_epi8(c0, sp),
                                                      _mm256_cmpeq_epi8(_mm256_min_epu8(x0, blank), x0)));
        __m256i m1 = _mm256_or_si256(_mm256_cmpeq_epi8(c1, tab),
                                     _mm256_and_si256(_mm256_cmpeq_epi8(c1, sp),
                                                      _mm256_cmpeq_epi8(_mm256_min_epu8(x1, blank), x1)));
        unsigned long long m;
        if (bare_lf) {
            __m256i p0 = _mm256_loadu_si256((const __m256i *)(q - 1));
            __m256i p1 = _mm256_loadu_si256((const __m256i *)(q + 31));
            m0 = _mm256_or_si256(m0, _mm256_andnot_si256(_mm256_cmpeq_epi8(p0, cr), _mm256_cmpeq_epi8(c0, lf)));
            m1 = _mm256_or_si256(m1, _mm256_andnot_si256(_mm256_cmpeq_epi8(p1, cr), _mm256_cmpeq_epi8(c1, lf)));
        }
        m = (unsigned)_mm256_movemask_epi8(m0) | ((unsigned long long)(unsigned)_mm256_movemask_epi8(m1) << 32);
        if (m)
            return p + fdk_ctz64(m);
        p += 64;
    }
    for (; p < n; p++)
        if (fdk_special_at(b, p, n, mode))
            return p;
    return n;
}

/* The same, on 64-octet blocks. */
FDK_TARGET("avx2,avx512f,avx512bw") static Py_ssize_t fdk_run_end_avx512(const unsigned char *b, Py_ssize_t i,
                                                                        Py_ssize_t n, int bare_lf)
{
    const __m512i sp = _mm512_set1_epi8(' '), tab = _mm512_set1_epi8('\t');
    const __m512i cr = _mm512_set1_epi8('\r'), lf = _mm512_set1_epi8('\n');
    const __m512i blank = _mm512_set1_epi8(0x20);
    const int mode = FDK_RELAXED | (bare_lf ? FDK_BARE_LF : 0);
    Py_ssize_t p = i + 1;
    while (p + 65 <= n) {
        const unsigned char *q = b + p;
        __m512i c = _mm512_loadu_si512((const void *)q);
        __m512i x = _mm512_loadu_si512((const void *)(q + 1));
        __mmask64 m = _mm512_cmpeq_epi8_mask(c, tab)
                      | (_mm512_cmpeq_epi8_mask(c, sp) & _mm512_cmple_epu8_mask(x, blank));
        if (bare_lf) {
            __m512i pv = _mm512_loadu_si512((const void *)(q - 1));
            m |= _mm512_cmpeq_epi8_mask(c, lf) & ~_mm512_cmpeq_epi8_mask(pv, cr);
        }
        if (m)
            return p + fdk_ctz64(m);
        p += 64;
    }
    for (; p < n; p++)
        if (fdk_special_at(b, p, n, mode))
            return p;
    return n;
}

/* The relaxed form (section 3.4.2) of the header field value b[i:e] written
   to out, on 64-octet blocks; returns its length, or -1 where the value
   holds a CR or LF other than a fold (CRLF before SP or HTAB), which the
   caller's octet loop then reads instead (out may hold anything then).
   b[i] and b[e - 1] are neither SP nor HTAB nor part of a CRLF (the
   caller strips the blanks around the value).  Inside, each run of blanks (SP, HTAB and the CRLF of
   folds) becomes one SP: a blank is kept, as SP, when the octet after it
   is not blank.  Reads and writes nothing outside b[i:e] and out[:e - i]
   (masked loads and stores at the end). */
FDK_TARGET("avx2,avx512f,avx512bw,avx512vbmi2,popcnt")
static Py_ssize_t fdk_relax_value_avx512(const unsigned char *b, Py_ssize_t i, Py_ssize_t e, unsigned char *out)
{
    const __m512i sp = _mm512_set1_epi8(' '), tab = _mm512_set1_epi8('\t');
    const __m512i cr = _mm512_set1_epi8('\r'), lf = _mm512_set1_epi8('\n');
    Py_ssize_t p = i, o = 0;
    unsigned long long carry = 0;  /* a CR ended the previous block */
    while (p < e) {
        Py_ssize_t left = e - p;
        __mmask64 in = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
        __mmask64 in_x = left > 64 ? ~(__mmask64)0 : (((__mmask64)1 << (left - 1)) - 1);
        __m512i c = _mm512_maskz_loadu_epi8(in, (const void *)(b + p));
        __m512i x = _mm512_maskz_loadu_epi8(in_x, (const void *)(b + p + 1));
        __mmask64 wsp = _mm512_cmpeq_epi8_mask(c, sp) | _mm512_cmpeq_epi8_mask(c, tab);
        __mmask64 crs = _mm512_cmpeq_epi8_mask(c, cr), lfs = _mm512_cmpeq_epi8_mask(c, lf);
        __mmask64 xwsp = _mm512_cmpeq_epi8_mask(x, sp) | _mm512_cmpeq_epi8_mask(x, tab);
        __mmask64 xblank = xwsp | _mm512_cmpeq_epi8_mask(x, cr) | _mm512_cmpeq_epi8_mask(x, lf);
        __mmask64 blank = wsp | crs | lfs, keep;
        int kept;
        /* every CR before a LF, every LF after a CR and before SP or HTAB */
        if ((crs & ~_mm512_cmpeq_epi8_mask(x, lf)) || (lfs & ~xwsp) || (lfs != (((crs << 1) | carry) & in)))
            return -1;
        carry = crs >> 63;
        keep = (~blank | ~xblank) & in;
        c = _mm512_mask_blend_epi8(blank, c, sp);
        kept = (int)_mm_popcnt_u64(keep);
        _mm512_mask_storeu_epi8((void *)(out + o), kept == 64 ? ~(__mmask64)0 : (((__mmask64)1 << kept) - 1),
                                _mm512_maskz_compress_epi8(keep, c));
        o += kept;
        p += 64;
    }
    return o;
}
#endif /* FDK_DISPATCH */

/* Relaxed line content from the content octet b[i] on the live path: see
   fdk_relaxed_impl() (the block paths end on content, so *pseg is the
   returned position; where they cannot start, the sse2 path serves).  clean:
   see fdk_relaxed_ssse3(). */
static Py_ssize_t fdk_relaxed(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int mode,
                              unsigned char *out, Py_ssize_t win, Py_ssize_t clean,
                              Py_ssize_t *pw, Py_ssize_t *pseg)
{
    const int path = fdk_path;
#if defined(FDK_DISPATCH)
    if (path >= FDK_PATH_SSSE3) {
        const int bare_lf = (mode & FDK_BARE_LF) != 0;
        Py_ssize_t k = path == FDK_PATH_AVX512 ? fdk_relaxed_avx512(b, i, n, bare_lf, out, win, clean, pw)
                       : path == FDK_PATH_AVX2 ? fdk_relaxed_avx2(b, i, n, bare_lf, out, win, clean, pw)
                       : fdk_relaxed_ssse3(b, i, n, bare_lf, out, win, clean, pw);
        if (k > i + 1) {
            *pseg = k;
            return k;
        }
    }
#endif
    if (path == FDK_PATH_SCALAR) {
        if (mode & FDK_BARE_LF)
            return fdk_relaxed_impl(b, i, n, FDK_RELAXED | FDK_BARE_LF, out, win, pw, pseg, 0);
        return fdk_relaxed_impl(b, i, n, FDK_RELAXED, out, win, pw, pseg, 0);
    }
    if (mode & FDK_BARE_LF)
        return fdk_relaxed_impl(b, i, n, FDK_RELAXED | FDK_BARE_LF, out, win, pw, pseg, 1);
    return fdk_relaxed_impl(b, i, n, FDK_RELAXED, out, win, pw, pseg, 1);
}

/* Verbatim runs of simple canonicalization with bare_lf. */
static Py_ssize_t fdk_run_copy_bare(const unsigned char *b, Py_ssize_t i, Py_ssize_t n,
                                    unsigned char *out, Py_ssize_t win)
{
    if (fdk_path == FDK_PATH_SCALAR)
        return fdk_run_copy_impl(b, i, n, FDK_BARE_LF, out, win, 0);
    return fdk_run_copy_impl(b, i, n, FDK_BARE_LF, out, win, 1);
}

/* Where the verbatim run of relaxed canonicalization (mode: FDK_RELAXED,
   with FDK_BARE_LF or not) starting at the content octet b[i] ends: the
   first p > i with an HTAB, a SP before an octet <= SP, a bare LF with
   bare_lf, or a CR or SP at the chunk end; or n.  Scans only (out, with
   room for 16 octets, is scratch space). */
static Py_ssize_t fdk_run_end_relaxed(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int mode,
                                      unsigned char *out)
{
    const int path = fdk_path;
#if defined(FDK_DISPATCH)
    if (path == FDK_PATH_AVX512)
        return fdk_run_end_avx512(b, i, n, (mode & FDK_BARE_LF) != 0);
    if (path >= FDK_PATH_AVX2)
        return fdk_run_end_avx2(b, i, n, (mode & FDK_BARE_LF) != 0);
#endif
    if (mode & FDK_BARE_LF)
        return path ? fdk_run_copy_impl(b, i, n, FDK_RELAXED | FDK_BARE_LF, out, 0, 1)
                    : fdk_run_copy_impl(b, i, n, FDK_RELAXED | FDK_BARE_LF, out, 0, 0);
    return path ? fdk_run_copy_impl(b, i, n, FDK_RELAXED, out, 0, 1)
                : fdk_run_copy_impl(b, i, n, FDK_RELAXED, out, 0, 0);
}

static Py_ssize_t fdk_skip_wsp(const unsigned char *b, Py_ssize_t i, Py_ssize_t n)
{
    if (fdk_path == FDK_PATH_SCALAR)
        return fdk_skip_wsp_impl(b, i, n, 0);
    return fdk_skip_wsp_impl(b, i, n, 1);
}

/* The first index >= i holding a CR or a LF, or n.  vec: use SSE2. */
FDK_INLINE Py_ssize_t fdk_find_cr_lf_impl(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int vec)
{
#if defined(FDK_SSE2)
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    while (vec && i + 16 <= n) {
        __m128i c = _mm_loadu_si128((const __m128i *)(b + i));
        int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(c, cr), _mm_cmpeq_epi8(c, lf)));
        if (mask)
            return i + fdk_ctz(mask);
        i += 16;
    }
#endif
    while (i < n && b[i] != '\r' && b[i] != '\n')
        i++;
    return i;
}

/* The end of the run of ftext octets (33 to 126 but the colon: what a
   field name is made of) that starts at b[i]: the first index >= i holding
   another octet, or n.  vec: use SSE2 (signed compares: octets above 127
   read as negative, below 33). */
FDK_INLINE Py_ssize_t fdk_name_end_impl(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int vec)
{
#if defined(FDK_SSE2)
    const __m128i lo = _mm_set1_epi8(33), hi = _mm_set1_epi8(126), colon = _mm_set1_epi8(':');
    while (vec && i + 16 <= n) {
        __m128i c = _mm_loadu_si128((const __m128i *)(b + i));
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(c, lo), _mm_cmpgt_epi8(c, hi)),
                                   _mm_cmpeq_epi8(c, colon));
        int mask = _mm_movemask_epi8(bad);
        if (mask)
            return i + fdk_ctz(mask);
        i += 16;
    }
#endif
    while (i < n && b[i] >= 33 && b[i] <= 126 && b[i] != ':')
        i++;
    return i;
}

/* A hash of the name b[:n] that is the same for names equal when
   lower-cased: a cheap first test before two names are compared octet by
   octet.  Eight octets at a time, each with 0x20 set (which maps A-Z to
   a-z, and a few other pairs onto each other: the hash is only a filter);
   the same on every path. */
static unsigned int fdk_name_hash(const unsigned char *b, Py_ssize_t n)
{
    const unsigned long long fold = 0x2020202020202020ull, mul = 0x9E3779B97F4A7C15ull;
    unsigned long long h = (unsigned long long)n * mul, w;
    while (n >= 8) {
        memcpy(&w, b, 8);
        h = (h ^ (w | fold)) * mul;
        h ^= h >> 29;
        b += 8;
        n -= 8;
    }
    if (n > 0) {  /* (octet by octet: a call to memcpy costs more than a short tail) */
        int k;
        w = 0;
        for (k = 0; k < (int)n; k++)
            w |= (unsigned long long)b[k] << (8 * k);
        h = (h ^ (w | fold)) * mul;
        h ^= h >> 29;
    }
    return (unsigned int)(h ^ (h >> 32));
}

/* Copy the run of octets above SP (no SP, control octet or line break)
   that starts at b[i] to out; return where it ends (the first index >= i
   holding an octet <= SP, or n).  vec: use SSE2. */
FDK_INLINE Py_ssize_t fdk_copy_dense_impl(const unsigned char *b, Py_ssize_t i, Py_ssize_t n,
                                          unsigned char *out, int vec)
{
    Py_ssize_t p = i;
#if defined(FDK_SSE2)
    const __m128i sp = _mm_set1_epi8(' ');
    while (vec && p + 16 <= n) {
        __m128i c = _mm_loadu_si128((const __m128i *)(b + p));
        int mask = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(c, sp), c));  /* c <= SP */
        _mm_storeu_si128((__m128i *)(out + (p - i)), c);
        if (mask)
            return p + fdk_ctz(mask);
        p += 16;
    }
#endif
    while (p < n && b[p] > ' ') {
        out[p - i] = b[p];
        p++;
    }
    return p;
}

/* fdk_copy_dense_impl() on the live path; out needs room for the run and
   16 octets more (whole 16-octet blocks are stored). */
static Py_ssize_t fdk_copy_dense(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, unsigned char *out)
{
    if (fdk_path == FDK_PATH_SCALAR)
        return fdk_copy_dense_impl(b, i, n, out, 0);
    return fdk_copy_dense_impl(b, i, n, out, 1);
}

/* Whether the live path has fdk_relax_value_avx512(). */
static int fdk_has_relax_value(void)
{
    return fdk_path == FDK_PATH_AVX512;
}

/* fdk_relax_value_avx512() on the avx512 path; -1 on any other (the
   caller's octet loop serves). */
static Py_ssize_t fdk_relax_value(const unsigned char *b, Py_ssize_t i, Py_ssize_t e, unsigned char *out)
{
#if defined(FDK_DISPATCH)
    if (fdk_path == FDK_PATH_AVX512)
        return fdk_relax_value_avx512(b, i, e, out);
#endif
    (void)b; (void)i; (void)e; (void)out;
    return -1;
}

/* Write k CRLFs at p. */
static void fdk_fill_crlf(unsigned char *p, Py_ssize_t k)
{
    Py_ssize_t done = 2, total = 2 * k, c;
    if (k <= 0)
        return;
    p[0] = '\r';
    p[1] = '\n';
    while (done < total) {
        c = total - done < done ? total - done : done;
        memcpy(p + done, p, (size_t)c);
        done += c;
    }
}

/* ---------------------------------------------------------------------------
   The header index (HeaderIndex.__init__): every field of a header block as
   offsets, one pass over the block (the loop is _index.h's). */

typedef struct {
    Py_ssize_t *at;          /* per field: start, end, name start, name end */
    unsigned int *hash;      /* per field: fdk_name_hash() of the name */
    Py_ssize_t count, cap;   /* fields, room */
    Py_ssize_t body;         /* a whole message: where the body starts, or -1 */
    Py_ssize_t bare;         /* the first bare CR or LF of the header lines, or -1 */
    Py_ssize_t bad;          /* the first line neither a field nor a continuation, or -1 */
} fdk_index_t;

/* Record the field whose first line is b[fs:fe] and whole text b[fs:end];
   named: its name b[ns:ne] (hash name_hash) is known, else it is what
   split_header_fields takes (up to the first colon, without SP or HTAB
   around).  -1: out of memory. */
FDK_INLINE int fdk_index_add(fdk_index_t *ix, const unsigned char *b, Py_ssize_t fs, Py_ssize_t fe,
                             Py_ssize_t end, int named, Py_ssize_t ns, Py_ssize_t ne, unsigned int name_hash)
{
    Py_ssize_t *a;
    if (ix->count == ix->cap) {
        Py_ssize_t *grown = (Py_ssize_t *)realloc(ix->at, (size_t)ix->cap * 8 * sizeof(Py_ssize_t));
        unsigned int *grown_hash;
        if (grown == NULL)
            return -1;
        ix->at = grown;
        grown_hash = (unsigned int *)realloc(ix->hash, (size_t)ix->cap * 2 * sizeof(unsigned int));
        if (grown_hash == NULL)
            return -1;
        ix->hash = grown_hash;
        ix->cap *= 2;
    }
    if (!named) {
        const unsigned char *p = (const unsigned char *)memchr(b + fs, ':', (size_t)(fe - fs));
        ns = ne = fs;
        if (p != NULL) {
            ne = p - b;
            while (ns < ne && (b[ns] == ' ' || b[ns] == '\t'))
                ns++;
            while (ne > ns && (b[ne - 1] == ' ' || b[ne - 1] == '\t'))
                ne--;
        }
        name_hash = fdk_name_hash(b + ns, ne - ns);
    }
    a = ix->at + 4 * ix->count;
    a[0] = fs;
    a[1] = end;
    a[2] = ns;
    a[3] = ne;
    ix->hash[ix->count++] = name_hash;
    return 0;
}

/* Where a scan for the line that starts before j stopped, at j (a CR or LF,
   or n): 1 if the line ends there (at n, or at a CRLF), else 0, j noted as
   the first bare CR or LF if none was before. */
FDK_INLINE int fdk_line_stop(const unsigned char *b, Py_ssize_t j, Py_ssize_t n, Py_ssize_t *bare)
{
    if (j >= n || (b[j] == '\r' && j + 1 < n && b[j + 1] == '\n'))
        return 1;
    if (*bare < 0)
        *bare = j;
    return 0;
}

/* The line scanner of the scalar and sse2 paths (see _index.h): a scan for
   the name, then one for each CR or LF up to the first CRLF. */
FDK_INLINE Py_ssize_t fdk_line_impl(const unsigned char *b, Py_ssize_t ls, Py_ssize_t n, Py_ssize_t *q,
                                    Py_ssize_t *bare, int vec)
{
    Py_ssize_t j = ls;
    *q = fdk_name_end_impl(b, ls, n, vec);
    while (!fdk_line_stop(b, j = fdk_find_cr_lf_impl(b, j, n, vec), n, bare))
        j++;
    return j;  /* (at most n) */
}

#define fdk_line_scalar(b, ls, n, q, bare) fdk_line_impl(b, ls, n, q, bare, 0)
#define fdk_line_sse2(b, ls, n, q, bare) fdk_line_impl(b, ls, n, q, bare, 1)

#define FDK_INDEX_FN fdk_index_scalar
#define FDK_INDEX_ATTR static
#define FDK_INDEX_LINE fdk_line_scalar
#include "_index.h"

#define FDK_INDEX_FN fdk_index_sse2
#define FDK_INDEX_ATTR static
#define FDK_INDEX_LINE fdk_line_sse2
#include "_index.h"

#if defined(FDK_DISPATCH)
/* fdk_find_cr_lf_impl() 32 octets at a time. */
FDK_TARGET_INLINE("avx2") Py_ssize_t fdk_find_cr_lf_avx2(const unsigned char *b, Py_ssize_t i, Py_ssize_t n)
{
    const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n');
    while (i + 32 <= n) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(b + i));
        unsigned mask = (unsigned)_mm256_movemask_epi8(_mm256_or_si256(_mm256_cmpeq_epi8(c, cr),
                                                                       _mm256_cmpeq_epi8(c, lf)));
        if (mask)
            return i + fdk_ctz(mask);
        i += 32;
    }
    return fdk_find_cr_lf_impl(b, i, n, 0);
}

/* The line scanner of the avx2 path: fdk_line_impl() with the line's end
   found 32 octets at a time. */
FDK_TARGET_INLINE("avx2") Py_ssize_t fdk_line_avx2(const unsigned char *b, Py_ssize_t ls, Py_ssize_t n,
                                                  Py_ssize_t *q, Py_ssize_t *bare)
{
    Py_ssize_t j = ls;
    *q = fdk_name_end_impl(b, ls, n, 1);
    while (!fdk_line_stop(b, j = fdk_find_cr_lf_avx2(b, j, n), n, bare))
        j++;
    return j;  /* (at most n) */
}

#define FDK_INDEX_FN fdk_index_avx2
#define FDK_INDEX_ATTR FDK_TARGET("avx2") static
#define FDK_INDEX_LINE fdk_line_avx2
#include "_index.h"

#endif /* FDK_DISPATCH */

/* Index the header block b[:n] (whole: b is a whole message, whose header
   block ends at its first empty line) into ix on the live path; ix->at and
   ix->hash hold room for ix->cap fields, and count, body, bare and bad are
   0, -1, -1, -1.  Returns 0, or -1 when out of memory, -2 when the block
   has more than limit fields (ix->at and ix->hash stay the caller's to
   free, whatever the outcome). */
static int fdk_index_block(const unsigned char *b, Py_ssize_t n, int whole, Py_ssize_t limit, fdk_index_t *ix)
{
    if (fdk_path == FDK_PATH_SCALAR)
        return fdk_index_scalar(b, n, whole, limit, ix);
#if defined(FDK_DISPATCH)
    if (fdk_path >= FDK_PATH_AVX2)  /* (a 64-octet scan, tried, was slower on lines this short) */
        return fdk_index_avx2(b, n, whole, limit, ix);
#endif
    return fdk_index_sse2(b, n, whole, limit, ix);
}

#endif /* FASTDKIM_KERNELS_H */
