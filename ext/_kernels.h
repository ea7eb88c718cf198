/* SIMD kernels of the compiled canonicalization core (fastdkim._canon).
 *
 * The body engine (_body.pxi) calls these to find, in one vector scan, the next
 * octet where the canonical form of a body can differ from the input, copying
 * the verbatim stretch before it on the way.  SSE2 on x86-64 (16 octets per
 * step; FASTDKIM_NO_SIMD turns it off), a plain loop elsewhere; both give the
 * same results.  Included once, by the module that Cython generates from
 * _canon.pyx, after Python.h.
 */
#ifndef FASTDKIM_KERNELS_H
#define FASTDKIM_KERNELS_H

#include <Python.h>
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
   win + 16 octets (whole 16-octet blocks are stored). */
FDK_INLINE Py_ssize_t fdk_run_copy_impl(const unsigned char *b, Py_ssize_t i, Py_ssize_t n,
                                        int mode, unsigned char *out, Py_ssize_t win)
{
    Py_ssize_t p = i + 1;
    out[0] = b[i];
#if defined(FDK_SSE2)
    {
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

/* First index >= i that is neither SP nor HTAB, or n. */
FDK_INLINE Py_ssize_t fdk_skip_wsp_impl(const unsigned char *b, Py_ssize_t i, Py_ssize_t n)
{
    if (i >= n || (b[i] != ' ' && b[i] != '\t'))
        return i;                       /* a single blank: the common case */
#if defined(FDK_SSE2)
    while (i + 16 <= n) {
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
   there on, output and input agree octet for octet). */
FDK_INLINE Py_ssize_t fdk_relaxed_impl(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int mode,
                                       unsigned char *out, Py_ssize_t win,
                                       Py_ssize_t *pw, Py_ssize_t *pseg)
{
    Py_ssize_t p = i + 1, o = 1, seg = i, e;
    unsigned char c;
    out[0] = b[i];
    for (;;) {
#if defined(FDK_SSE2)
        {
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
        e = fdk_skip_wsp_impl(b, p + 1, n);
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

static Py_ssize_t fdk_relaxed(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int mode,
                              unsigned char *out, Py_ssize_t win, Py_ssize_t *pw, Py_ssize_t *pseg)
{
    if (mode & FDK_BARE_LF)
        return fdk_relaxed_impl(b, i, n, FDK_RELAXED | FDK_BARE_LF, out, win, pw, pseg);
    return fdk_relaxed_impl(b, i, n, FDK_RELAXED, out, win, pw, pseg);
}

/* Verbatim runs of simple canonicalization with bare_lf. */
static Py_ssize_t fdk_run_copy_bare(const unsigned char *b, Py_ssize_t i, Py_ssize_t n,
                                    unsigned char *out, Py_ssize_t win)
{
    return fdk_run_copy_impl(b, i, n, FDK_BARE_LF, out, win);
}

static Py_ssize_t fdk_skip_wsp(const unsigned char *b, Py_ssize_t i, Py_ssize_t n)
{
    return fdk_skip_wsp_impl(b, i, n);
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

#endif /* FASTDKIM_KERNELS_H */
