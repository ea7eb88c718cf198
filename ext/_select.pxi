# The header hash input (RFC 6376 section 3.7): the fields h= selects,
# bottom-up, canonicalized and joined with the signature's own field.
# Part of _canon.pyx (included there).

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
    return _header_block(picked, _as_bytes(own), relaxed)


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
    return _header_block(list(fields), _as_bytes(own), relaxed)


cdef bytes _header_block(list picked, bytes own_b, relaxed):
    cdef bytes raw
    cdef Py_ssize_t i
    cdef bint rel = bool(relaxed)
    cdef Py_ssize_t total = 0, n, pos = 0
    cdef unsigned char *buf
    picked.append(own_b)
    for i in range(len(picked)):
        if type(picked[i]) is not bytes:
            picked[i] = _as_bytes(picked[i])
        n = len(<bytes>picked[i])
        total += n + 2
    buf = <unsigned char *>malloc(<size_t>(total + 1))
    if buf == NULL:
        raise MemoryError()
    try:
        for raw in picked:
            n = len(raw)
            if rel:
                pos += _relax_into(<const unsigned char *>_bytes_str(<PyObject *>raw), n, buf + pos)
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


# ---------------------------------------------------------------------------
# A header block read once as offsets: Python objects are made only for the
# fields that are asked for (those h= names, the signatures), not for every
# field of the block.

cdef inline unsigned int _name_hash(const unsigned char *b, Py_ssize_t n) noexcept nogil:
    """A hash of b[:n] that is the same for names equal when lower-cased: a
    cheap first test before two names are compared octet by octet
    (``fdk_name_hash``, eight octets at a time)."""
    return fdk_name_hash(b, n)


