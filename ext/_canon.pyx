# cython: language_level=3
"""Compiled canonicalization core: the fast twin of ``fastdkim._canon_py``.

Same names, same behaviour, byte for byte; ``fastdkim._canon_py`` is the
specification and the property tests hold the two together.

Body canonicalization is a small state machine whose whole state is a few C
integers (a pending CR, a pending WSP run, a mid-line flag and a 64-bit count of
held-back empty lines), carried across chunks exactly like the pure version, so
chunk boundaries may fall anywhere.  The loops run without the GIL and never
handle ordinary octets one at a time: a vector scan (SSE2 on x86-64, a plain
loop elsewhere) finds the next octet where the canonical form can differ from
the input, and the stretch before it is copied with whole 16-octet stores
(relaxed: reducing each inner WSP run to one SP on the way) or, for simple
canonicalization, handed to the hash straight from the caller's buffer.
``BodyHasher`` canonicalizes into one reused block buffer and hashes each
filled block with a single ``hashlib.sha256().update`` call (which releases the
GIL itself); held-back CRLFs, however many, go through that buffer in pieces.
The body itself is never kept: memory is bounded by the block size.
"""
from cpython.buffer cimport PyBUF_READ, PyBUF_SIMPLE, PyBuffer_Release, PyObject_CheckBuffer, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize, _PyBytes_Resize
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.object cimport PyObject
from cpython.number cimport PyNumber_Index
from cpython.ref cimport Py_XDECREF, Py_XINCREF
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memcpy

import hashlib

__all__ = [
    "BodyCanonicalizer",
    "BodyHasher",
    "canonicalize_body",
    "relaxed_header",
    "find_body_start",
    "split_header_fields",
    "bare_line_break",
    "bad_field_line",
    "normalize_line_endings",
    "parse_tag_list",
    "parse_signature",
    "b64decode",
    "header_hash_input",
    "canonical_headers",
    "fold_base64",
]

cdef extern from "Python.h":
    char *_bytes_str "PyBytes_AS_STRING" (PyObject *o)
    const Py_ssize_t PY_SSIZE_T_MAX


cdef extern from *:
    """
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
        if (c == '\\r')
            return p + 1 == n;              /* its LF may start the next chunk */
        if (mode & FDK_RELAXED) {
            if (c == '\\t')
                return 1;
            if (c == ' ')
                return p + 1 == n || b[p + 1] <= 0x20;
        }
        if (c == '\\n' && (mode & FDK_BARE_LF))
            return b[p - 1] != '\\r';
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
            m = _mm_or_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('\\t')),
                    _mm_and_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8(' ')),
                                  _mm_cmpeq_epi8(_mm_min_epu8(nx, _mm_set1_epi8(0x20)), nx)));
        }
        if (mode & FDK_BARE_LF) {
            __m128i pv = _mm_loadu_si128((const __m128i *)(q - 1));
            m = _mm_or_si128(m, _mm_andnot_si128(_mm_cmpeq_epi8(pv, _mm_set1_epi8('\\r')),
                                                 _mm_cmpeq_epi8(c, _mm_set1_epi8('\\n'))));
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
        if (i >= n || (b[i] != ' ' && b[i] != '\\t'))
            return i;                       /* a single blank: the common case */
    #if defined(FDK_SSE2)
        while (i + 16 <= n) {
            __m128i c = _mm_loadu_si128((const __m128i *)(b + i));
            int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8(' ')),
                                                      _mm_cmpeq_epi8(c, _mm_set1_epi8('\\t'))));
            if (mask != 0xFFFF)
                return i + fdk_ctz(~mask & 0xFFFF);
            i += 16;
        }
    #endif
        while (i < n && (b[i] == ' ' || b[i] == '\\t'))
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
            if (c != ' ' && c != '\\t')
                break;
            e = fdk_skip_wsp_impl(b, p + 1, n);
            if (e >= n || b[e] == '\\r' || ((mode & FDK_BARE_LF) && b[e] == '\\n'))
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
        p[0] = '\\r';
        p[1] = '\\n';
        while (done < total) {
            c = total - done < done ? total - done : done;
            memcpy(p + done, p, (size_t)c);
            done += c;
        }
    }
    """
    Py_ssize_t fdk_run_copy_bare(const unsigned char *b, Py_ssize_t i, Py_ssize_t n,
                                 unsigned char *out, Py_ssize_t win) noexcept nogil
    Py_ssize_t fdk_skip_wsp(const unsigned char *b, Py_ssize_t i, Py_ssize_t n) noexcept nogil
    void fdk_fill_crlf(unsigned char *p, Py_ssize_t k) noexcept nogil
    Py_ssize_t fdk_relaxed(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int mode,
                           unsigned char *out, Py_ssize_t win, Py_ssize_t *pw, Py_ssize_t *pseg) noexcept nogil


# ---------------------------------------------------------------------------
# The body state machine.

cdef enum:
    _CR = 13
    _LF = 10
    _SP = 32
    _TAB = 9

# engine results
cdef enum:
    _DONE = 0
    _FULL = 1  # the output buffer needs room (for at least *aux more octets)
    _RUN = 2   # a verbatim run b[*aux:*pi] awaits the caller

cdef enum:
    _BLOCK = 131072      # BodyHasher output block
    _ZC_MIN = 16384      # verbatim runs this long are hashed in place
    _NOGIL_MIN = 8192    # inputs this long are processed without the GIL
    _COPY_WIN = 4096     # octets of a run copied while it is scanned

cdef Py_ssize_t _NO_ZC = PY_SSIZE_T_MAX


ctypedef struct canon_t:
    int relaxed
    int bare_lf
    int cr        # a CR ended the input so far: its LF may come next
    int wsp       # relaxed: a WSP run is pending on the current line
    int midline   # content of the current line was emitted
    int emitted   # some canonical octet was produced
    uint64_t pending  # empty lines held back (dropped if nothing follows)


cdef inline int _eol(canon_t *s, unsigned char *out, Py_ssize_t cap, Py_ssize_t *po) noexcept nogil:
    """A line ends: a line with content gets its CRLF, an empty one is held back.

    Returns 0, changing nothing, when the CRLF does not fit (call again with room)."""
    cdef Py_ssize_t o = po[0]
    if s.midline:
        if cap - o < 2:
            return 0
        out[o] = _CR
        out[o + 1] = _LF
        po[0] = o + 2
        s.midline = 0
    else:
        s.pending += 1
    s.wsp = 0  # trailing whitespace is ignored
    return 1


