/*
 * fastdkim: the header index's loop (HeaderIndex.__init__ in _select.pxi),
 * one copy per line scanner.  Included by _kernels.h once for each, with
 *
 *   FDK_INDEX_FN    the function's name,
 *   FDK_INDEX_ATTR  what comes before it (static, and the target it is
 *                   compiled for),
 *   FDK_INDEX_LINE  the line scanner, called as FDK_INDEX_LINE(b, ls, n, &q,
 *                   &bare): it returns where the line that starts at ls ends
 *                   (its first CRLF, or n), sets q to where the run of
 *                   field-name octets from ls ends (or n), and bare to the
 *                   first CR or LF before that CRLF if bare is still -1,
 *
 * defined; it undefines them.  The loop is split_header_fields' loop,
 * recording offsets instead of objects: a line ends at its first CRLF, a
 * line that starts with SP or HTAB continues the field before it, and a
 * field line is a name (printable, no colon, no space) and a colon.  On the
 * way it notes the first bare CR or LF, the first line that is neither a
 * field nor a continuation, and in a whole message the empty line that ends
 * the header block.
 */
FDK_INDEX_ATTR int FDK_INDEX_FN(const unsigned char *b, Py_ssize_t n, int whole, Py_ssize_t limit,
                                fdk_index_t *ix)
{
    Py_ssize_t ls = 0, le, nxt, q, end = n, fs = 0, fe = 0, ns = 0, ne = 0;
    unsigned int name_hash = 0;
    int named = 0, have = 0;
    while (ls < n) {
        le = FDK_INDEX_LINE(b, ls, n, &q, &ix->bare);
        nxt = le < n ? le + 2 : n;
        if (whole && le == ls) {  /* an empty line (CRLF): the body follows it */
            end = ls;
            ix->body = nxt;
            break;
        }
        if (!(have && le > ls && (b[ls] == ' ' || b[ls] == '\t'))) {
            if (have && fdk_index_add(ix, b, fs, fe, ls, named, ns, ne, name_hash) < 0)
                return -1;
            if (ix->count >= limit)
                return -2;
            have = 1;
            fs = ls;
            fe = le;
            named = q > ls && q < n && b[q] == ':';
            if (named) {
                ns = ls;
                ne = q;
                name_hash = fdk_name_hash(b + ls, q - ls);
            } else if (ix->bad < 0) {
                ix->bad = ls;
            }
        }
        ls = nxt;
    }
    if (have && fdk_index_add(ix, b, fs, fe, end, named, ns, ne, name_hash) < 0)
        return -1;
    return 0;
}

#undef FDK_INDEX_FN
#undef FDK_INDEX_ATTR
#undef FDK_INDEX_LINE
