# The signing lane: for the usual message, what a signer signs, in one call
# (the header index, the body hash, the signature field's text up to its b=
# tag, the header hash input or its digest).
# Part of _canon.pyx (included there).

cdef class _LanePlan:
    """A signer's plan for one sequence of field names, as the lane keeps it:
    the names (HeaderIndex.names_key), the plan, its positions as a C array,
    and the field's text up to h= as last made without l= (for second
    text_now)."""
    cdef bytes key
    cdef object plan
    cdef Py_ssize_t *take
    cdef Py_ssize_t ntake
    cdef bint has_text
    cdef object text_now
    cdef bytes text_head
    cdef Py_ssize_t text_col

    def __dealloc__(self):
        free(self.take)


cdef class SignLane:
    """The signing lane of one signer (see the pure twin for the contract)."""
    cdef bint _relaxed_h, _relaxed_b, _length, _digest
    cdef object _bare_lf
    cdef Py_ssize_t _max_bytes, _max_fields, _max_body, _width
    cdef object _plan_of, _head_of, _clock
    cdef _LanePlan _last

    def __init__(self, relaxed_headers, relaxed_body, body_length, digest, plan_of, head_of, clock, bare_lf,
                 Py_ssize_t max_bytes, Py_ssize_t max_fields, Py_ssize_t max_body, Py_ssize_t width=78):
        if not (callable(plan_of) and callable(head_of) and callable(clock)):
            raise TypeError("plan_of, head_of and clock must be callable")
        if not 9 <= width <= 65536:
            raise ValueError("width must be from 9 to 65536")
        self._relaxed_h = bool(relaxed_headers)
        self._relaxed_b = bool(relaxed_body)
        self._length = bool(body_length)
        self._digest = bool(digest)
        self._plan_of = plan_of
        self._head_of = head_of
        self._clock = clock
        self._bare_lf = None if bare_lf is None else bool(bare_lf)
        self._max_bytes = max_bytes
        self._max_fields = max_fields
        self._max_body = max_body
        self._width = width
        self._last = None

    cdef _LanePlan _entry(self, HeaderIndex index):
        """The plan for index's names: the last one when the names are the
        same, else plan_of's (kept as the last)."""
        cdef _LanePlan e = self._last
        cdef object plan, take
        cdef Py_ssize_t k, i, nt
        # (a block read_usual accepts has no defect: its first line is a field's)
        if e is not None and index._names_are(e.key):
            return e
        plan = self._plan_of(index)
        take = list(plan.take)
        nt = len(take)
        e = _LanePlan()
        e.take = <Py_ssize_t *>malloc(<size_t>(nt + 1) * sizeof(Py_ssize_t))
        if e.take == NULL:
            raise MemoryError()
        for k in range(nt):
            i = PyNumber_Index(take[k])
            if not 0 <= i < index._n:
                raise IndexError("field index out of range")
            e.take[k] = i
        e.ntake = nt
        e.plan = plan
        e.key = index.names_key()
        self._last = e  # (one assignment: threads see the old entry or this one)
        return e

    def start(self, data):
        """``(to_sign, unsigned, col)`` for the usual message ``data``, else
        ``None`` (see the pure twin).

        :raises TypeError: ``data`` is not bytes.
        """
        cdef bytes d = data
        cdef HeaderIndex index
        cdef _LanePlan e
        cdef bytes digest, head, unsigned
        cdef Py_ssize_t n, col, size
        cdef object now, length
        cdef tuple tags
        cdef unsigned char *buf
        if d is None:
            raise TypeError("data must be bytes")
        index = _usual(d, self._bare_lf, self._max_bytes, self._max_fields, self._max_body)
        if index is None:
            return None
        e = self._entry(index)
        if index._body >= 0:
            digest = _digest_mem(<const unsigned char *>_bytes_str(<PyObject *>d) + index._body,
                                 len(d) - index._body, self._relaxed_b, None, False, _sha256, &n)
        else:
            digest = _digest_mem(<const unsigned char *>b"", 0, self._relaxed_b, None, False, _sha256, &n)
        now = int(self._clock())
        if self._length:
            length = n
            head, col = self._head_of(e.plan, length, now)
        elif e.has_text and e.text_now == now:
            head = e.text_head
            col = e.text_col
        else:
            head, col = self._head_of(e.plan, None, now)
            if head is not None:
                e.text_now = now  # (no call between these: threads see all three)
                e.text_head = head
                e.text_col = col
                e.has_text = True
        if head is None:
            raise TypeError("head_of must give bytes")
        tags = _bh_tags(head, col, <const unsigned char *>_bytes_str(<PyObject *>digest), 32, self._width)
        unsigned = <bytes>tags[0]
        col = tags[1]
        if not self._digest:
            return index._block_of(e.take, e.ntake, unsigned, self._relaxed_h), unsigned, col
        size = index._block_size(e.take, e.ntake, unsigned)
        buf = <unsigned char *>malloc(<size_t>(size + 1))
        if buf == NULL:
            raise MemoryError()
        try:
            n = index._block_fill(e.take, e.ntake, unsigned, self._relaxed_h, buf)
            return _sha256_of(buf, n), unsigned, col
        finally:
            free(buf)
