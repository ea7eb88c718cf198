# Header fields: the relaxed form of one field (section 3.4.2), where the
# body starts, splitting a header block into fields, bare CR / bare LF and
# malformed-line checks, LF-to-CRLF normalization.
# Part of _canon.pyx (included there).

cdef inline unsigned char _lower(unsigned char c) noexcept nogil:
    return c + 32 if 65 <= c <= 90 else c


cdef Py_ssize_t _relax_into(const unsigned char *b, Py_ssize_t n, unsigned char *out) noexcept nogil:
    """Relaxed canonical form of the field b[:n] written to out (room for n + 2
    octets); returns the length.  One pass: every CRLF is dropped (unfolding),
    each WSP run becomes one SP, the name (up to the first colon) is
    lower-cased without the SP before the colon, the value loses the SP
    around it, and CRLF ends the result.  Runs of octets above SP are copied
    by the vector kernel, which may store up to 16 octets past the run: out
    never runs ahead of b, so those stay within the n + 2."""
    cdef Py_ssize_t i = 0, j = 0, k, k2, s, e
    cdef bint wsp = False
    cdef unsigned char c
    # The name, up to the first colon.
    while i < n:
        c = b[i]
        if c == _CR and i + 1 < n and b[i + 1] == _LF:
            i += 2
        elif c == _SP or c == _TAB:
            wsp = True
            i += 1
        elif c == 58:  # the SP before the colon goes
            out[j] = 58
            j += 1
            i += 1
            break
        else:
            if wsp:
                out[j] = _SP
                j += 1
                wsp = False
            out[j] = _lower(c)
            j += 1
            i += 1
    # The value (if there was a colon): no SP at its start or end.  On the
    # avx512 path, one vector pass from its first to its last octet that is
    # not blank (SP, HTAB, the CRLF of a fold).
    if n - i >= 16 and fdk_has_relax_value():
        s = i
        e = n
        while s < e:
            if b[s] == _SP or b[s] == _TAB:
                s += 1
            elif b[s] == _CR and s + 1 < e and b[s + 1] == _LF:
                s += 2
            else:
                break
        while e > s:
            if b[e - 1] == _SP or b[e - 1] == _TAB:
                e -= 1
            elif e - 2 >= s and b[e - 2] == _CR and b[e - 1] == _LF:
                e -= 2
            else:
                break
        if s < e:
            k = fdk_relax_value(b, s, e, out + j)
            if k >= 0:
                out[j + k] = _CR
                out[j + k + 1] = _LF
                return j + k + 2
    wsp = False
    k = j
    while i < n:
        c = b[i]
        if c > _SP:  # ordinary octets, copied in a tight loop
            if wsp:
                if j > k:
                    out[j] = _SP
                    j += 1
                wsp = False
            k2 = fdk_copy_dense(b, i, n, out + j)
            j += k2 - i
            i = k2
        elif c == _SP or c == _TAB:
            wsp = True
            i += 1
        elif c == _CR and i + 1 < n and b[i + 1] == _LF:
            i += 2  # unfolding: the WSP around it stays one run
        else:
            if wsp:
                if j > k:
                    out[j] = _SP
                    j += 1
                wsp = False
            out[j] = c
            j += 1
            i += 1
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
        if n + 2 > 1024:
            t = <unsigned char *>malloc(<size_t>(n + 2))
            if t == NULL:
                raise MemoryError()
        k = _relax_into(<const unsigned char *>view.buf, n, t)
        return PyBytes_FromStringAndSize(<const char *>t, k)
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
