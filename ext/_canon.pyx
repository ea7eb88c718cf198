# cython: language_level=3
"""Compiled canonicalization core: the fast twin of ``fastdkim._canon_py``.

Same names, same behaviour, byte for byte; ``fastdkim._canon_py`` is the
specification and the property tests hold the two together.

Body canonicalization is a small state machine whose whole state is a few C
integers (a pending CR, a pending WSP run, a mid-line flag and a 64-bit count of
held-back empty lines), carried across chunks exactly like the pure version, so
chunk boundaries may fall anywhere.  The loops run without the GIL and never
handle ordinary octets one at a time: a vector scan finds the next octet where
the canonical form can differ from the input, and the stretch before it is
copied with whole 16-octet stores or, for simple canonicalization, handed to
the hash straight from the caller's buffer.  Relaxed canonicalization runs
whole lines through a block kernel (16, 32 or 64 octets per step: each WSP run
reduced to one SP, WSP before a line end dropped, by compacting each block
with a keep-mask), and, when hashing, long verbatim runs are hashed in place
too.

The kernels are chosen once, at import, for the CPU (see _kernels.h):
``SIMD`` names the live path, ``SIMD_PATHS`` those the CPU can run, slowest
first, from ``"scalar"``, ``"sse2"``, ``"ssse3"``, ``"avx2"`` and
``"avx512"`` (AVX-512 BW and VBMI2).  The environment variable
``FASTDKIM_SIMD`` (read at import) forces one of these names: a path the CPU
lacks gives the best one below it, an unknown name the best path and a
``RuntimeWarning``.  Every path gives the same results, byte for byte
(``_use_simd(name)`` switches paths, for the tests that hold each against the
pure twin).
``BodyHasher`` canonicalizes into one reused block buffer and hashes each
filled block with a single ``update`` call of a hashlib object (which releases
the GIL itself); held-back CRLFs, however many, go through that buffer in
pieces.  The body itself is never kept: memory is bounded by the block size.
A large relaxed body (a first ``update()`` of ``HASH_THREAD_MIN`` octets or
more) is hashed on a second, native thread instead, with OpenSSL's SHA-256
from the library hashlib loaded, while this thread canonicalizes the next of
a ring of four 256 KiB blocks (_pipe.h); the long verbatim runs hashed in
place on one thread are hashed in place by that thread too, in the caller's
buffer, before ``update()`` returns.  ``FASTDKIM_HASH_THREAD=0`` (read at
import) turns that off.

The module is this file plus the parts it includes, one concept each:

    _kernels.h     the vector scans, copies and line kernels, per path (C)
    _index.h       the header index's loop, once per line scanner (C, included
                   by _kernels.h)
    _body.pxi      the body state machine (``canon_t``), its bytes output and
                   the choice of kernel path
    _stream.pxi    BodyCanonicalizer, BodyHasher, canonicalize_body
    _evp.h         OpenSSL's SHA-256 from the library hashlib loaded (C)
    _pipe.h        BodyHasher's hashing thread for large bodies (C)
    _headers.pxi   header fields: relaxed form, splitting, line-break checks
    _tags.pxi      tag-lists and DKIM-Signature fields
    _base64.pxi    base64 tag values: strict decoding and folded encoding
    _select.pxi    the header hash input: h= selection and canonical block;
                   HeaderIndex, a header block read as offsets
    _lane.pxi      the verification lane: up to the key lookup, and its hashing
    _sign.pxi      the signing lane: what a signer signs, in one call
"""
from cpython.buffer cimport PyBUF_READ, PyBUF_SIMPLE, PyBuffer_Release, PyObject_CheckBuffer, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize, _PyBytes_Resize
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.long cimport PyLong_FromString
from cpython.object cimport PyObject
from cpython.number cimport PyNumber_Index
from cpython.ref cimport Py_XDECREF, Py_XINCREF
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy

import hashlib

__all__ = [
    "BodyCanonicalizer",
    "BodyHasher",
    "canonicalize_body",
    "body_digest",
    "relaxed_header",
    "find_body_start",
    "split_header_fields",
    "bare_line_break",
    "bad_field_line",
    "normalize_line_endings",
    "parse_tag_list",
    "parse_signature",
    "usable_signature",
    "b64decode",
    "header_hash_input",
    "canonical_headers",
    "fold_base64",
    "body_hash_tags",
    "HeaderIndex",
    "read_usual",
    "lane_start",
    "lane_end",
    "SignLane",
]


cdef extern from "Python.h":
    char *_bytes_str "PyBytes_AS_STRING" (PyObject *o)
    const Py_ssize_t PY_SSIZE_T_MAX


cdef extern from "_kernels.h":
    enum:
        FDK_RELAXED
        FDK_BARE_LF
    Py_ssize_t fdk_run_copy_bare(const unsigned char *b, Py_ssize_t i, Py_ssize_t n,
                                 unsigned char *out, Py_ssize_t win) noexcept nogil
    Py_ssize_t fdk_skip_wsp(const unsigned char *b, Py_ssize_t i, Py_ssize_t n) noexcept nogil
    ctypedef struct fdk_index_t:
        Py_ssize_t *at
        unsigned int *hash
        Py_ssize_t count
        Py_ssize_t cap
        Py_ssize_t body
        Py_ssize_t bare
        Py_ssize_t bad
    int fdk_index_block(const unsigned char *b, Py_ssize_t n, int whole, Py_ssize_t limit,
                        fdk_index_t *ix) noexcept nogil
    unsigned int fdk_name_hash(const unsigned char *b, Py_ssize_t n) noexcept nogil
    Py_ssize_t fdk_relax_value(const unsigned char *b, Py_ssize_t i, Py_ssize_t e, unsigned char *out) noexcept nogil
    int fdk_has_relax_value() noexcept nogil
    Py_ssize_t fdk_copy_dense(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, unsigned char *out) noexcept nogil
    void fdk_fill_crlf(unsigned char *p, Py_ssize_t k) noexcept nogil
    Py_ssize_t fdk_relaxed(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int mode,
                           unsigned char *out, Py_ssize_t win, Py_ssize_t clean,
                           Py_ssize_t *pw, Py_ssize_t *pseg) noexcept nogil
    Py_ssize_t fdk_run_end_relaxed(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, int mode,
                                   unsigned char *out) noexcept nogil


# ---------------------------------------------------------------------------
# Shared by the parts.

cdef enum:
    _CR = 13
    _LF = 10
    _SP = 32
    _TAB = 9

cdef enum:
    _NOGIL_MIN = 8192    # inputs this long are processed without the GIL


cdef int _get_buffer(object data, Py_buffer *view) except -1:
    """Acquire a contiguous byte view of any bytes-like object."""
    try:
        PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    except BufferError:
        if not PyObject_CheckBuffer(data):
            raise
        # e.g. a non-contiguous memoryview: use a contiguous copy
        PyObject_GetBuffer(memoryview(data).tobytes(), view, PyBUF_SIMPLE)
    return 0


include "_body.pxi"
include "_stream.pxi"
include "_headers.pxi"
include "_base64.pxi"
include "_tags.pxi"
include "_select.pxi"
include "_lane.pxi"
include "_sign.pxi"
