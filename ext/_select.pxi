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
