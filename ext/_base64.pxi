# base64 tag values (RFC 4648 section 4): strict decoding of b=, bh= and p=
# (whitespace ignored), and the folded encoding a signer writes.
# Part of _canon.pyx (included there).

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


cdef Py_ssize_t _b64_into(const unsigned char *b, Py_ssize_t n, unsigned char *q) noexcept nogil:
    """Decode the base64 text b[:n] (whitespace ignored) into q (room for
    (n // 4) * 3 + 3 octets): the length written, or -1 for text that is not
    strict base64.  Four alphabet characters in a row, the bulk of any
    value, are decoded together."""
    cdef Py_ssize_t i = 0, o = 0
    cdef unsigned int acc = 0
    cdef int nacc = 0, pad = 0, v
    cdef signed char v0, v1, v2, v3
    while i < n:
        if nacc == 0 and i + 4 <= n:
            v0 = _b64_table[b[i]]
            v1 = _b64_table[b[i + 1]]
            v2 = _b64_table[b[i + 2]]
            v3 = _b64_table[b[i + 3]]
            if (v0 | v1 | v2 | v3) >= 0:  # no marker (all are negative) among them
                if pad:
                    return -1
                acc = (<unsigned int>v0 << 18) | (<unsigned int>v1 << 12) | (<unsigned int>v2 << 6) | <unsigned int>v3
                q[o] = <unsigned char>(acc >> 16)
                q[o + 1] = <unsigned char>(acc >> 8)
                q[o + 2] = <unsigned char>acc
                o += 3
                i += 4
                acc = 0
                continue
        v = _b64_table[b[i]]
        i += 1
        if v >= 0:
            if pad:
                return -1
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
                return -1
        elif v != _B64_FWS:
            return -1
    if pad:
        if nacc + pad != 4:
            return -1
        if nacc == 2:
            q[o] = <unsigned char>(acc >> 4)
            o += 1
        else:
            q[o] = <unsigned char>(acc >> 10)
            q[o + 1] = <unsigned char>(acc >> 2)
            o += 2
    elif nacc:
        return -1
    return o


