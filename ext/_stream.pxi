# The streaming body API over the engine of _body.pxi: BodyCanonicalizer
# (canonical bytes out), BodyHasher (canonical octets straight into a hash,
# through one reused block buffer) and canonicalize_body.
# Part of _canon.pyx (included there).

cdef extern from "_pipe.h":
    enum:
        FDK_PIPE_BLOCK
    ctypedef struct fdk_pipe_t:
        unsigned char *cur
        Py_ssize_t fill
        Py_ssize_t sent
    int fdk_pipe_load() noexcept
    unsigned long fdk_fork_generation() noexcept nogil
    fdk_pipe_t *fdk_pipe_get() noexcept nogil
    int fdk_pipe_usable(const fdk_pipe_t *p) noexcept nogil
    void fdk_pipe_publish(fdk_pipe_t *p, Py_ssize_t n, int next) noexcept nogil
    int fdk_pipe_early(const fdk_pipe_t *p) noexcept nogil
    uint64_t fdk_pipe_publish_ref(fdk_pipe_t *p, const unsigned char *at, Py_ssize_t n) noexcept nogil
    void fdk_pipe_drain(fdk_pipe_t *p, uint64_t want) noexcept nogil
    int fdk_pipe_finish(fdk_pipe_t *p, unsigned char *digest) noexcept nogil
    void fdk_pipe_put(fdk_pipe_t *p, int keep) noexcept nogil
    int fdk_pipe_kept() noexcept nogil
    void fdk_pipes_release() noexcept nogil


def _cpu_count():
    import os
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _pipe_min_from_env(value, cpus):
    """The first-update size from which a relaxed SHA-256 BodyHasher hashes on
    a second thread (see _pipe.h): 0 (never) with one CPU or with
    FASTDKIM_HASH_THREAD=0."""
    if cpus < 2 or (value or "").strip().lower() in ("0", "no", "off", "false"):
        return 0
    return _PIPE_MIN


cdef enum:
    _PIPE_MIN = 524288   # first update() this long: a large body, worth a hashing thread
    _PIPES_KEPT_MAX = 64 # hashing threads kept asleep for the next large bodies, at most

#: The CPUs this process may run on, and how many of them its hashers of large
#: bodies keep busy: a hasher with a thread of its own takes two, one hashing
#: inline one.  A new large body gets a thread only where that leaves none
#: short, so that threads hashing large bodies side by side never ask for more
#: cores than there are (each would then poll against the other's core).
cdef int _cores = _cpu_count()
cdef int _pipes_live = 0
cdef int _large_serial = 0
cdef unsigned long _counts_gen = 0   # the fdk_fork_generation() the counts are of


cdef inline void _counts_here() noexcept:
    """Start the counts afresh in a child of fork(): the hashers counted
    were the parent's."""
    global _counts_gen, _pipes_live, _large_serial
    cdef unsigned long g = fdk_fork_generation()
    if g != _counts_gen:
        _counts_gen = g
        _pipes_live = 0
        _large_serial = 0


def _hash_thread_load():
    """(hashers with a hashing thread, large bodies hashed inline) now; for tests."""
    return _pipes_live, _large_serial


def _hash_threads_kept():
    """Hashing threads kept asleep for the next large body now; for tests."""
    return fdk_pipe_kept()


def _release_kept_threads():
    """End the hashing threads kept for the next large body (the next one
    starts a thread again).  Run before every os.fork(): a child gets none
    of them anyway, and the parent forks as the one-threaded process it was
    before its first large body (Python warns of fork() in a process with
    other threads, and multiprocessing's choice of start method looks at
    the threads there are)."""
    with nogil:
        fdk_pipes_release()


if hasattr(__import__("os"), "register_at_fork"):
    __import__("os").register_at_fork(before=_release_kept_threads)


def _set_hash_thread_cores(n):
    """Set the number of CPUs the large-body count is held to; return the
    previous one.  For tests."""
    global _cores
    prev = _cores
    _cores = PyNumber_Index(n)
    return prev


try:
    import _hashlib  # noqa: F401  (hashlib's libcrypto is loaded before _pipe.h looks for it)
except ImportError:  # hashlib without OpenSSL: no hashing thread
    pass