cdef inline int _prefix(canon_t *s, unsigned char *out, Py_ssize_t cap, Py_ssize_t *po) noexcept nogil:
    """Emit what precedes new line content: held-back CRLFs, then a pending SP.

    Returns 0 when the buffer filled first (the CRLFs written so far are
    committed and counted off; call again with room)."""
    cdef Py_ssize_t o = po[0]
    cdef uint64_t k
    if s.pending:
        k = <uint64_t>((cap - o) >> 1)
        if k > s.pending:
            k = s.pending
        if k:
            fdk_fill_crlf(out + o, <Py_ssize_t>k)
            o += <Py_ssize_t>(2 * k)
            s.pending -= k
            s.emitted = 1
        if s.pending:
            po[0] = o
            return 0
    if s.wsp:
        if o >= cap:
            po[0] = o
            return 0
        out[o] = _SP
        o += 1
        s.wsp = 0
        s.emitted = 1
    po[0] = o
    return 1


cdef int _engine(canon_t *s, const unsigned char *b, Py_ssize_t n, Py_ssize_t *pi,
                 unsigned char *out, Py_ssize_t cap, Py_ssize_t *po,
                 Py_ssize_t zc_min, Py_ssize_t *aux) noexcept nogil:
    """Canonicalize b[*pi:n] into out[*po:cap].

    Returns _DONE (input consumed), _FULL (room for *aux more octets needed:
    flush or grow, then call again) or _RUN (the verbatim run b[*aux:*pi], at
    least zc_min long, is output that the caller must emit after out[:*po]).
    Every return leaves a consistent state: calls may resume anywhere."""
    cdef canon_t st = s[0]  # a local copy stays in registers
    cdef Py_ssize_t i = pi[0]
    cdef Py_ssize_t o = po[0]
    cdef Py_ssize_t k, ln, win, seg
    cdef unsigned char c
    cdef int mode = (1 if st.relaxed else 0) | (2 if st.bare_lf else 0)
    cdef int r = _DONE
    while i < n:
        c = b[i]
        if st.cr:
            if c == _LF:
                if not _eol(&st, out, cap, &o):
                    aux[0] = 2
                    r = _FULL
                    break
                st.cr = 0
                i += 1
                continue
            # a CR not followed by LF is line content
            if not _prefix(&st, out, cap, &o) or o >= cap:
                aux[0] = 2
                r = _FULL
                break
            out[o] = _CR
            o += 1
            st.cr = 0
            st.midline = 1
            st.emitted = 1
            continue  # look at c again
        if c == _CR:
            st.cr = 1
            i += 1
            continue
        if c == _LF and st.bare_lf:
            if not _eol(&st, out, cap, &o):
                aux[0] = 2
                r = _FULL
                break
            i += 1
            continue
        if st.relaxed and (c == _SP or c == _TAB):
            st.wsp = 1
            i = fdk_skip_wsp(b, i + 1, n)
            continue
        # Line content: a verbatim run starts here.
        if not _prefix(&st, out, cap, &o):
            aux[0] = 2
            r = _FULL
            break
        if st.relaxed:
            win = cap - o - 16
            if win < 1:
                aux[0] = 32
                r = _FULL
                break
            k = fdk_relaxed(b, i, n, mode, out + o, win, &ln, &seg)
            # End on line content: held-back CRLFs and a CR or WSP whose
            # meaning depends on what follows go back to the state machine.
            while k - 1 > seg and (b[k - 1] == _CR or b[k - 1] == _LF or b[k - 1] == _SP or b[k - 1] == _TAB):
                k -= 1
                ln -= 1
            o += ln
            i = k
            st.midline = 1
            st.emitted = 1
            continue
        if not st.bare_lf:
            # simple: everything up to a final CR is verbatim
            k = n - 1 if b[n - 1] == _CR else n
            win = 0
        else:
            win = cap - o - 16
            if win < 1:
                aux[0] = 32
                r = _FULL
                break
            if win > _COPY_WIN:
                win = _COPY_WIN
            k = fdk_run_copy_bare(b, i, n, out + o, win)
        # Held-back CRLFs must stay out of the run: end it on content.
        while k - i >= 2 and b[k - 1] == _LF and b[k - 2] == _CR:
            k -= 2
        ln = k - i
        if ln > win:  # not (entirely) copied yet
            if ln >= zc_min:
                st.midline = 1
                st.emitted = 1
                aux[0] = i
                i = k
                r = _RUN
                break
            if cap - o < ln + 16:
                aux[0] = ln + 16
                r = _FULL
                break
            memcpy(out + o + win, b + i + win, <size_t>(ln - win))
        o += ln
        i = k
        st.midline = 1
        st.emitted = 1
    s[0] = st
    pi[0] = i
    po[0] = o
    return r


cdef int _engine_finish(canon_t *s, unsigned char *out, Py_ssize_t cap, Py_ssize_t *po,
                        Py_ssize_t *aux) noexcept nogil:
    """End of body: _DONE, or _FULL (make room, call again)."""
    cdef Py_ssize_t o = po[0]
    if s.cr:  # a lone CR at the very end is line content
        if not _prefix(s, out, cap, &o) or o >= cap:
            aux[0] = 2
            po[0] = o
            return _FULL
        out[o] = _CR
        o += 1
        s.cr = 0
        s.midline = 1
        s.emitted = 1
    if s.midline:  # last line lacked its CRLF: add it
        if cap - o < 2:
            aux[0] = 2
            po[0] = o
            return _FULL
        out[o] = _CR
        out[o + 1] = _LF
        o += 2
        s.midline = 0
    if not s.relaxed and not s.emitted:  # simple: an empty body is a single CRLF
        if cap - o < 2:
            aux[0] = 2
            po[0] = o
            return _FULL
        out[o] = _CR
        out[o + 1] = _LF
        o += 2
        s.emitted = 1
    s.wsp = 0
    s.pending = 0
    po[0] = o
    return _DONE


cdef int _get_buffer(object data, Py_buffer *view) except -1:
    """Acquire a contiguous byte view of any bytes-like object."""
    try:
        PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    except BufferError:
        if not PyObject_CheckBuffer(data):
            raise
        # e.g. a non-contiguous memoryview: use a contiguous copy
        PyObject_GetBuffer(memoryview(data).tobytes(), view, PyBUF_SIMPLE)
    return 0


