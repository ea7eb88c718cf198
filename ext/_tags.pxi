# Tag-lists (RFC 6376 section 3.2) and DKIM-Signature fields: the tags and
# the field with its b= value deleted (section 3.7).
# Part of _canon.pyx (included there).

cdef inline bint _is_fws(unsigned char c) noexcept nogil:
    return c == _SP or c == _TAB or c == _CR or c == _LF


def _short(b, limit=40):
    s = bytes(b).decode("ascii", "backslashreplace")
    return repr(s if len(s) <= limit else s[:limit] + "...")


# Tag names seen before, already checked: signatures repeat the same dozen.
cdef dict _tag_names = {}
# One-letter names (most DKIM tags), by their octet: looked up without
# making a bytes object for the name.
cdef list _letter_names = [None] * 256
cdef Py_ssize_t _c
for _c in range(65, 91):
    _letter_names[_c] = chr(_c)
    _letter_names[_c + 32] = chr(_c + 32)


cdef str _EMPTY_SPEC = "empty tag-spec (';' first, or two in a row; only one may end the list)"


cdef dict _parse_tags(const unsigned char *b, Py_ssize_t n, Py_ssize_t max_tags,
                      Py_ssize_t *b_start, Py_ssize_t *b_end):
    """The tag-list b[0:n] as {name: value}; where the b= value lies
    (from after its "=" up to its ";" or the end: what section 3.7 empties)."""
    cdef Py_ssize_t i = 0, j, eq, ns, ne, vs, ve, k
    cdef const unsigned char *p
    cdef unsigned char c
    cdef bint ok
    cdef dict tags = {}
    cdef bytes raw
    while i <= n:
        p = <const unsigned char *>memchr(b + i, 59, <size_t>(n - i)) if i < n else NULL  # ';'
        j = n if p == NULL else p - b
        p = <const unsigned char *>memchr(b + i, 61, <size_t>(j - i)) if j > i else NULL  # '='
        eq = -1 if p == NULL else p - b
        if eq < 0:
            ns = i
            ne = j
            while ns < ne and _is_fws(b[ns]):
                ns += 1
            while ne > ns and _is_fws(b[ne - 1]):
                ne -= 1
            if ne > ns:
                raise ValueError("tag without '=': %s" % _short(PyBytes_FromStringAndSize(<const char *>(b + ns), ne - ns)))
            if j < n:  # only the list's end may follow its last ';'
                raise ValueError(_EMPTY_SPEC)
        else:
            ns = i
            ne = eq
            while ns < ne and _is_fws(b[ns]):
                ns += 1
            while ne > ns and _is_fws(b[ne - 1]):
                ne -= 1
            if ne - ns == 1:
                name = _letter_names[b[ns]]
                raw = None
            elif ne - ns == 2 and b[ns] == 98 and b[ns + 1] == 104:  # "bh", in every signature
                name = "bh"
                raw = None
            else:
                raw = PyBytes_FromStringAndSize(<const char *>(b + ns), ne - ns)
                name = _tag_names.get(raw)
            if name is None:
                if raw is None:
                    raw = PyBytes_FromStringAndSize(<const char *>(b + ns), ne - ns)
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
    ``=`` and values is dropped; one ``;`` may end the list.

    :raises ValueError: a spec without ``=``, an empty spec (``;`` first,
        or two in a row: not in the grammar), an invalid tag name, a
        duplicate tag, more than ``max_tags`` tags, or no tag at all.
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
    return _split_signature(_as_bytes(field), max_tags)


cdef tuple _split_signature(bytes raw, Py_ssize_t max_tags):
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


REQUIRED_TAGS = ("v", "a", "b", "bh", "d", "h", "s")
STATIC_TAGS = ("a", "c", "d", "s", "h", "i", "q")


cpdef usable_signature(field, Py_ssize_t max_tags=1024):
    """The parts of a ``DKIM-Signature`` field that passes the checks of
    RFC 6376 section 6.1.1 that need nothing but the field, in one call;
    ``None`` for any other field (see the pure twin).

    :returns: ``(tags, unsigned, key, b, bh)``.
    :raises TypeError: ``field`` is not bytes-like (nothing else raises).
    """
    cdef tuple split
    cdef dict tags
    cdef object v, b, bh
    cdef bytes value
    cdef tuple key
    try:
        split = _split_signature(_as_bytes(field), max_tags)
    except ValueError:
        return None
    tags = <dict>split[0]
    v = tags.get("v")
    if v is None or <bytes>v != b"1":
        return None
    for t in REQUIRED_TAGS:
        if t not in tags:
            return None
    value = <bytes>tags["b"]
    b = _b64_bytes(<const unsigned char *>_bytes_str(<PyObject *>value), len(value))
    if b is None or not b:
        return None
    value = <bytes>tags["bh"]
    bh = _b64_bytes(<const unsigned char *>_bytes_str(<PyObject *>value), len(value))
    if bh is None:
        return None
    key = (tags.get("a"), tags.get("c"), tags.get("d"), tags.get("s"), tags.get("h"), tags.get("i"), tags.get("q"))
    return tags, split[1], key, b, bh
