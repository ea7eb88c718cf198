# The streaming body API over the engine of _body.pxi: BodyCanonicalizer
# (canonical bytes out), BodyHasher (canonical octets straight into a hash,
# through one reused block buffer) and canonicalize_body.
# Part of _canon.pyx (included there).

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

    def __cinit__(self, *args, **kwargs):
        self._buf = <unsigned char *>malloc(_BLOCK)
        if self._buf == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self._buf)

    def __init__(self, relaxed, limit=None, bare_lf=False, hash_name="sha256"):
        if self._busy:
            raise RuntimeError("BodyHasher used from two threads at once")
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        # Only the hash object differs: every name is fed the same canonical
        # blocks from C, so SHA-256 keeps its path unchanged.
        if hash_name == "sha256":
            h = hashlib.sha256()
            self._hash_name = "sha256"
        elif hash_name == "sha1":
            h = hashlib.sha1()
            self._hash_name = "sha1"
        else:
            raise ValueError("hash_name must be 'sha256' or 'sha1', not %r" % (hash_name,))
        _canon_init(&self._s, relaxed, bare_lf)
        self._hash = h
        self._hupdate = h.update
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
    def hash_name(self):
        return self._hash_name

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


cdef object _sha256 = hashlib.sha256
cdef object _sha1 = hashlib.sha1


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
    cdef canon_t s
    cdef Py_buffer view
    cdef bytes canon
    cdef Py_ssize_t n
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    if hash_name == "sha256":
        h = _sha256
    elif hash_name == "sha1":
        h = _sha1
    else:
        raise ValueError("hash_name must be 'sha256' or 'sha1', not %r" % (hash_name,))
    _canon_init(&s, relaxed, bare_lf)
    _get_buffer(data, &view)
    try:
        canon = _canon_bytes(&s, <const unsigned char *>view.buf, view.len, True)
    finally:
        PyBuffer_Release(&view)
    n = len(canon)
    if limit is not None and limit < n:
        return h(canon[:limit]).digest(), n
    return h(canon).digest(), n


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
