/* OpenSSL's SHA-256, from the libcrypto already loaded into the process.
 *
 * hashlib (imported before this module) loads libcrypto; its EVP functions
 * are looked up in that loaded copy (dlopen with RTLD_NOLOAD: never a second
 * copy, never code of our own) and checked on FIPS 180-2's "abc" before
 * first use.  Where OpenSSL 3 is loaded, SHA-256 is fetched once from its
 * default provider: a digest named by EVP_sha256() is fetched again at every
 * EVP_DigestInit_ex, which costs as much as hashing 300 octets.
 *
 * Two users: the hashing thread of large bodies (_pipe.h), which has its
 * own context, and fdk_sha256(), the digest of one small buffer for the
 * signing and verification lanes, without a hashlib object's cost (about
 * 0.2 us a digest).  Where no such library is loaded, or the platform lacks
 * dl_iterate_phdr, fdk_evp_load() fails and the callers use hashlib.
 */
#ifndef FDK_EVP_H
#define FDK_EVP_H

#include <stddef.h>
#include <string.h>

#if (defined(__linux__) || defined(__FreeBSD__)) && (defined(__GNUC__) || defined(__clang__))
#define FDK_HAVE_EVP 1
#include <dlfcn.h>
#include <link.h>
#else
#define FDK_HAVE_EVP 0
#endif

/* Up to this many octets, fdk_sha256() hashes on the context it keeps,
 * under the GIL; longer inputs get a context of their own and may be hashed
 * without the GIL (hashlib's own threshold is 2 KiB). */
#define FDK_SHA_SMALL 16384

typedef struct {
    void *(*ctx_new)(void);
    void (*ctx_free)(void *);
    int (*init)(void *, const void *, void *);
    int (*update)(void *, const void *, size_t);
    int (*final)(void *, unsigned char *, unsigned int *);
    const void *md;   /* SHA-256: fetched (OpenSSL 3), else EVP_sha256() */
    void *small;      /* fdk_sha256's context for small inputs (GIL held) */
} fdk_evp_t;

static fdk_evp_t fdk_evp;

#if FDK_HAVE_EVP

static int fdk_find_libcrypto(struct dl_phdr_info *info, size_t size, void *data)
{
    const char *name = info->dlpi_name, *base;
    (void)size;
    if (name == NULL || name[0] == '\0')
        return 0;
    base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (strncmp(base, "libcrypto.so", 12) != 0 || strlen(name) >= 4096)
        return 0;
    strcpy((char *)data, name);
    return 1;
}

/* One digest on ctx (initialized here): 0, or -1 when an EVP call failed. */
static int fdk_evp_digest(void *ctx, const void *b, size_t n, unsigned char *out)
{
    unsigned char buf[64];
    unsigned int outlen = 0;
    if (fdk_evp.init(ctx, fdk_evp.md, NULL) != 1 || fdk_evp.update(ctx, b, n) != 1 ||
        fdk_evp.final(ctx, buf, &outlen) != 1 || outlen != 32)
        return -1;
    memcpy(out, buf, 32);
    return 0;
}

/* Look up SHA-256 in the loaded libcrypto and check it.  0 when ready. */
static int fdk_evp_find(void)
{
    static const unsigned char abc[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    char path[4096];
    unsigned char out[32];
    void *lib;
    const void *(*sha256)(void);
    void *(*fetch)(void *, const char *, const char *);
    path[0] = '\0';
    dl_iterate_phdr(fdk_find_libcrypto, path);
    if (path[0] == '\0')
        return -1;
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD); /* only the copy already loaded */
    if (lib == NULL)
        return -1;
    *(void **)&fdk_evp.ctx_new = dlsym(lib, "EVP_MD_CTX_new");
    *(void **)&fdk_evp.ctx_free = dlsym(lib, "EVP_MD_CTX_free");
    *(void **)&fdk_evp.init = dlsym(lib, "EVP_DigestInit_ex");
    *(void **)&fdk_evp.update = dlsym(lib, "EVP_DigestUpdate");
    *(void **)&fdk_evp.final = dlsym(lib, "EVP_DigestFinal_ex");
    *(void **)&sha256 = dlsym(lib, "EVP_sha256");
    *(void **)&fetch = dlsym(lib, "EVP_MD_fetch"); /* OpenSSL 3 only */
    if (!fdk_evp.ctx_new || !fdk_evp.ctx_free || !fdk_evp.init || !fdk_evp.update || !fdk_evp.final || !sha256)
        return -1; /* the library stays loaded: hashlib holds it */
    fdk_evp.md = fetch ? fetch(NULL, "SHA2-256", NULL) : NULL; /* kept for the process's life */
    if (fdk_evp.md == NULL)
        fdk_evp.md = sha256();
    if (fdk_evp.md == NULL || (fdk_evp.small = fdk_evp.ctx_new()) == NULL)
        return -1;
    if (fdk_evp_digest(fdk_evp.small, "abc", 3, out) != 0 || memcmp(out, abc, 32) != 0) {
        fdk_evp.ctx_free(fdk_evp.small);
        fdk_evp.small = NULL;
        return -1;
    }
    return 0;
}

/* fdk_evp_find() once (under the GIL: the module's import and its callers). */
static int fdk_evp_load(void)
{
    static int state = 0; /* 1 ready, -1 not to be had */
    if (state == 0)
        state = fdk_evp_find() == 0 ? 1 : -1;
    return state == 1 ? 0 : -1;
}

/* The SHA-256 of b[0:n] into out (32 octets), once fdk_evp_load() succeeded.
 * Up to FDK_SHA_SMALL octets the caller must hold the GIL (the kept context
 * is shared); longer inputs may be hashed without it.  0, or -1 when an EVP
 * call failed. */
static int fdk_sha256(const void *b, size_t n, unsigned char *out)
{
    void *ctx;
    int rc;
    if (n <= FDK_SHA_SMALL)
        return fdk_evp_digest(fdk_evp.small, b, n, out);
    ctx = fdk_evp.ctx_new();
    if (ctx == NULL)
        return -1;
    rc = fdk_evp_digest(ctx, b, n, out);
    fdk_evp.ctx_free(ctx);
    return rc;
}

#else /* no lookup on this platform: hashlib does all the hashing */

static int fdk_evp_load(void) { return -1; }
static int fdk_sha256(const void *b, size_t n, unsigned char *out) { (void)b; (void)n; (void)out; return -1; }

#endif
#endif /* FDK_EVP_H */