#: The first ``update()`` of a relaxed SHA-256 ``BodyHasher`` this long (or
#: longer) starts a hashing thread; 0: never (one CPU, no OpenSSL to share
#: with hashlib, or ``FASTDKIM_HASH_THREAD=0`` at import).
cdef Py_ssize_t _pipe_min = 0 if fdk_pipe_load() != 0 else _pipe_min_from_env(
    __import__("os").environ.get("FASTDKIM_HASH_THREAD"), _cores)
HASH_THREAD_MIN = _pipe_min


def _set_hash_thread_min(n):
    """Set the first-update size that starts a hashing thread (0: never);
    return the previous one.  For tests and benchmarks.

    :raises ValueError: ``n`` is negative, or positive where no hashing thread
        can run (no OpenSSL shared with hashlib, or no threads).
    """
    global _pipe_min, HASH_THREAD_MIN
    n = PyNumber_Index(n)
    if n < 0:
        raise ValueError("the size must be >= 0")
    if n and fdk_pipe_load() != 0:
        raise ValueError("no hashing thread can run here")
    prev = _pipe_min
    _pipe_min = n
    HASH_THREAD_MIN = n
    return prev


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
        _canon_init(&self._s, relaxed, bare_lf)
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


cdef inline void _pipe_push(fdk_pipe_t *p, uint64_t *fed, bint has_lim, uint64_t lim,
                            bint next=True) noexcept nogil:
    """Publish what the pipe's block holds and is not yet published, or the
    part of it within the limit; with next, go on in the next block."""
    cdef Py_ssize_t n = p.fill - p.sent
    if has_lim:
        if fed[0] >= lim:
            n = 0
        elif <uint64_t>n > lim - fed[0]:
            n = <Py_ssize_t>(lim - fed[0])
    fed[0] += <uint64_t>n
    fdk_pipe_publish(p, n, next)