cdef class HeaderIndex:
    """The header fields of a CRLF header block, split as
    :func:`split_header_fields` splits them, kept as offsets into the block.

    :param block: the header block (bytes-like), as for :func:`split_header_fields`.
    :param max_fields: the most fields accepted; ``None``: no limit.
    :param message: ``block`` is a whole message in wire form: the header
        block is what comes before its first empty line (see
        :meth:`body_start`); the message is not copied.
    :raises ValueError: ``max_fields`` is negative, or the block has more fields.
    """

    cdef bytes _block
    cdef Py_ssize_t _body
    cdef Py_ssize_t _n
    cdef Py_ssize_t *_at       # per field: start, end, name start, name end
    cdef unsigned int *_hash   # per field: _name_hash of the lower-cased name
    cdef Py_ssize_t _bare      # bare_line_break(block, False)
    cdef Py_ssize_t _bad       # bad_field_line(block), when _bare is -1

    def __cinit__(self):
        self._body = -1
        self._at = NULL
        self._hash = NULL
        self._n = 0

    def __dealloc__(self):
        free(self._at)
        free(self._hash)

    def __init__(self, block, max_fields=None, message=False):
        cdef Py_ssize_t limit = PY_SSIZE_T_MAX, cap = 16
        cdef fdk_index_t ix
        cdef int rc
        if max_fields is not None:
            limit = PyNumber_Index(max_fields)
            if limit < 0:
                raise ValueError("max_fields must be >= 0")
        if self._at != NULL:
            raise TypeError("HeaderIndex is initialized once")
        self._block = block if type(block) is bytes else _as_bytes(block)
        self._at = <Py_ssize_t *>malloc(<size_t>cap * 4 * sizeof(Py_ssize_t))
        self._hash = <unsigned int *>malloc(<size_t>cap * sizeof(unsigned int))
        if self._at == NULL or self._hash == NULL:
            raise MemoryError()
        # split_header_fields' loop, recording offsets instead of objects,
        # in the C kernel (_index.h): the fields, and on the way the first
        # bare CR or LF, the first line that is neither a field nor a
        # continuation, and in a whole message the body's start.
        ix.at = self._at
        ix.hash = self._hash
        ix.count = 0
        ix.cap = cap
        ix.body = -1
        ix.bare = -1
        ix.bad = -1
        rc = fdk_index_block(<const unsigned char *>_bytes_str(<PyObject *>self._block), len(self._block),
                             1 if message else 0, limit, &ix)
        self._at = ix.at
        self._hash = ix.hash
        if rc == -1:
            raise MemoryError()
        if rc == -2:
            raise ValueError("more than %d header fields" % limit)
        self._n = ix.count
        self._body = ix.body
        self._bare = ix.bare
        self._bad = ix.bad

    def __len__(self):
        return self._n

    def __iter__(self):
        """The ``(name, raw)`` pairs of :meth:`fields`."""
        return iter(self.fields())

    cdef bytes _raw(self, Py_ssize_t i):
        return PyBytes_FromStringAndSize(_bytes_str(<PyObject *>self._block) + self._at[4 * i],
                                         self._at[4 * i + 1] - self._at[4 * i])

    cdef bytes _name(self, Py_ssize_t i):
        cdef Py_ssize_t ns = self._at[4 * i + 2], k, ln = self._at[4 * i + 3] - ns
        cdef const unsigned char *b = <const unsigned char *>_bytes_str(<PyObject *>self._block)
        cdef bytes name = PyBytes_FromStringAndSize(NULL, ln)
        cdef unsigned char *q = <unsigned char *>_bytes_str(<PyObject *>name)
        for k in range(ln):
            q[k] = _lower(b[ns + k])
        return name

    cdef inline bint _is(self, Py_ssize_t i, const unsigned char *name, Py_ssize_t ln, unsigned int h) noexcept:
        """Whether field i's lower-cased name is name[:ln] (whose hash is h)."""
        cdef Py_ssize_t ns = self._at[4 * i + 2], k
        cdef const unsigned char *b
        if self._hash[i] != h or self._at[4 * i + 3] - ns != ln:
            return False
        b = <const unsigned char *>_bytes_str(<PyObject *>self._block) + ns
        for k in range(ln):
            if _lower(b[k]) != name[k]:
                return False
        return True

    def body_start(self):
        """For an index made of a whole message (``message=True``): the
        offset of its first body octet, after the empty line that ends the
        header block, as :func:`find_body_start` gives it for wire form;
        -1 when there is no such line, or the index was made of a block."""
        return self._body

    def defect(self):
        """What makes the block untrustworthy, first found first:
        ``(1, pos)`` for :func:`bare_line_break` ``(block, False)`` (a bare
        CR or LF at ``pos``), else ``(2, pos)`` for :func:`bad_field_line`
        (a line neither a field nor a continuation), else ``(0, -1)``."""
        if self._bare >= 0:
            return (1, self._bare)
        if self._bad >= 0:
            return (2, self._bad)
        return (0, -1)

    def fields(self):
        """Every field as a ``(name, raw)`` pair, top to bottom: what
        :func:`split_header_fields` returns for the block (a new list)."""
        cdef list out = []
        cdef Py_ssize_t i
        for i in range(self._n):
            out.append((self._name(i), self._raw(i)))
        return out

    def raw(self, Py_ssize_t i):
        """The raw text of field ``i`` (folding and final CRLF included).

        :raises IndexError: ``i`` is not ``0 <= i < len(self)``.
        """
        if not 0 <= i < self._n:
            raise IndexError("field index out of range")
        return self._raw(i)

    def find(self, name):
        """The positions (top to bottom) of the fields named ``name``
        (lower-case bytes; field names compare lower-cased).

        :raises TypeError: ``name`` is not bytes.
        """
        cdef bytes nb = _name_bytes(name)
        cdef const unsigned char *q = <const unsigned char *>_bytes_str(<PyObject *>nb)
        cdef Py_ssize_t ln = len(nb), i
        cdef unsigned int h = _name_hash(q, ln)
        cdef list out = []
        for i in range(self._n):
            if self._is(i, q, ln, h):
                out.append(i)
        return out

    def names_key(self):
        """The lower-cased field names, each followed by ``:``, top to
        bottom: equal keys, equal sequences of names (no name holds a colon)."""
        cdef Py_ssize_t i, k, total = 0, pos = 0, ns, ln
        cdef const unsigned char *b = <const unsigned char *>_bytes_str(<PyObject *>self._block)
        cdef bytes out
        cdef unsigned char *q
        for i in range(self._n):
            total += self._at[4 * i + 3] - self._at[4 * i + 2] + 1
        out = PyBytes_FromStringAndSize(NULL, total)
        q = <unsigned char *>_bytes_str(<PyObject *>out)
        for i in range(self._n):
            ns = self._at[4 * i + 2]
            ln = self._at[4 * i + 3] - ns
            memcpy(q + pos, b + ns, <size_t>ln)
            q[pos + ln] = 58
            pos += ln + 1
        for k in range(total):  # (one flat loop, which the compiler vectorizes; ':' stays)
            q[k] = _lower(q[k])
        return out

    def take(self, positions):
        """The raw texts of the fields at ``positions``, in that order.

        :raises IndexError: a position is not ``0 <= i < len(self)``.
        """
        cdef list out = []
        cdef Py_ssize_t i
        for p in positions:
            i = PyNumber_Index(p)
            if not 0 <= i < self._n:
                raise IndexError("field index out of range")
            out.append(self._raw(i))
        return out

    def canonical(self, positions, own, relaxed):
        """:func:`canonical_headers` of the fields at ``positions`` (in that
        order) and ``own``.

        :raises IndexError: a position is not ``0 <= i < len(self)``.
        """
        cdef list pl = list(positions)
        cdef Py_ssize_t k = len(pl), j, i
        cdef Py_ssize_t *pick = <Py_ssize_t *>malloc(<size_t>(k + 1) * sizeof(Py_ssize_t))
        if pick == NULL:
            raise MemoryError()
        try:
            for j in range(k):
                i = PyNumber_Index(pl[j])
                if not 0 <= i < self._n:
                    raise IndexError("field index out of range")
                pick[j] = i
            return self._block_of(pick, k, _as_bytes(own), relaxed)
        finally:
            free(pick)

    def hash_input(self, names, own, relaxed, Py_ssize_t skip=-1):
        """:func:`header_hash_input` of these fields, without the field at
        position ``skip`` (a signature that is not a candidate for its own
        ``h=``; -1: none left out).

        :raises TypeError: a name is not bytes.
        """
        return self._select(names, own, relaxed, skip, None, True)

    def extra_instance(self, names, Py_ssize_t skip, singles):
        """The first name of ``names`` (in their order) that is in
        ``singles`` and has more fields in the block (the one at ``skip``
        left out) than ``names`` lists, as ``str``; ``None`` if there is none
        (see the pure twin).

        :raises TypeError: a name is not bytes.
        """
        return self._select(names, b"", False, skip, singles, False)

    cdef object _select(self, names, own, relaxed, Py_ssize_t skip, object singles, bint build):
        """hash_input (with build), after extra_instance's check (with
        singles): the name it finds, as str, instead of the hash input."""
        cdef list nl = list(names)
        cdef Py_ssize_t nn = len(nl), nd = 0, j, g, i, k = 0, ln, slots = 16, slot
        cdef Py_ssize_t *pick
        cdef Py_ssize_t *group
        cdef Py_ssize_t *first
        cdef Py_ssize_t *head
        cdef Py_ssize_t *nxt
        cdef Py_ssize_t *table
        cdef unsigned int *hashes
        cdef const char **text
        cdef unsigned int h
        cdef const char *q
        for j in range(nn):
            _name_bytes(nl[j])
        while slots < 2 * nn:
            slots *= 2
        # One allocation: per h= entry the field it takes and its distinct
        # name; per distinct name its first entry, the chain of its fields
        # from the bottom up (head, then nxt per field), its hash and text;
        # an open-addressing table of the distinct names by hash.
        pick = <Py_ssize_t *>malloc(<size_t>(4 * nn + self._n + slots + 1) * sizeof(Py_ssize_t)
                                    + <size_t>(nn + 1) * (sizeof(unsigned int) + sizeof(char *)))
        if pick == NULL:
            raise MemoryError()
        group = pick + nn
        first = group + nn
        head = first + nn
        table = head + nn
        nxt = table + slots
        text = <const char **>(nxt + self._n + 1)
        hashes = <unsigned int *>(text + nn + 1)
        try:
            for slot in range(slots):
                table[slot] = -1
            for j in range(nn):
                q = _bytes_str(<PyObject *>nl[j])
                ln = len(<bytes>nl[j])
                h = _name_hash(<const unsigned char *>q, ln)
                slot = h & (slots - 1)
                while True:
                    g = table[slot]
                    if g < 0:  # a new distinct name
                        g = nd
                        nd += 1
                        table[slot] = g
                        first[g] = j
                        head[g] = -1
                        hashes[g] = h
                        text[g] = q
                        break
                    if hashes[g] == h and len(<bytes>nl[first[g]]) == ln and memcmp(text[g], q, <size_t>ln) == 0:
                        break
                    slot = (slot + 1) & (slots - 1)
                group[j] = g
            # Top to bottom, each field goes to the front of its name's chain,
            # so that every chain runs from the bottom-most instance upwards.
            if nd:
                for i in range(self._n):
                    if i == skip:
                        continue
                    h = self._hash[i]
                    slot = h & (slots - 1)
                    while True:
                        g = table[slot]
                        if g < 0:
                            break
                        if hashes[g] == h and self._is(i, <const unsigned char *>text[g],
                                                       len(<bytes>nl[first[g]]), h):
                            nxt[i] = head[g]
                            head[g] = i
                            break
                        slot = (slot + 1) & (slots - 1)
            for j in range(nn):
                g = group[j]
                i = head[g]
                if i >= 0:
                    pick[k] = i
                    k += 1
                    head[g] = nxt[i]
            if singles is not None:
                # a chain not used up: a field of that name above those h= takes
                for g in range(nd):
                    if head[g] >= 0 and nl[first[g]] in singles:
                        return (<bytes>nl[first[g]]).decode("ascii", "replace")
            if not build:
                return None
            return self._block_of(pick, k, _as_bytes(own), relaxed)
        finally:
            free(pick)

    cdef Py_ssize_t _block_size(self, Py_ssize_t *pick, Py_ssize_t k, bytes own_b) noexcept:
        """An upper bound of what _block_fill writes."""
        cdef Py_ssize_t total = len(own_b) + 2, j
        for j in range(k):
            total += self._at[4 * pick[j] + 1] - self._at[4 * pick[j]] + 2
        return total

    cdef Py_ssize_t _block_fill(self, Py_ssize_t *pick, Py_ssize_t k, bytes own_b, bint rel,
                                unsigned char *buf) noexcept:
        """Write the fields at pick[:k], canonicalized, then own_b without its
        final CRLF, to buf (_block_size octets at least); return the length."""
        cdef const unsigned char *b = <const unsigned char *>_bytes_str(<PyObject *>self._block)
        cdef const unsigned char *src
        cdef Py_ssize_t n, pos = 0, j
        for j in range(k + 1):
            if j < k:
                src = b + self._at[4 * pick[j]]
                n = self._at[4 * pick[j] + 1] - self._at[4 * pick[j]]
            else:
                src = <const unsigned char *>_bytes_str(<PyObject *>own_b)
                n = len(own_b)
            if rel:
                pos += _relax_into(src, n, buf + pos)
            else:
                memcpy(buf + pos, src, <size_t>n)
                pos += n
                if n < 2 or buf[pos - 2] != _CR or buf[pos - 1] != _LF:
                    buf[pos] = _CR
                    buf[pos + 1] = _LF
                    pos += 2
        # the signature's own field goes in without its final CRLF
        return pos - 2

    cdef bytes _block_of(self, Py_ssize_t *pick, Py_ssize_t k, bytes own_b, relaxed):
        """The fields at pick[:k], canonicalized, then own_b without its final CRLF."""
        cdef unsigned char *buf = <unsigned char *>malloc(<size_t>(self._block_size(pick, k, own_b) + 1))
        if buf == NULL:
            raise MemoryError()
        try:
            return PyBytes_FromStringAndSize(<const char *>buf, self._block_fill(pick, k, own_b, bool(relaxed), buf))
        finally:
            free(buf)

    cdef bint _names_are(self, bytes key) noexcept:
        """Whether names_key() would equal key, without making it."""
        cdef const unsigned char *b = <const unsigned char *>_bytes_str(<PyObject *>self._block)
        cdef const unsigned char *q = <const unsigned char *>_bytes_str(<PyObject *>key)
        cdef Py_ssize_t n = len(key), pos = 0, i, k, ns, ln
        for i in range(self._n):
            ns = self._at[4 * i + 2]
            ln = self._at[4 * i + 3] - ns
            if pos + ln >= n or q[pos + ln] != 58:
                return False
            for k in range(ln):
                if _lower(b[ns + k]) != q[pos + k]:
                    return False
            pos += ln + 1
        return pos == n