cdef bytes _canon_bytes(canon_t *s, const unsigned char *b, Py_ssize_t n, bint final):
    """Canonicalize b[:n] (then, if final, end the body) into a new bytes object."""
    cdef Py_ssize_t cap, i = 0, o = 0, aux = 0, newcap
    cdef int r
    cdef PyObject *raw = NULL
    cdef unsigned char *out
    cdef bint nogil_ = n >= _NOGIL_MIN
    cdef object res
    # Upper bound without held-back lines: a bare LF doubles; 32 covers a
    # carried CR, a pending SP and the slack of the 16-octet stores.  Held-back
    # CRLFs are reserved when cheap, otherwise room is made when (and if)
    # content releases them.
    if n > (PY_SSIZE_T_MAX >> 2):
        raise MemoryError()
    cap = (2 * n if s.bare_lf else n) + 32
    if s.pending <= <uint64_t>(n + 64):
        cap += <Py_ssize_t>(2 * s.pending)
    res = PyBytes_FromStringAndSize(NULL, cap)
    raw = <PyObject *>res
    Py_XINCREF(raw)
    res = None
    try:
        while True:
            out = <unsigned char *>_bytes_str(raw)
            if i < n:
                if nogil_:
                    with nogil:
                        r = _engine(s, b, n, &i, out, cap, &o, _NO_ZC, &aux)
                else:
                    r = _engine(s, b, n, &i, out, cap, &o, _NO_ZC, &aux)
            elif final:
                r = _engine_finish(s, out, cap, &o, &aux)
                if r == _DONE:
                    break
            else:
                break
            if r == _FULL:
                newcap = cap * 2 if cap <= (PY_SSIZE_T_MAX >> 2) else PY_SSIZE_T_MAX
                if newcap < o + aux + 64:
                    newcap = o + aux + 64
                _PyBytes_Resize(&raw, newcap)
                cap = newcap
        if o != cap:
            _PyBytes_Resize(&raw, o)
    except BaseException:
        Py_XDECREF(raw)
        raise
    res = <object>raw
    Py_XDECREF(raw)
    return res


# ---------------------------------------------------------------------------

cdef class BodyCanonicalizer:
    """Streaming body canonicalizer.

    ``update(chunk)`` returns the canonical bytes that are final so far;
    ``finish()`` returns the rest.  The concatenation of all returned pieces is
    the canonical body, whatever the chunk boundaries.

    :param relaxed: relaxed (section 3.4.4) instead of simple (3.4.3).
    :param bare_lf: treat a LF not preceded by CR as a line ending (CRLF), for
        messages stored with Unix line endings.
    """

    cdef canon_t _s
    cdef bint _done
    cdef bint _busy

    def __init__(self, relaxed, bare_lf=False):
        if self._busy:
            raise RuntimeError("BodyCanonicalizer used from two threads at once")
        self._s.relaxed = 1 if relaxed else 0
        self._s.bare_lf = 1 if bare_lf else 0
        self._s.cr = 0
        self._s.wsp = 0
        self._s.midline = 0
        self._s.emitted = 0
        self._s.pending = 0
        self._done = False
        self._busy = False

    @property
    def relaxed(self):
        return bool(self._s.relaxed)

    @property
    def bare_lf(self):
        return bool(self._s.bare_lf)

    cdef int _enter(self) except -1:
        if self._busy:
            raise RuntimeError("BodyCanonicalizer used from two threads at once")
        self._busy = True
        return 0

    def update(self, data):
        if self._done:
            raise ValueError("update() after finish()")
        cdef Py_buffer view
        _get_buffer(data, &view)
        try:
            if view.len == 0:
                return b""
            self._enter()
            try:
                return _canon_bytes(&self._s, <const unsigned char *>view.buf, view.len, False)
            finally:
                self._busy = False
        finally:
            PyBuffer_Release(&view)

    def finish(self):
        if self._done:
            return b""
        self._enter()
        try:
            res = _canon_bytes(&self._s, NULL, 0, True)
            self._done = True
            return res
        finally:
            self._busy = False


cdef class BodyHasher:
    """Canonicalize a body and hash it with SHA-256, streaming.

    :param relaxed: relaxed body canonicalization instead of simple.
    :param limit: hash only the first ``limit`` canonical octets (the ``l=``
        tag); ``None`` hashes all.
    :param bare_lf: treat bare LF as CRLF.

    ``length`` is the number of canonical octets produced (all of them, not
    just those hashed); after ``digest()`` it is the canonical body length, so
    ``length > limit`` says the body extended past ``l=``.
    """

    cdef canon_t _s
    cdef object _hash
    cdef object _hupdate
    cdef object _limit
    cdef bint _has_limit
    cdef uint64_t _lim
    cdef uint64_t _length   # canonical octets produced
    cdef uint64_t _fed      # octets given to the hash
    cdef unsigned char *_buf
    cdef Py_ssize_t _o      # octets waiting in _buf
    cdef object _digest
    cdef bint _busy

    def __cinit__(self, *args, **kwargs):
        self._buf = <unsigned char *>malloc(_BLOCK)
        if self._buf == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self._buf)

    def __init__(self, relaxed, limit=None, bare_lf=False):
        if self._busy:
            raise RuntimeError("BodyHasher used from two threads at once")
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        self._s.relaxed = 1 if relaxed else 0
        self._s.bare_lf = 1 if bare_lf else 0
        self._s.cr = 0
        self._s.wsp = 0
        self._s.midline = 0
        self._s.emitted = 0
        self._s.pending = 0
        self._hash = hashlib.sha256()
        self._hupdate = self._hash.update
        self._limit = limit
        self._has_limit = limit is not None
        if self._has_limit:
            lim = PyNumber_Index(limit)
            self._lim = <uint64_t>lim if lim < 0x7FFFFFFFFFFFFFFF else <uint64_t>0x7FFFFFFFFFFFFFFF
        else:
            self._lim = 0
        self._length = 0
        self._fed = 0
        self._o = 0
        self._digest = None
        self._busy = False

    @property
    def relaxed(self):
        return bool(self._s.relaxed)

    @property
    def limit(self):
        return self._limit

    @property
    def length(self):
        return self._length

    @property
    def hashed(self):
        if self._has_limit and self._length > self._lim:
            return self._lim
        return self._length

    cdef int _hash_mem(self, const unsigned char *p, Py_ssize_t n) except -1:
        """Hash p[:n], or the part of it within the limit."""
        cdef uint64_t room
        if self._has_limit:
            if self._fed >= self._lim:
                return 0
            room = self._lim - self._fed
            if <uint64_t>n > room:
                n = <Py_ssize_t>room
        if n <= 0:
            return 0
        self._hupdate(PyMemoryView_FromMemory(<char *>p, n, PyBUF_READ))
        self._fed += <uint64_t>n
        return 0

    cdef int _flush(self) except -1:
        cdef Py_ssize_t o = self._o
        self._o = 0
        if o:
            self._hash_mem(self._buf, o)
        return 0

    cdef int _process(self, const unsigned char *b, Py_ssize_t n) except -1:
        cdef Py_ssize_t i = 0, o, o0, aux = 0
        cdef int r
        cdef bint nogil_ = n >= _NOGIL_MIN
        while True:
            o = self._o
            o0 = o
            if nogil_:
                with nogil:
                    r = _engine(&self._s, b, n, &i, self._buf, _BLOCK, &o, _ZC_MIN, &aux)
            else:
                r = _engine(&self._s, b, n, &i, self._buf, _BLOCK, &o, _ZC_MIN, &aux)
            self._o = o
            self._length += <uint64_t>(o - o0)
            if r == _DONE:
                return 0
            self._flush()
            if r == _RUN:
                self._length += <uint64_t>(i - aux)
                self._hash_mem(b + aux, i - aux)

    def update(self, data):
        if self._digest is not None:
            raise ValueError("update() after digest()")
        cdef Py_buffer view
        _get_buffer(data, &view)
        try:
            if view.len == 0:
                return None
            if self._busy:
                raise RuntimeError("BodyHasher used from two threads at once")
            self._busy = True
            try:
                self._process(<const unsigned char *>view.buf, view.len)
            finally:
                self._busy = False
        finally:
            PyBuffer_Release(&view)
        return None

    def digest(self):
        cdef Py_ssize_t o, o0, aux = 0
        cdef int r
        if self._digest is None:
            if self._busy:
                raise RuntimeError("BodyHasher used from two threads at once")
            self._busy = True
            try:
                while True:
                    o = self._o
                    o0 = o
                    r = _engine_finish(&self._s, self._buf, _BLOCK, &o, &aux)
                    self._o = o
                    self._length += <uint64_t>(o - o0)
                    self._flush()
                    if r == _DONE:
                        break
                self._digest = self._hash.digest()
            finally:
                self._busy = False
        return self._digest


