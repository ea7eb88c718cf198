# The body state machine (RFC 6376 sections 3.4.3 and 3.4.4): ``canon_t``,
# the engine that canonicalizes into a caller's buffer (resumable anywhere)
# and its end-of-body step, the whole-output-in-one-bytes driver, and the
# choice of kernel path (FASTDKIM_SIMD).
# Part of _canon.pyx (included there).

cdef extern from "_kernels.h":
    enum:
        FDK_PATHS
    int fdk_path
    const char *fdk_path_names[]
    int fdk_path_init() noexcept nogil
    int fdk_path_by_name(const char *name) noexcept nogil


# The kernel path (see _kernels.h): the best this CPU runs, unless
# FASTDKIM_SIMD names another (read once, here).
cdef int _best_path = fdk_path_init()


def _path_names(int best):
    """The names of the paths 0..best."""
    return tuple(fdk_path_names[k].decode("ascii") for k in range(best + 1))


#: The kernel paths this CPU can run, slowest first.
SIMD_PATHS = _path_names(_best_path)


def _use_simd(name):
    """Make the kernel path ``name`` (one of :data:`SIMD_PATHS`) live; return the previous one.

    For tests and benchmarks: every path gives the same results.

    :raises ValueError: ``name`` is not a path this CPU can run.
    """
    global SIMD, fdk_path
    cdef int k = fdk_path_by_name(name.encode("ascii", "replace")) if isinstance(name, str) else -1
    if k < 0 or k > _best_path:
        raise ValueError("SIMD path must be one of %s, not %r" % (", ".join(SIMD_PATHS), name))
    prev = SIMD
    fdk_path = k
    SIMD = SIMD_PATHS[k]
    return prev


def _simd_from_env(value):
    """The path FASTDKIM_SIMD asks for: a path this CPU cannot run gives the best it
    can below it; an unknown name (or none) the best there is, with a warning for
    an unknown one."""
    if not value:
        return SIMD_PATHS[_best_path]
    cdef int k = fdk_path_by_name(value.strip().lower().encode("ascii", "replace"))
    if k < 0:
        import warnings
        warnings.warn("FASTDKIM_SIMD=%r is none of %s; using %s"
                      % (value, ", ".join(fdk_path_names[j].decode("ascii") for j in range(FDK_PATHS)),
                         SIMD_PATHS[_best_path]), RuntimeWarning, stacklevel=2)
        return SIMD_PATHS[_best_path]
    return SIMD_PATHS[min(k, _best_path)]


#: The live kernel path: "avx512", "avx2", "ssse3", "sse2" or "scalar".
SIMD = SIMD_PATHS[_best_path]
_use_simd(_simd_from_env(__import__("os").environ.get("FASTDKIM_SIMD", "")))

# engine results
cdef enum:
    _DONE = 0
    _FULL = 1  # the output buffer needs room (for at least *aux more octets)
    _RUN = 2   # a verbatim run b[*aux:*pi] awaits the caller

cdef enum:
    _BLOCK = 131072      # BodyHasher output block
    _ZC_MIN = 16384      # verbatim runs this long are hashed in place
    _PIPE_SLICE = 131072 # BodyHasher with a hashing thread: input taken this much at a time,
    _REF_MIN = 262144    # and its runs hashed in place in update()s of this size or more
    _PIPE_EARLY_SLICE = 16384  # (the first few slices of a body: see fdk_pipe_early)
    _COPY_WIN = 4096     # octets of a run copied while it is scanned
    _RUN_CLEAN = 4096    # relaxed, hashing: verbatim octets after which the line kernel stops

cdef Py_ssize_t _NO_ZC = PY_SSIZE_T_MAX


ctypedef struct canon_t:
    int relaxed
    int bare_lf
    int cr        # a CR ended the input so far: its LF may come next
    int wsp       # relaxed: a WSP run is pending on the current line
    int midline   # content of the current line was emitted
    int emitted   # some canonical octet was produced
    uint64_t pending  # empty lines held back (dropped if nothing follows)


cdef inline void _canon_init(canon_t *s, bint relaxed, bint bare_lf) noexcept nogil:
    """The state at the start of a body."""
    s.relaxed = 1 if relaxed else 0
    s.bare_lf = 1 if bare_lf else 0
    s.cr = 0
    s.wsp = 0
    s.midline = 0
    s.emitted = 0
    s.pending = 0


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
    cdef int mode = (FDK_RELAXED if st.relaxed else 0) | (FDK_BARE_LF if st.bare_lf else 0)
    cdef int r = _DONE
    # relaxed, when hashing: look for a verbatim run to hash in place first
    cdef bint try_run = zc_min != _NO_ZC
    cdef Py_ssize_t clean = _RUN_CLEAN if try_run else 0
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
            if try_run:
                # Hashing: a long verbatim run (no HTAB, no WSP run, no line
                # end after a SP) is hashed in place, the rest goes through
                # the line kernel.
                k = fdk_run_end_relaxed(b, i, n, mode, out + o)
                while k - i >= 2 and b[k - 1] == _LF and b[k - 2] == _CR:
                    k -= 2
                if k - i >= zc_min:
                    st.midline = 1
                    st.emitted = 1
                    aux[0] = i
                    i = k
                    r = _RUN
                    break
                try_run = 0
            k = fdk_relaxed(b, i, n, mode, out + o, win, clean, &ln, &seg)
            # The line kernel stops after a stretch of clean octets (when
            # hashing): a long verbatim run may start there.
            try_run = clean != 0 and ln >= clean
            # End on line content: held-back CRLFs and a CR or WSP whose
            # meaning depends on what follows go back to the state machine
            # (a LF not after CR is content, unless bare_lf: the walk stops
            # there, or a run of them would be walked back again and again).
            while k - 1 > seg and (b[k - 1] == _CR or b[k - 1] == _SP or b[k - 1] == _TAB
                                   or (b[k - 1] == _LF and (st.bare_lf or b[k - 2] == _CR))):
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