cdef class BodyHasher:
    """Canonicalize a body and hash it (SHA-256 unless told), streaming.

    :param relaxed: relaxed body canonicalization instead of simple.
    :param limit: hash only the first ``limit`` canonical octets (the ``l=``
        tag); ``None`` hashes all.
    :param bare_lf: treat bare LF as CRLF.
    :param hash_name: ``"sha256"`` or ``"sha1"`` (``rsa-sha1``, RFC 6376
        section 3.3.1); the same canonical octets go to either.
    :raises ValueError: ``limit`` is negative or ``hash_name`` another name.

    ``length`` is the number of canonical octets produced (all of them, not
    just those hashed); after ``digest()`` it is the canonical body length, so
    ``length > limit`` says the body extended past ``l=``.

    A relaxed SHA-256 hasher whose first ``update()`` is at least
    ``HASH_THREAD_MIN`` octets (a large body) hashes on a second thread while
    the caller's thread canonicalizes the next block (``threaded`` says so),
    where the process's other large bodies leave a core free for it; the
    result is the same.  The thread is kept, asleep, for the process's next
    large body (as many as may run at once, up to 64, each with its 1 MiB
    ring; ended before ``os.fork()``).  Such a hasher cannot be carried on
    in a child of ``fork()`` (``RuntimeError``); a new one can.

    :raises RuntimeError: (``update``, ``digest``) used from two threads at
        once, or a threaded hasher used in a forked child.
    """

    cdef canon_t _s
    cdef object _hash
    cdef object _hupdate
    cdef str _hash_name
    cdef object _limit
    cdef bint _has_limit
    cdef uint64_t _lim
    cdef uint64_t _length   # canonical octets produced
    cdef uint64_t _fed      # octets given to the hash
    cdef unsigned char *_buf
    cdef Py_ssize_t _o      # octets waiting in _buf
    cdef object _digest
    cdef bint _busy
    cdef bint _begun        # update() was given octets
    cdef bint _pipe_ok      # relaxed SHA-256: a hashing thread may take the hash
    cdef bint _piped        # it does: _pipe holds the hash state
    cdef bint _large        # a large body hashed on the caller's thread (counted in _large_serial)
    cdef unsigned long _gen  # _counts_gen when it was counted
    cdef bint _failed       # the hashing thread's SHA-256 failed: no digest, ever
    cdef fdk_pipe_t *_pipe  # (NULL unless _piped)

    def __cinit__(self, *args, **kwargs):
        self._buf = <unsigned char *>malloc(_BLOCK)
        if self._buf == NULL:
            raise MemoryError()

    def __dealloc__(self):
        self._release()
        free(self._buf)

    cdef void _release(self) noexcept:
        """End this hasher's share of the process's large-body hashing: its
        hashing thread (joined) or its count as a large body hashed inline."""
        global _pipes_live, _large_serial
        _counts_here()
        cdef bint here = self._gen == _counts_gen
        if self._piped:
            # kept for the next large body: as many as may run at once
            fdk_pipe_put(self._pipe, min(_cores // 2, _PIPES_KEPT_MAX))
            self._pipe = NULL
            self._piped = False
            if here:
                _pipes_live -= 1
        if self._large:
            self._large = False
            if here:
                _large_serial -= 1

    def __init__(self, relaxed, limit=None, bare_lf=False, hash_name="sha256"):
        if self._busy:
            raise RuntimeError("BodyHasher used from two threads at once")
        # Every argument is checked before anything changes: a re-__init__
        # that raises leaves the hasher as it was.
        cdef uint64_t c_lim = 0
        cdef bint c_relaxed = relaxed, c_bare_lf = bare_lf
        if limit is not None:
            lim = PyNumber_Index(limit)
            if lim < 0:
                raise ValueError("limit must be >= 0")
            c_lim = <uint64_t>lim if lim < 0x7FFFFFFFFFFFFFFF else <uint64_t>0x7FFFFFFFFFFFFFFF
        # Only the hash object differs: every name is fed the same canonical
        # blocks from C, so SHA-256 keeps its path unchanged.
        if hash_name == "sha256":
            h = hashlib.sha256()
            name = "sha256"
        elif hash_name == "sha1":
            h = hashlib.sha1()
            name = "sha1"
        else:
            raise ValueError("hash_name must be 'sha256' or 'sha1', not %r" % (hash_name,))
        # (again: the checks above ran Python code, during which another
        # thread may have begun an update(); from here on none can, as
        # nothing below lets the GIL go until the hasher is reset)
        if self._busy:
            raise RuntimeError("BodyHasher used from two threads at once")
        self._hash_name = name
        _canon_init(&self._s, c_relaxed, c_bare_lf)
        self._release()
        self._begun = False
        self._failed = False
        self._pipe_ok = self._s.relaxed and self._hash_name == "sha256"
        self._hash = h
        self._hupdate = h.update
        self._limit = limit
        self._has_limit = limit is not None
        self._lim = c_lim
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
    def hash_name(self):
        return self._hash_name

    @property
    def length(self):
        return self._length

    @property
    def threaded(self):
        """True while a second thread hashes for this hasher (until ``digest()``)."""
        return bool(self._piped)

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

    cdef int _process_piped(self, const unsigned char *b, Py_ssize_t n) except -1:
        """_process with the hash on the pipe's thread: canonical octets go
        through the pipe's ring, and the verbatim runs that the one-thread
        path hashes in place are handed to the thread where they lie (it
        hashes them before this returns: the caller's buffer is not used
        after the call).  The input is taken _PIPE_SLICE octets at a time, so
        that the thread gets its first run of a chunk early.  An update()
        shorter than _REF_MIN copies its runs as before: waiting for the
        thread at its end would cost more than the copy, for pieces that
        small."""
        cdef Py_ssize_t i = 0, o, o0, aux = 0, end, span, take, k
        cdef int r
        cdef fdk_pipe_t *p = self._pipe
        cdef canon_t *st = &self._s
        cdef uint64_t length = self._length
        cdef uint64_t fed = self._fed
        cdef uint64_t lim = self._lim
        cdef uint64_t refs = 0  # entries published up to the last run handed over
        cdef bint has_lim = self._has_limit
        cdef bint by_ref = n >= _REF_MIN
        cdef bint early
        with nogil:
            while True:
                # (the body's first octets in short slices, each published at once)
                early = fdk_pipe_early(p) and not (has_lim and fed >= lim)
                # and each update()'s first octets in slices that double from
                # 16 KiB: after the wait at the end of the update before, the
                # thread has nothing to hash until the first slice is read
                span = _PIPE_EARLY_SLICE if early or i < _PIPE_EARLY_SLICE else (
                    i if i < _PIPE_SLICE else _PIPE_SLICE)
                end = n if n - i <= span else i + span
                o = p.fill
                o0 = o
                r = _engine(st, b, end, &i, p.cur, FDK_PIPE_BLOCK, &o, _ZC_MIN, &aux)
                p.fill = o
                length += <uint64_t>(o - o0)
                if r == _DONE:
                    if early and p.fill > p.sent:
                        _pipe_push(p, &fed, has_lim, lim, False)
                    if i >= n:
                        break
                elif r == _RUN:  # a run the one-thread path hashes in place
                    length += <uint64_t>(i - aux)
                    if by_ref:  # hashed in place there too
                        if p.fill > p.sent:
                            _pipe_push(p, &fed, has_lim, lim, False)  # (what comes before it first)
                        take = i - aux
                        if has_lim:
                            if fed >= lim:
                                take = 0
                            elif <uint64_t>take > lim - fed:
                                take = <Py_ssize_t>(lim - fed)
                        if take > 0:
                            fed += <uint64_t>take
                            refs = fdk_pipe_publish_ref(p, b + aux, take)
                    else:  # (a short update: the run copied through the ring)
                        k = aux
                        while k < i:
                            if p.fill == FDK_PIPE_BLOCK:
                                _pipe_push(p, &fed, has_lim, lim)
                            take = min(i - k, FDK_PIPE_BLOCK - p.fill)
                            memcpy(p.cur + p.fill, b + k, <size_t>take)
                            p.fill += take
                            k += take
                else:
                    _pipe_push(p, &fed, has_lim, lim)
            if refs:
                fdk_pipe_drain(p, refs)
        self._length = length
        self._fed = fed
        return 0

    cdef int _pipe_here(self) except -1:
        """Raise if the hashing thread failed, or is not in this process."""
        if self._failed:
            raise RuntimeError("SHA-256 failed in the hashing thread")
        if self._piped and not fdk_pipe_usable(self._pipe):
            raise RuntimeError("this BodyHasher cannot go on in a forked child: its hashing thread "
                               "stayed in the parent process")
        return 0

    cdef void _start_large(self) noexcept:
        """A large body: hash it on a thread of its own if a core is free for
        it (each such hasher counts two cores, each large body hashed inline
        one), inline otherwise."""
        global _pipes_live, _large_serial
        _counts_here()
        self._gen = _counts_gen
        if (_pipes_live + 1) * 2 + _large_serial <= _cores:
            self._pipe = fdk_pipe_get()
        if self._pipe != NULL:
            self._piped = True
            _pipes_live += 1
        else:
            self._large = True
            _large_serial += 1

    def update(self, data):
        if self._digest is not None:
            raise ValueError("update() after digest()")
        cdef Py_buffer view
        _get_buffer(data, &view)
        try:
            if view.len == 0:
                return None
            self._pipe_here()
            if self._busy:
                raise RuntimeError("BodyHasher used from two threads at once")
            self._busy = True
            try:
                if not self._begun and self._pipe_ok and _pipe_min and view.len >= _pipe_min:
                    self._start_large()
                self._begun = True
                if self._piped:
                    self._process_piped(<const unsigned char *>view.buf, view.len)
                else:
                    self._process(<const unsigned char *>view.buf, view.len)
            finally:
                self._busy = False
        finally:
            PyBuffer_Release(&view)
        return None

    cdef int _pipe_digest(self) except -1:
        cdef Py_ssize_t o, o0, aux = 0
        cdef int r, rc
        cdef unsigned char out[32]
        cdef fdk_pipe_t *p = self._pipe
        cdef canon_t *st = &self._s
        cdef uint64_t length = self._length
        cdef uint64_t fed = self._fed
        cdef uint64_t lim = self._lim
        cdef bint has_lim = self._has_limit
        with nogil:  # (publishing may wait for the worker)
            while True:
                o = p.fill
                o0 = o
                r = _engine_finish(st, p.cur, FDK_PIPE_BLOCK, &o, &aux)
                p.fill = o
                length += <uint64_t>(o - o0)
                _pipe_push(p, &fed, has_lim, lim)
                if r == _DONE:
                    break
            rc = fdk_pipe_finish(p, out)
        self._length = length
        self._fed = fed
        self._release()
        if rc != 0:
            self._failed = True
            raise RuntimeError("SHA-256 failed in the hashing thread")
        self._digest = PyBytes_FromStringAndSize(<const char *>out, 32)
        return 0

    def digest(self):
        cdef Py_ssize_t o, o0, aux = 0
        cdef int r
        if self._digest is None:
            self._pipe_here()
            if self._busy:
                raise RuntimeError("BodyHasher used from two threads at once")
            self._busy = True
            try:
                if self._piped:
                    self._pipe_digest()
                    return self._digest
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
                self._release()
            finally:
                self._busy = False
        return self._digest


cdef object _sha256 = hashlib.sha256
cdef object _sha1 = hashlib.sha1


cdef extern from "_evp.h":
    enum:
        FDK_SHA_SMALL
    int fdk_evp_load() noexcept
    int fdk_sha256(const void *b, size_t n, unsigned char *out) noexcept nogil


#: OpenSSL's SHA-256 is at hand without a hashlib object (_evp.h).
cdef bint _evp_ok = fdk_evp_load() == 0


cdef bytes _sha256_of(const unsigned char *b, Py_ssize_t n):
    """The SHA-256 of b[:n]: OpenSSL's through _evp.h, else hashlib's
    (the same library's, with an object's cost)."""
    cdef unsigned char out[32]
    cdef int rc = -1
    if _evp_ok:
        if n <= FDK_SHA_SMALL:
            rc = fdk_sha256(b, <size_t>n, out)
        else:
            with nogil:
                rc = fdk_sha256(b, <size_t>n, out)
        if rc == 0:
            return PyBytes_FromStringAndSize(<const char *>out, 32)
    return _sha256(PyMemoryView_FromMemory(<char *>b, n, PyBUF_READ)).digest()


def body_digest(data, relaxed, limit=None, bare_lf=False, hash_name="sha256"):
    """Canonicalize a whole body at once and hash it: what a ``BodyHasher``
    given the same arguments and fed *data* gives, as ``(digest, length)``
    (``length``: the canonical body length, all of it, not just what
    ``limit`` lets be hashed).  For small bodies, without a hasher's fixed
    cost.

    :raises ValueError: ``limit`` is negative or ``hash_name`` another name
        than ``"sha256"`` or ``"sha1"``.
    :raises TypeError: ``data`` is not bytes-like.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    if hash_name == "sha256":
        h = _sha256
    elif hash_name == "sha1":
        h = _sha1
    else:
        raise ValueError("hash_name must be 'sha256' or 'sha1', not %r" % (hash_name,))
    return _digest_body(data, relaxed, limit, bare_lf, h)


cdef tuple _digest_body(object data, object relaxed, object limit, object bare_lf, object h):
    """body_digest, its arguments checked (h: _sha256 or _sha1)."""
    cdef Py_buffer view
    cdef Py_ssize_t n
    cdef bytes digest
    _get_buffer(data, &view)
    try:
        digest = _digest_mem(<const unsigned char *>view.buf, view.len, relaxed, limit, bare_lf, h, &n)
    finally:
        PyBuffer_Release(&view)
    return digest, n


cdef bytes _digest_mem(const unsigned char *b, Py_ssize_t len_, bint relaxed, object limit, bint bare_lf,
                       object h, Py_ssize_t *length):
    """_digest_body's digest of the body b[:len_]; the canonical body's
    length to *length."""
    cdef canon_t s
    cdef bytes canon
    cdef Py_ssize_t n
    _canon_init(&s, relaxed, bare_lf)
    canon = _canon_bytes(&s, b, len_, True)
    n = len(canon)
    length[0] = n
    if h is _sha256:
        return _sha256_of(<const unsigned char *>_bytes_str(<PyObject *>canon),
                          n if limit is None or limit >= n else <Py_ssize_t>limit)
    if limit is not None and limit < n:
        return h(canon[:limit]).digest()
    return h(canon).digest()


def canonicalize_body(data, relaxed, bare_lf=False):
    """Canonicalize a whole body at once."""
    cdef canon_t s
    cdef Py_buffer view
    _canon_init(&s, relaxed, bare_lf)
    _get_buffer(data, &view)
    try:
        return _canon_bytes(&s, <const unsigned char *>view.buf, view.len, True)
    finally:
        PyBuffer_Release(&view)