def canonicalize_body(data, relaxed, bare_lf=False):
    """Canonicalize a whole body at once."""
    cdef canon_t s
    cdef Py_buffer view
    s.relaxed = 1 if relaxed else 0
    s.bare_lf = 1 if bare_lf else 0
    s.cr = 0
    s.wsp = 0
    s.midline = 0
    s.emitted = 0
    s.pending = 0
    _get_buffer(data, &view)
    try:
        return _canon_bytes(&s, <const unsigned char *>view.buf, view.len, True)
    finally:
        PyBuffer_Release(&view)


# ---------------------------------------------------------------------------
# Header helpers.

cdef inline unsigned char _lower(unsigned char c) noexcept nogil:
    return c + 32 if 65 <= c <= 90 else c


cdef Py_ssize_t _relax_into(const unsigned char *b, Py_ssize_t n, unsigned char *t,
                            unsigned char *out) noexcept nogil:
    """Relaxed canonical form of the field b[:n] written to out (room for n + 2
    octets), using t (room for n octets) as scratch; returns the length."""
    cdef Py_ssize_t i = 0, m = 0, colon = -1, ne, vs, ve, j
    cdef bint in_ws = False
    cdef unsigned char c
    # Unfold (drop every CRLF) and reduce each WSP run to one SP.
    while i < n:
        c = b[i]
        if c == _CR and i + 1 < n and b[i + 1] == _LF:
            i += 2
            continue
        if c == _SP or c == _TAB:
            if not in_ws:
                t[m] = _SP
                m += 1
                in_ws = True
        else:
            if c == 58 and colon < 0:  # ':'
                colon = m
            t[m] = c
            m += 1
            in_ws = False
        i += 1
    # name (no trailing SP, lower case) ':' value (no SP around) CRLF
    ne = colon if colon >= 0 else m
    while ne > 0 and t[ne - 1] == _SP:
        ne -= 1
    for j in range(ne):
        out[j] = _lower(t[j])
    j = ne
    if colon >= 0:
        vs = colon + 1
        ve = m
        while vs < ve and t[vs] == _SP:
            vs += 1
        while ve > vs and t[ve - 1] == _SP:
            ve -= 1
        out[j] = 58
        j += 1
        memcpy(out + j, t + vs, <size_t>(ve - vs))
        j += ve - vs
    out[j] = _CR
    out[j + 1] = _LF
    return j + 2


def relaxed_header(field):
    """Relaxed header canonicalization (section 3.4.2) of one raw field.

    ``field`` is the field as it appears in the message, ``Name: value`` with
    any folding and with or without its final CRLF.  The result is
    ``name:value`` followed by CRLF.
    """
    cdef Py_buffer view
    cdef unsigned char stackbuf[1024]
    cdef unsigned char *t = stackbuf
    cdef Py_ssize_t n, k
    _get_buffer(field, &view)
    try:
        n = view.len
        if 2 * n + 2 > 1024:
            t = <unsigned char *>malloc(<size_t>(2 * n + 2))
            if t == NULL:
                raise MemoryError()
        k = _relax_into(<const unsigned char *>view.buf, n, t, t + n)
        return PyBytes_FromStringAndSize(<const char *>(t + n), k)
    finally:
        if t != stackbuf:
            free(t)
        PyBuffer_Release(&view)


cdef Py_ssize_t _count_bare_lf(const unsigned char *b, Py_ssize_t n) noexcept nogil:
    cdef const unsigned char *p
    cdef Py_ssize_t i = 0, bare = 0
    while i < n:
        p = <const unsigned char *>memchr(b + i, _LF, <size_t>(n - i))
        if p == NULL:
            break
        i = p - b
        if i == 0 or b[i - 1] != _CR:
            bare += 1
        i += 1
    return bare


cdef void _fill_normalized(const unsigned char *b, Py_ssize_t n, unsigned char *out) noexcept nogil:
    cdef const unsigned char *p
    cdef Py_ssize_t i = 0, o = 0, start = 0, seg
    while i < n:
        p = <const unsigned char *>memchr(b + i, _LF, <size_t>(n - i))
        if p == NULL:
            break
        i = p - b
        if i == 0 or b[i - 1] != _CR:
            seg = i - start
            memcpy(out + o, b + start, <size_t>seg)
            o += seg
            out[o] = _CR
            out[o + 1] = _LF
            o += 2
            start = i + 1
        i += 1
    memcpy(out + o, b + start, <size_t>(n - start))