cdef HeaderIndex _usual(bytes d, bare_lf, Py_ssize_t max_bytes, Py_ssize_t max_fields, Py_ssize_t max_body):
    """read_usual's index of d, or None; its body is d[index._body:] (none
    when index._body < 0)."""
    cdef const unsigned char *b
    cdef const unsigned char *nl
    cdef Py_ssize_t n
    cdef HeaderIndex index
    if bare_lf:
        return None
    n = len(d)
    if n > max_bytes:
        return None
    b = <const unsigned char *>_bytes_str(<PyObject *>d)
    if bare_lf is None:  # LF mail: the first line ends in a bare LF
        nl = <const unsigned char *>memchr(b, _LF, <size_t>n)
        if nl != NULL and (nl == b or (nl - 1)[0] != _CR):
            return None
    try:
        index = HeaderIndex(d, max_fields, True)
    except ValueError:
        return None
    if index._bare >= 0 or index._bad >= 0:
        return None
    if index._body >= 0 and n - index._body > max_body:
        return None
    return index


cpdef read_usual(data, bare_lf, Py_ssize_t max_bytes, Py_ssize_t max_fields, Py_ssize_t max_body):
    """The :class:`HeaderIndex` of ``data`` (a whole message, bytes) and its
    body (empty if it has none), when it is the usual message: in wire form
    (``bare_lf`` false, or ``None`` and the first line ending in CRLF), at
    most ``max_bytes`` octets in all, at most ``max_fields`` header fields,
    a header block without defect, a body of at most ``max_body`` octets.
    ``None`` for any other message.

    :raises TypeError: ``data`` is not bytes.
    """
    cdef bytes d = data
    cdef HeaderIndex index
    if d is None:
        raise TypeError("data must be bytes")
    index = _usual(d, bare_lf, max_bytes, max_fields, max_body)
    if index is None:
        return None
    if index._body < 0:
        return index, b""
    return index, d[index._body:]


cdef bytes _as_bytes(object data):
    """``data`` (any bytes-like object) as bytes, without a copy of bytes."""
    if type(data) is bytes:
        return <bytes>data
    cdef Py_buffer view
    _get_buffer(data, &view)
    try:
        return PyBytes_FromStringAndSize(<const char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


cdef bytes _name_bytes(object name):
    if type(name) is not bytes:
        raise TypeError("field names must be bytes, not %s" % type(name).__name__)
    return <bytes>name
