# The first half of the verification lane for the usual message (a few
# signatures, wire form, within the limits), in one call: what
# Checks._quick_start hands on to the key lookups.
# Part of _canon.pyx (included there).

cdef bytes _DKIM_SIGNATURE = b"dkim-signature"


def lane_start(data, bare_lf, Py_ssize_t max_bytes, Py_ssize_t max_fields, Py_ssize_t max_body,
               now, clock, clock_skew, dict statics not None, static_of, Py_ssize_t max_sigs=1):
    """The verification lane up to the key lookups, for ``data`` (a whole
    message, bytes), in one call (see the pure twin for the whole contract).

    :returns: ``(lane, when)``: ``lane`` is ``None`` for a message the lane
        leaves to the phases, else ``(index, body, sigs)``, ``sigs`` a tuple
        of ``(pos, tags, unsigned, b, bh, timestamp, static)`` per
        signature, top to bottom; ``when`` is the time read, ``None`` if it
        was not.
    :raises TypeError: ``data`` is not bytes, or ``statics`` not a
        ``dict``.  Otherwise only what ``clock`` or ``static_of`` raise.
    """
    cdef object usual = read_usual(data, bare_lf, max_bytes, max_fields, max_body)
    cdef HeaderIndex index
    cdef Py_ssize_t i, j, k = 0, ln, nq
    cdef const unsigned char *q = <const unsigned char *>_bytes_str(<PyObject *>_DKIM_SIGNATURE)
    cdef unsigned int h
    cdef tuple got
    cdef dict tags
    cdef object t, static, when, timestamp
    cdef const unsigned char *d
    cdef Py_ssize_t found[8]
    cdef list sigs
    if usual is None:
        return None, None
    when = int(clock() if now is None else now)
    if max_sigs > 8:
        max_sigs = 8
    index = <HeaderIndex>(<tuple>usual)[0]
    nq = len(_DKIM_SIGNATURE)
    h = _name_hash(q, nq)
    for i in range(index._n):
        if index._is(i, q, nq, h):
            if k >= max_sigs:
                return None, when
            found[k] = i
            k += 1
    if k == 0:
        return None, when
    sigs = []
    for j in range(k):
        got = usable_signature(index._raw(found[j]))
        if got is None:
            return None, when
        tags = <dict>got[0]
        key = got[2]
        static = statics.get(key)
        if not static:
            static = static_of(key, tags)
        if len(static) == 2 or "l" in tags or "x" in tags:
            return None, when
        timestamp = None
        t = tags.get("t")
        if t is not None:
            if type(t) is not bytes:  # (only a static_of that changed the tags)
                return None, when
            ln = len(<bytes>t)
            if ln == 0 or ln > 76:
                return None, when
            d = <const unsigned char *>_bytes_str(<PyObject *>t)
            for i in range(ln):
                if not 48 <= d[i] <= 57:
                    return None, when
            timestamp = PyLong_FromString(<char *>d, NULL, 10)
            if timestamp > when + clock_skew:
                return None, when
        sigs.append((found[j], tags, got[1], got[3], got[4], timestamp, static))
    return (index, (<tuple>usual)[1], tuple(sigs)), when


def lane_end(HeaderIndex index not None, body, relaxed_body, hash_name, bh, names, own, relaxed_headers,
             Py_ssize_t skip, singles=None, bint body_checked=False):
    """The hashing of the verification lane, in one call (see the pure twin).

    :returns: ``None`` when the body hash is not ``bh``; else, with
        ``singles``, :meth:`HeaderIndex.extra_instance`'s name (``str``) if
        it finds one; else what the key verifies: the SHA-256 of the header
        hash input for ``"sha256"``, the input itself for ``"sha1"``.
    :raises ValueError: ``hash_name`` is neither.
    :raises TypeError: ``body`` is not bytes-like or a name not bytes.
    """
    cdef bytes data
    cdef object h, picked
    cdef tuple got
    if hash_name != "sha256" and hash_name != "sha1":
        raise ValueError("hash_name must be 'sha256' or 'sha1', not %r" % (hash_name,))
    if not body_checked:
        h = _sha256 if hash_name == "sha256" else _sha1
        got = _digest_body(body, relaxed_body, None, False, h)
        if got[0] != bh:
            return None
    picked = index._select(names, own, relaxed_headers, skip, singles, True)
    if type(picked) is str:
        return picked
    data = <bytes>picked
    if hash_name == "sha1":
        return data
    return _sha256_of(<const unsigned char *>_bytes_str(<PyObject *>data), len(data))