def normalize_line_endings(data):
    """Replace every LF not preceded by CR with CRLF."""
    cdef Py_buffer view
    cdef const unsigned char *b
    cdef unsigned char *out
    cdef Py_ssize_t n, bare
    cdef bytes res
    _get_buffer(data, &view)
    try:
        b = <const unsigned char *>view.buf
        n = view.len
        if n >= _NOGIL_MIN:
            with nogil:
                bare = _count_bare_lf(b, n)
        else:
            bare = _count_bare_lf(b, n)
        if bare == 0:
            if type(data) is bytes:
                return data
            return PyBytes_FromStringAndSize(<const char *>b, n)
        res = PyBytes_FromStringAndSize(NULL, n + bare)
        out = <unsigned char *>_bytes_str(<PyObject *>res)
        if n >= _NOGIL_MIN:
            with nogil:
                _fill_normalized(b, n, out)
        else:
            _fill_normalized(b, n, out)
        return res
    finally:
        PyBuffer_Release(&view)


cdef Py_ssize_t _body_start(const unsigned char *b, Py_ssize_t n, bint lf) noexcept nogil:
    cdef const unsigned char *p
    cdef Py_ssize_t i = 0
    if n >= 2 and b[0] == _CR and b[1] == _LF:
        return 2
    if lf and n >= 1 and b[0] == _LF:
        return 1
    while i < n:
        p = <const unsigned char *>memchr(b + i, _LF, <size_t>(n - i))
        if p == NULL:
            break
        i = p - b
        # b[i] is a LF: does an empty line follow it?
        if lf:
            if i + 1 < n and b[i + 1] == _LF:
                return i + 2
            if i + 2 < n and b[i + 1] == _CR and b[i + 2] == _LF:
                return i + 3
        elif i >= 1 and b[i - 1] == _CR and i + 2 < n and b[i + 1] == _CR and b[i + 2] == _LF:
            return i + 3
        i += 1
    return -1


def find_body_start(data, bare_lf=False):
    """Offset of the first body octet, or -1 if the header block is unfinished.

    The header block ends at the first empty line.  With ``bare_lf`` a bare LF
    also ends a line.  A message that starts with an empty line has no headers.
    """
    cdef Py_buffer view
    cdef Py_ssize_t res
    cdef bint lf = True if bare_lf else False
    _get_buffer(data, &view)
    try:
        if view.len >= _NOGIL_MIN:
            with nogil:
                res = _body_start(<const unsigned char *>view.buf, view.len, lf)
        else:
            res = _body_start(<const unsigned char *>view.buf, view.len, lf)
        return res
    finally:
        PyBuffer_Release(&view)


def split_header_fields(block, max_fields=None):
    """Split a CRLF header block into ``(name, raw)`` pairs, top to bottom.

    ``name`` is the field name lower-cased, without surrounding whitespace
    (``b""`` for a line with no colon, which then matches no ``h=`` entry);
    ``raw`` is the field exactly as in the block, folding and final CRLF
    included.  A line that starts with WSP continues the field above it.
    The block may lack the final CRLF.

    :param max_fields: the most fields accepted; ``None``: no limit.
    :raises ValueError: the block has more than ``max_fields`` fields (found
        when the first field past the limit starts, before it is built).
    """
    cdef Py_buffer view
    cdef const unsigned char *b
    cdef const unsigned char *p
    cdef Py_ssize_t n, ls, le, nxt, fs = 0, fe = 0, ns, ne, j
    cdef Py_ssize_t limit = PY_SSIZE_T_MAX
    cdef bint have = False
    cdef list out = []
    cdef bytes name
    cdef unsigned char *q
    if max_fields is not None:
        limit = PyNumber_Index(max_fields)
        if limit < 0:
            raise ValueError("max_fields must be >= 0")
    _get_buffer(block, &view)
    try:
        b = <const unsigned char *>view.buf
        n = view.len
        ls = 0
        # Each line is b[ls:le]; nxt is where the next line starts (after its
        # CRLF), or n for an unterminated last line.
        while ls < n:
            j = ls
            le = n
            nxt = n
            while j < n:
                p = <const unsigned char *>memchr(b + j, _LF, <size_t>(n - j))
                if p == NULL:
                    break
                j = p - b
                if j > ls and b[j - 1] == _CR:
                    le = j - 1
                    nxt = j + 1
                    break
                j += 1
            if have and le > ls and (b[ls] == _SP or b[ls] == _TAB):
                pass  # continuation of the field above
            else:
                if have:
                    out.append(_field(b, fs, fe, ls))
                if len(out) >= limit:
                    raise ValueError("more than %d header fields" % limit)
                have = True
                fs = ls
                fe = le
            ls = nxt
        if have:
            out.append(_field(b, fs, fe, n))
        return out
    finally:
        PyBuffer_Release(&view)


cdef Py_ssize_t _bare_cr(const unsigned char *b, Py_ssize_t n) noexcept nogil:
    """Offset of the first CR of b[:n] not followed by LF, or -1."""
    cdef const unsigned char *p
    cdef Py_ssize_t i = 0
    while i < n:
        p = <const unsigned char *>memchr(b + i, _CR, <size_t>(n - i))
        if p == NULL:
            return -1
        i = p - b
        if i + 1 >= n or b[i + 1] != _LF:
            return i
        i += 2
    return -1


cdef Py_ssize_t _bare_lf(const unsigned char *b, Py_ssize_t n) noexcept nogil:
    """Offset of the first LF of b[:n] not preceded by CR, or -1."""
    cdef const unsigned char *p
    cdef Py_ssize_t i = 0
    while i < n:
        p = <const unsigned char *>memchr(b + i, _LF, <size_t>(n - i))
        if p == NULL:
            return -1
        i = p - b
        if i == 0 or b[i - 1] != _CR:
            return i
        i += 1
    return -1


cdef Py_ssize_t _bare_break(const unsigned char *b, Py_ssize_t n, bint lf_ok) noexcept nogil:
    cdef Py_ssize_t cr = _bare_cr(b, n), lf
    if lf_ok:
        return cr
    lf = _bare_lf(b, n if cr < 0 else cr)  # only a bare LF before the bare CR comes first
    return cr if lf < 0 else lf


def bare_line_break(data, lf_ok):
    """Offset of the first bare CR in ``data`` or, unless ``lf_ok``, of the
    first bare CR or bare LF; -1 if there is none.

    A bare CR is a CR not followed by LF (a CR that ends ``data`` is bare); a
    bare LF is a LF not preceded by CR (a LF that starts ``data`` is bare).
    RFC 5322 section 2.2 allows CR and LF in a header block only together, as
    CRLF; ``lf_ok`` accepts bare LF as a line ending (mail stored with Unix
    line endings).
    """
    cdef Py_buffer view
    cdef Py_ssize_t res
    cdef bint ok = True if lf_ok else False
    _get_buffer(data, &view)
    try:
        if view.len >= _NOGIL_MIN:
            with nogil:
                res = _bare_break(<const unsigned char *>view.buf, view.len, ok)
        else:
            res = _bare_break(<const unsigned char *>view.buf, view.len, ok)
        return res
    finally:
        PyBuffer_Release(&view)