cdef object _b64_bytes(const unsigned char *b, Py_ssize_t n):
    """The decoded base64 text b[:n] as bytes, or None when it is not strict base64."""
    cdef unsigned char small[1536]
    cdef unsigned char *q = small
    cdef Py_ssize_t o
    if (n // 4) * 3 + 3 > <Py_ssize_t>sizeof(small):
        q = <unsigned char *>malloc(<size_t>((n // 4) * 3 + 3))
        if q == NULL:
            raise MemoryError()
    try:
        o = _b64_into(b, n, q)
        return None if o < 0 else PyBytes_FromStringAndSize(<const char *>q, o)
    finally:
        if q != small:
            free(q)


def b64decode(value):
    """Decode a base64 tag value (``b=``, ``bh=``, ``p=``), ignoring whitespace.

    Strict: only the RFC 4648 alphabet, the length (without whitespace) a
    multiple of four, ``=`` padding only at the end and at most two of it.

    :raises ValueError: the value is not such base64.
    """
    cdef Py_buffer view
    _get_buffer(value, &view)
    try:
        out = _b64_bytes(<const unsigned char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    if out is None:
        raise ValueError("malformed base64 value")
    return out


cdef Py_ssize_t _b64_encode_into(const unsigned char *b, Py_ssize_t n, unsigned char *q) noexcept nogil:
    """The base64 of b[:n] (padded, unfolded) written to q: the length
    written, ((n + 2) // 3) * 4."""
    cdef Py_ssize_t i = 0, o = 0
    cdef unsigned int v
    while i + 3 <= n:
        v = (<unsigned int>b[i] << 16) | (<unsigned int>b[i + 1] << 8) | b[i + 2]
        q[o] = _B64_ALPHABET[(v >> 18) & 63]
        q[o + 1] = _B64_ALPHABET[(v >> 12) & 63]
        q[o + 2] = _B64_ALPHABET[(v >> 6) & 63]
        q[o + 3] = _B64_ALPHABET[v & 63]
        o += 4
        i += 3
    if n - i == 1:
        v = <unsigned int>b[i] << 16
        q[o] = _B64_ALPHABET[(v >> 18) & 63]
        q[o + 1] = _B64_ALPHABET[(v >> 12) & 63]
        q[o + 2] = 61
        q[o + 3] = 61
        o += 4
    elif n - i == 2:
        v = (<unsigned int>b[i] << 16) | (<unsigned int>b[i + 1] << 8)
        q[o] = _B64_ALPHABET[(v >> 18) & 63]
        q[o + 1] = _B64_ALPHABET[(v >> 12) & 63]
        q[o + 2] = _B64_ALPHABET[(v >> 6) & 63]
        q[o + 3] = 61
        o += 4
    return o


def fold_base64(data, Py_ssize_t col, Py_ssize_t width=78, prefix=b"", suffix=b""):
    """The base64 of ``data`` as a folded tag value: the first line goes on
    after column ``col`` (left empty when fewer than 8 columns remain), the
    following lines start with one SP; no line passes ``width`` columns.
    Lines are separated by CRLF SP.  The value comes between ``prefix`` and
    ``suffix`` (bytes; a signature field's text before its ``b=`` value
    and the CRLF after it), in one new bytes object.

    :raises ValueError: ``width`` is not from 9 to 65536, or ``col`` not
        from 0 to 65536.
    :raises TypeError: ``prefix`` or ``suffix`` is not bytes.
    """
    cdef Py_buffer view
    cdef const unsigned char *b
    cdef Py_ssize_t n, m, room, line, i, o, k, nl, np, ns
    cdef unsigned char *enc
    cdef unsigned char *q
    cdef bytes out
    cdef bytes pre = prefix
    cdef bytes post = suffix
    if not 9 <= width <= 65536:
        raise ValueError("width must be from 9 to 65536")
    if not 0 <= col <= 65536:
        raise ValueError("col must be from 0 to 65536")
    if pre is None or post is None:
        raise TypeError("prefix and suffix must be bytes")
    np = len(pre)
    ns = len(post)
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
            _b64_encode_into(b, n, enc)
            out = PyBytes_FromStringAndSize(NULL, np + m + 3 * nl + ns)
            q = <unsigned char *>_bytes_str(<PyObject *>out)
            memcpy(q, _bytes_str(<PyObject *>pre), <size_t>np)
            memcpy(q + np + m + 3 * nl, _bytes_str(<PyObject *>post), <size_t>ns)
            q += np
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


def body_hash_tags(head, Py_ssize_t col, bh, Py_ssize_t width=78):
    """A signature field's text ``head`` (ending at column ``col``) followed
    by the ``bh=`` tag of the body hash ``bh`` (base64, unfolded) and the
    start of an empty ``b=`` tag, each after one SP on the line where it is,
    or on a new line (CRLF SP) where it would pass ``width`` columns: the
    text that is signed, and the column where it ends.

    :raises TypeError: ``head`` is not bytes, or ``bh`` not bytes-like.
    """
    cdef bytes h = head
    cdef Py_buffer view
    if h is None:
        raise TypeError("head must be bytes")
    _get_buffer(bh, &view)
    try:
        return _bh_tags(h, col, <const unsigned char *>view.buf, view.len, width)
    finally:
        PyBuffer_Release(&view)


cdef tuple _bh_tags(bytes h, Py_ssize_t col, const unsigned char *d, Py_ssize_t n, Py_ssize_t width):
    """body_hash_tags of the body hash d[:n]."""
    cdef unsigned char *q
    cdef Py_ssize_t m, o, nh, tag, total
    cdef bint bh_break, b_break
    cdef bytes out
    m = ((n + 2) // 3) * 4
    tag = 5 + m  # " bh=" value ";"
    bh_break = col + tag > width
    col = tag if bh_break else col + tag
    b_break = col + 3 > width
    col = 3 if b_break else col + 3
    nh = len(h)
    total = nh + 2 * bh_break + tag + 2 * b_break + 3
    out = PyBytes_FromStringAndSize(NULL, total)
    q = <unsigned char *>_bytes_str(<PyObject *>out)
    memcpy(q, _bytes_str(<PyObject *>h), <size_t>nh)
    o = nh
    if bh_break:
        q[o] = _CR
        q[o + 1] = _LF
        o += 2
    memcpy(q + o, b" bh=", 4)
    o += 4
    o += _b64_encode_into(d, n, q + o)
    q[o] = 59  # ;
    o += 1
    if b_break:
        q[o] = _CR
        q[o + 1] = _LF
        o += 2
    memcpy(q + o, b" b=", 3)
    return out, col