cdef inline bint _ftext(unsigned char c) noexcept nogil:
    return 33 <= c <= 126 and c != 58


cdef Py_ssize_t _bad_line(const unsigned char *b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t p = 0, q
    cdef const unsigned char *nl
    while p < n:
        if not (p > 0 and (b[p] == _SP or b[p] == _TAB)):  # not a continuation line: name ":"
            q = p
            while q < n and _ftext(b[q]):
                q += 1
            if q == p or q >= n or b[q] != 58:
                return p
        nl = <const unsigned char *>memchr(b + p, 10, <size_t>(n - p))
        if nl == NULL:
            return -1
        p = (nl - b) + 1
    return -1


def bad_field_line(block):
    """Offset of the first line of the CRLF header block ``block`` that is
    neither a header field (a name of printable US-ASCII other than ``:``,
    then ``:``, RFC 5322 section 2.2) nor a continuation line (starting with
    SP or HTAB, after the first line); -1 if every line is one of those.

    Parsers disagree about such lines (Python's ``email`` ends the header
    block at the first of them), so a verifier must not trust a block with one.
    """
    cdef Py_buffer view
    cdef Py_ssize_t res
    _get_buffer(block, &view)
    try:
        if view.len >= _NOGIL_MIN:
            with nogil:
                res = _bad_line(<const unsigned char *>view.buf, view.len)
        else:
            res = _bad_line(<const unsigned char *>view.buf, view.len)
        return res
    finally:
        PyBuffer_Release(&view)


cdef tuple _field(const unsigned char *b, Py_ssize_t fs, Py_ssize_t fe, Py_ssize_t end):
    """(name, raw) for the field whose first line is b[fs:fe] and raw b[fs:end]."""
    cdef const unsigned char *p = <const unsigned char *>memchr(b + fs, 58, <size_t>(fe - fs))
    cdef Py_ssize_t ns = fs, ne, j
    cdef bytes name
    cdef unsigned char *q
    if p == NULL:
        name = b""
    else:
        ne = p - b
        while ns < ne and (b[ns] == _SP or b[ns] == _TAB):
            ns += 1
        while ne > ns and (b[ne - 1] == _SP or b[ne - 1] == _TAB):
            ne -= 1
        name = PyBytes_FromStringAndSize(NULL, ne - ns)
        q = <unsigned char *>_bytes_str(<PyObject *>name)
        for j in range(ne - ns):
            q[j] = _lower(b[ns + j])
    return (name, PyBytes_FromStringAndSize(<const char *>(b + fs), end - fs))


# -- tag-lists and the header hash input ---------------------------------------------


cdef inline bint _is_fws(unsigned char c) noexcept nogil:
    return c == _SP or c == _TAB or c == _CR or c == _LF


def _short(b, limit=40):
    s = bytes(b).decode("ascii", "backslashreplace")
    return repr(s if len(s) <= limit else s[:limit] + "...")


# Tag names seen before, already checked: signatures repeat the same dozen.
cdef dict _tag_names = {}


cdef dict _parse_tags(const unsigned char *b, Py_ssize_t n, Py_ssize_t max_tags,
                      Py_ssize_t *b_start, Py_ssize_t *b_end):
    """The tag-list b[0:n] as {name: value}; where the b= value lies
    (from after its "=" up to its ";" or the end: what section 3.7 empties)."""
    cdef Py_ssize_t i = 0, j, eq, ns, ne, vs, ve, k
    cdef unsigned char c
    cdef bint ok
    cdef dict tags = {}
    cdef bytes raw
    while i <= n:
        j = i
        eq = -1
        while j < n and b[j] != 59:  # ';'
            if eq < 0 and b[j] == 61:  # '='
                eq = j
            j += 1
        if eq < 0:
            ns = i
            ne = j
            while ns < ne and _is_fws(b[ns]):
                ns += 1
            while ne > ns and _is_fws(b[ne - 1]):
                ne -= 1
            if ne > ns:
                raise ValueError("tag without '=': %s" % _short(PyBytes_FromStringAndSize(<const char *>(b + ns), ne - ns)))
        else:
            ns = i
            ne = eq
            while ns < ne and _is_fws(b[ns]):
                ns += 1
            while ne > ns and _is_fws(b[ne - 1]):
                ne -= 1
            raw = PyBytes_FromStringAndSize(<const char *>(b + ns), ne - ns)
            name = _tag_names.get(raw)
            if name is None:
                ok = ne > ns and ((65 <= b[ns] <= 90) or (97 <= b[ns] <= 122))
                k = ns + 1
                while ok and k < ne:
                    c = b[k]
                    ok = (65 <= c <= 90) or (97 <= c <= 122) or (48 <= c <= 57) or c == 95
                    k += 1
                if not ok:
                    raise ValueError("invalid tag name %s" % _short(raw))
                name = raw.decode("ascii")
                if len(_tag_names) < 512:
                    _tag_names[raw] = name
            if name in tags:
                raise ValueError("duplicate tag %s=" % name)
            if len(tags) >= max_tags:
                raise ValueError("more than %d tags" % max_tags)
            if ne - ns == 1 and b[ns] == 98:  # 'b'
                b_start[0] = eq + 1
                b_end[0] = j
            vs = eq + 1
            ve = j
            while vs < ve and _is_fws(b[vs]):
                vs += 1
            while ve > vs and _is_fws(b[ve - 1]):
                ve -= 1
            tags[name] = PyBytes_FromStringAndSize(<const char *>(b + vs), ve - vs)
        i = j + 1
    if not tags:
        raise ValueError("empty tag-list")
    return tags


def parse_tag_list(data, Py_ssize_t max_tags=1024):
    """Parse a tag-list (RFC 6376 section 3.2) into ``{name: value}``.

    Specs are separated by ``;``; whitespace (SP, HTAB, CR, LF) around names,
    ``=`` and values is dropped; an empty spec is skipped.

    :raises ValueError: a spec without ``=``, an invalid tag name, a duplicate
        tag, more than ``max_tags`` tags, or no tag at all.
    """
    cdef Py_buffer view
    cdef Py_ssize_t bs = -1, be = -1
    _get_buffer(data, &view)
    try:
        return _parse_tags(<const unsigned char *>view.buf, view.len, max_tags, &bs, &be)
    finally:
        PyBuffer_Release(&view)


def parse_signature(field, Py_ssize_t max_tags=1024):
    """Split a ``DKIM-Signature`` field (name, colon, tag-list) into its tags
    and the field with the ``b=`` value deleted (section 3.7: everything
    between its ``=`` and the next ``;`` or the end, whitespace included).

    Without a ``b=`` tag the field comes back unchanged.

    :raises ValueError: the field has no colon, or the tag-list is invalid
        (see :func:`parse_tag_list`).
    """
    cdef bytes raw = bytes(field)
    cdef const unsigned char *b = <const unsigned char *>_bytes_str(<PyObject *>raw)
    cdef Py_ssize_t n = len(raw), bs = -1, be = -1, off
    cdef const unsigned char *p = <const unsigned char *>memchr(b, 58, <size_t>n)
    cdef unsigned char *q
    cdef bytes unsigned_field
    if p == NULL:
        raise ValueError("not a header field: no colon")
    off = p - b + 1
    tags = _parse_tags(b + off, n - off, max_tags, &bs, &be)
    if bs < 0:
        return tags, raw
    bs += off
    be += off
    unsigned_field = PyBytes_FromStringAndSize(NULL, n - (be - bs))
    q = <unsigned char *>_bytes_str(<PyObject *>unsigned_field)
    memcpy(q, b, <size_t>bs)
    memcpy(q + bs, b + be, <size_t>(n - be))
    return tags, unsigned_field


# base64 alphabet (RFC 4648 section 4): value, or one of these markers
cdef enum:
    _B64_BAD = -1
    _B64_FWS = -2
    _B64_PAD = -3

cdef signed char _b64_table[256]


cdef const char *_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


cdef void _init_b64_table():
    cdef int c
    for c in range(256):
        _b64_table[c] = _B64_BAD
    for c in range(64):
        _b64_table[<unsigned char>_B64_ALPHABET[c]] = c
    _b64_table[_SP] = _B64_FWS
    _b64_table[_TAB] = _B64_FWS
    _b64_table[_CR] = _B64_FWS
    _b64_table[_LF] = _B64_FWS
    _b64_table[61] = _B64_PAD


_init_b64_table()


def b64decode(value):
    """Decode a base64 tag value (``b=``, ``bh=``, ``p=``), ignoring whitespace.

    Strict: only the RFC 4648 alphabet, the length (without whitespace) a
    multiple of four, ``=`` padding only at the end and at most two of it.

    :raises ValueError: the value is not such base64.
    """
    cdef Py_buffer view
    cdef const unsigned char *b
    cdef Py_ssize_t n, i, o = 0
    cdef unsigned int acc = 0
    cdef int nacc = 0, pad = 0, v
    cdef bytes out
    cdef unsigned char *q
    _get_buffer(value, &view)
    try:
        b = <const unsigned char *>view.buf
        n = view.len
        out = PyBytes_FromStringAndSize(NULL, (n // 4) * 3 + 3)
        q = <unsigned char *>_bytes_str(<PyObject *>out)
        for i in range(n):
            v = _b64_table[b[i]]
            if v >= 0:
                if pad:
                    raise ValueError("malformed base64 value")
                acc = (acc << 6) | <unsigned int>v
                nacc += 1
                if nacc == 4:
                    q[o] = <unsigned char>(acc >> 16)
                    q[o + 1] = <unsigned char>(acc >> 8)
                    q[o + 2] = <unsigned char>acc
                    o += 3
                    nacc = 0
                    acc = 0
            elif v == _B64_PAD:
                pad += 1
                if nacc < 2 or nacc + pad > 4:
                    raise ValueError("malformed base64 value")
            elif v != _B64_FWS:
                raise ValueError("malformed base64 value")
        if pad:
            if nacc + pad != 4:
                raise ValueError("malformed base64 value")
            if nacc == 2:
                q[o] = <unsigned char>(acc >> 4)
                o += 1
            else:
                q[o] = <unsigned char>(acc >> 10)
                q[o + 1] = <unsigned char>(acc >> 2)
                o += 2
        elif nacc:
            raise ValueError("malformed base64 value")
    finally:
        PyBuffer_Release(&view)
    return out if o == len(out) else out[:o]


def header_hash_input(fields, names, own, relaxed):
    """The header part of the data a DKIM signature covers (section 3.7).

    For each name of ``names`` (lower-case, in ``h=`` order) the next instance
    of that field from the bottom of ``fields`` upwards, canonicalized; a name
    with no instance left contributes nothing.  Then ``own``, the signature's
    own field with its ``b=`` value emptied, canonicalized without its final
    CRLF.
    """
    cdef list fl = fields if type(fields) is list else list(fields)
    cdef list nl = names if type(names) is list else list(names)
    cdef list picked
    if len(nl) <= _SMALL_H and _plain_pairs(fl) and _all_bytes(nl):
        picked = _pick_small(fl, nl)
    else:
        picked = _pick_general(fl, nl)
    return _header_block(picked, bytes(own), relaxed)


cdef enum:
    _SMALL_H = 64  # h= lists up to this long are matched without hashing


cdef bint _plain_pairs(list fl):
    """Every item a (bytes, bytes) tuple: the form the fast selection reads directly."""
    cdef object item
    for item in fl:
        if type(item) is not tuple or len(<tuple>item) != 2 \
                or type((<tuple>item)[0]) is not bytes or type((<tuple>item)[1]) is not bytes:
            return False
    return True


cdef bint _all_bytes(list nl):
    cdef object n
    for n in nl:
        if type(n) is not bytes:
            return False
    return True


cdef list _pick_small(list fl, list nl):
    """The selection of header_hash_input with C arrays: each field name is
    compared with the few distinct h= names (no hashing, no dicts), and each
    distinct name keeps a chain of its fields from the bottom up."""
    cdef Py_ssize_t nf = len(fl), nn = len(nl), nd = 0, i, j, g, ln
    cdef int group[_SMALL_H]      # h= entry -> distinct name
    cdef int first[_SMALL_H]      # h= entry index of each distinct name
    cdef Py_ssize_t head[_SMALL_H]
    cdef Py_ssize_t *nxt
    cdef const char *a
    cdef bytes name, other
    cdef list picked = []
    for j in range(nn):
        name = <bytes>nl[j]
        ln = len(name)
        g = -1
        for i in range(nd):
            other = <bytes>nl[first[i]]
            if len(other) == ln and memcmp(_bytes_str(<PyObject *>other), _bytes_str(<PyObject *>name), <size_t>ln) == 0:
                g = i
                break
        if g < 0:
            g = nd
            first[nd] = <int>j
            head[nd] = -1
            nd += 1
        group[j] = <int>g
    if nd == 0:
        return picked
    nxt = <Py_ssize_t *>malloc(<size_t>(nf + 1) * sizeof(Py_ssize_t))
    if nxt == NULL:
        raise MemoryError()
    try:
        # Top to bottom, each field goes to the front of its name's chain, so
        # every chain runs from the bottom-most instance upwards.
        for i in range(nf):
            name = <bytes>(<tuple>fl[i])[0]
            ln = len(name)
            a = _bytes_str(<PyObject *>name)
            for g in range(nd):
                other = <bytes>nl[first[g]]
                if len(other) == ln and memcmp(_bytes_str(<PyObject *>other), a, <size_t>ln) == 0:
                    nxt[i] = head[g]
                    head[g] = i
                    break
        for j in range(nn):
            g = group[j]
            i = head[g]
            if i >= 0:
                picked.append((<tuple>fl[i])[1])
                head[g] = nxt[i]
    finally:
        free(nxt)
    return picked


cdef list _pick_general(list fl, list nl):
    cdef dict by_name = {}
    cdef list picked = []
    cdef list stack
    cdef set wanted = set(nl)
    for name, raw in fl:
        if name in wanted:
            stack = by_name.get(name)
            if stack is None:
                by_name[name] = [raw]
            else:
                stack.append(raw)
    for name in nl:
        stack = by_name.get(name)
        if stack:
            picked.append(stack.pop())
    return picked


def canonical_headers(fields, own, relaxed):
    """The raw header fields ``fields`` canonicalized and concatenated, then
    ``own`` (the signature field, ``b=`` empty) canonicalized without its
    final CRLF: the header data a signature covers, once the fields are chosen.
    """
    return _header_block(list(fields), bytes(own), relaxed)


cdef bytes _header_block(list picked, bytes own_b, relaxed):
    cdef bytes raw
    cdef Py_ssize_t i
    cdef bint rel = bool(relaxed)
    cdef Py_ssize_t total = 0, longest = 0, n, pos = 0
    cdef unsigned char *buf
    cdef unsigned char *t
    picked.append(own_b)
    for i in range(len(picked)):
        if type(picked[i]) is not bytes:
            picked[i] = bytes(picked[i])
        n = len(<bytes>picked[i])
        total += n + 2
        if n > longest:
            longest = n
    buf = <unsigned char *>malloc(<size_t>(total + longest + 1))
    if buf == NULL:
        raise MemoryError()
    t = buf + total
    try:
        for raw in picked:
            n = len(raw)
            if rel:
                pos += _relax_into(<const unsigned char *>_bytes_str(<PyObject *>raw), n, t, buf + pos)
            else:
                memcpy(buf + pos, _bytes_str(<PyObject *>raw), <size_t>n)
                pos += n
                if n < 2 or buf[pos - 2] != _CR or buf[pos - 1] != _LF:
                    buf[pos] = _CR
                    buf[pos + 1] = _LF
                    pos += 2
        # the signature's own field goes in without its final CRLF
        return PyBytes_FromStringAndSize(<const char *>buf, pos - 2)
    finally:
        free(buf)


def fold_base64(data, Py_ssize_t col, Py_ssize_t width=78):
    """The base64 of ``data`` as a folded tag value: the first line goes on
    after column ``col`` (left empty when fewer than 8 columns remain), the
    following lines start with one SP; no line passes ``width`` columns.
    Lines are separated by CRLF SP."""
    cdef Py_buffer view
    cdef const unsigned char *b
    cdef Py_ssize_t n, m, room, line, i, o = 0, k = 0, nl
    cdef unsigned int v
    cdef unsigned char *enc
    cdef unsigned char *q
    cdef bytes out
    if not 9 <= width <= 65536:
        raise ValueError("width must be from 9 to 65536")
    if not 0 <= col <= 65536:
        raise ValueError("col must be from 0 to 65536")
    _get_buffer(data, &view)
    try:
        b = <const unsigned char *>view.buf
        n = view.len
        m = ((n + 2) // 3) * 4
        line = width - 1
        room = width - col
        if room < 8:
            room = 0
        # line breaks: after the first `room` characters, then every `line`
        if m <= room:
            nl = 0
        else:
            nl = (m - room + line - 1) // line if room else (m + line - 1) // line
        enc = <unsigned char *>malloc(<size_t>(m + 1))
        if enc == NULL:
            raise MemoryError()
        try:
            i = 0
            while i + 3 <= n:
                v = (<unsigned int>b[i] << 16) | (<unsigned int>b[i + 1] << 8) | b[i + 2]
                enc[o] = _B64_ALPHABET[(v >> 18) & 63]
                enc[o + 1] = _B64_ALPHABET[(v >> 12) & 63]
                enc[o + 2] = _B64_ALPHABET[(v >> 6) & 63]
                enc[o + 3] = _B64_ALPHABET[v & 63]
                o += 4
                i += 3
            if n - i == 1:
                v = <unsigned int>b[i] << 16
                enc[o] = _B64_ALPHABET[(v >> 18) & 63]
                enc[o + 1] = _B64_ALPHABET[(v >> 12) & 63]
                enc[o + 2] = 61
                enc[o + 3] = 61
            elif n - i == 2:
                v = (<unsigned int>b[i] << 16) | (<unsigned int>b[i + 1] << 8)
                enc[o] = _B64_ALPHABET[(v >> 18) & 63]
                enc[o + 1] = _B64_ALPHABET[(v >> 12) & 63]
                enc[o + 2] = _B64_ALPHABET[(v >> 6) & 63]
                enc[o + 3] = 61
            out = PyBytes_FromStringAndSize(NULL, m + 3 * nl)
            q = <unsigned char *>_bytes_str(<PyObject *>out)
            o = 0
            i = 0
            k = room if room else 0
            if room == 0 and m:
                q[0] = _CR
                q[1] = _LF
                q[2] = _SP
                o = 3
                k = line
            while True:
                if k > m - i:
                    k = m - i
                memcpy(q + o, enc + i, <size_t>k)
                o += k
                i += k
                if i >= m:
                    break
                q[o] = _CR
                q[o + 1] = _LF
                q[o + 2] = _SP
                o += 3
                k = line
        finally:
            free(enc)
    finally:
        PyBuffer_Release(&view)
    return out
