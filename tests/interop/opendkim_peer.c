/*
 * A small driver over libopendkim for the interop tests.
 *
 * Built by a pytest fixture into a temporary directory:
 *     cc -O1 -o opendkim_peer opendkim_peer.c -lopendkim -lresolv
 *
 * Usage: opendkim_peer [--dns 127.0.0.1:PORT] [--timeout SECONDS] [--oversign a,b,...]
 *
 * Signs the header fields the opendkim filter signs by default
 * (dkim_should_signhdrs), oversigning those given with --oversign.
 *
 * Reads jobs from standard input, one per line, fields separated by TABs, and
 * answers each with exactly one line on standard output:
 *
 *   sign ALG HCANON BCANON KEYFILE DOMAIN SELECTOR INFILE OUTFILE
 *       -> "ok" (OUTFILE holds the DKIM-Signature field, CRLF-terminated,
 *          followed by the unchanged message) or "error<TAB>why"
 *   verify INFILE
 *       -> "RESULT<TAB>detail" where RESULT is pass, fail, permerror,
 *          temperror or none, for the first signature libopendkim reports
 *
 * Keys are fetched from DNS.  The library's own resolver glue follows the
 * system configuration and ignores ports, so this driver installs DNS hooks
 * (dkim_dns_set_query_*) that send each query with res_nsend() to the one
 * server given by --dns, and hands libopendkim the raw reply to interpret.
 * Without --dns every lookup fails (nothing is ever sent elsewhere).
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opendkim/dkim.h>

struct dns_service {
	struct __res_state state;
	int configured;
};

struct dns_query {
	int length;
	int error;
};

static struct dns_service service;

static int dns_init(void **srv) { *srv = &service; return DKIM_DNS_SUCCESS; }
static void dns_close(void *srv) { (void) srv; }
static int dns_nslist(void *srv, const char *list) { (void) srv; (void) list; return DKIM_DNS_SUCCESS; }
static int dns_config(void *srv, const char *c) { (void) srv; (void) c; return DKIM_DNS_SUCCESS; }

static int dns_start(void *srv, int type, unsigned char *query, unsigned char *buf,
                     size_t buflen, void **qh)
{
	struct dns_service *s = srv;
	struct dns_query *q;
	unsigned char packet[NS_PACKETSZ];
	int n;

	q = calloc(1, sizeof *q);
	if (q == NULL)
		return DKIM_DNS_ERROR;
	*qh = q;
	if (!s->configured) {
		q->error = ECONNREFUSED;
		q->length = -1;
		return DKIM_DNS_SUCCESS;
	}
	n = res_nmkquery(&s->state, ns_o_query, (const char *) query, ns_c_in, type,
	                 NULL, 0, NULL, packet, sizeof packet);
	if (n < 0) {
		q->error = EINVAL;
		q->length = -1;
		return DKIM_DNS_SUCCESS;
	}
	errno = 0;
	q->length = res_nsend(&s->state, packet, n, buf, (int) buflen);
	q->error = q->length < 0 ? (errno ? errno : ETIMEDOUT) : 0;
	return DKIM_DNS_SUCCESS;
}

static int dns_cancel(void *srv, void *qh) { (void) srv; free(qh); return DKIM_DNS_SUCCESS; }

static int dns_waitreply(void *srv, void *qh, struct timeval *to, size_t *bytes,
                         int *error, int *dnssec)
{
	struct dns_query *q = qh;
	(void) srv;
	(void) to;
	if (dnssec != NULL)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	if (q->length < 0) {
		if (error != NULL)
			*error = q->error;
		/* no reply at all (timeout, nothing listening): the query expired */
		return DKIM_DNS_EXPIRED;
	}
	if (bytes != NULL)
		*bytes = (size_t) q->length;
	if (error != NULL)
		*error = 0;
	return DKIM_DNS_SUCCESS;
}

static int configure_dns(const char *spec, int timeout)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	int port = 53;
	size_t hl;

	if (res_ninit(&service.state) != 0)
		return -1;
	hl = colon ? (size_t) (colon - spec) : strlen(spec);
	if (hl >= sizeof host)
		return -1;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	if (colon)
		port = atoi(colon + 1);
	memset(&service.state.nsaddr_list[0], 0, sizeof service.state.nsaddr_list[0]);
	service.state.nsaddr_list[0].sin_family = AF_INET;
	service.state.nsaddr_list[0].sin_port = htons((unsigned short) port);
	if (inet_pton(AF_INET, host, &service.state.nsaddr_list[0].sin_addr) != 1)
		return -1;
	service.state.nscount = 1;
	service.state.retrans = timeout > 0 ? timeout : 1;
	service.state.retry = 1;
	service.state.options &= ~(RES_DNSRCH | RES_DEFNAMES);
	service.configured = 1;
	return 0;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n == cap) {
			unsigned char *nb;
			cap = cap ? cap * 2 : 1 << 16;
			nb = realloc(buf, cap + 1);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int canon_of(const char *s)
{
	if (strcmp(s, "simple") == 0)
		return DKIM_CANON_SIMPLE;
	if (strcmp(s, "relaxed") == 0)
		return DKIM_CANON_RELAXED;
	return DKIM_CANON_UNKNOWN;
}

static int alg_of(const char *s)
{
	if (strcmp(s, "rsa-sha256") == 0)
		return DKIM_SIGN_RSASHA256;
	if (strcmp(s, "ed25519-sha256") == 0)
		return DKIM_SIGN_ED25519SHA256;
	return DKIM_SIGN_UNKNOWN;
}

static void do_sign(DKIM_LIB *lib, char **f, int nf)
{
	unsigned char *key = NULL, *msg = NULL, *hdr = NULL;
	size_t keylen, msglen, hdrlen;
	DKIM_STAT st;
	DKIM *dkim = NULL;
	FILE *out = NULL;
	size_t i;

	if (nf != 9) {
		printf("error\tsign needs 8 arguments\n");
		return;
	}
	if ((key = read_file(f[4], &keylen)) == NULL || (msg = read_file(f[7], &msglen)) == NULL) {
		printf("error\tcannot read %s\n", key == NULL ? f[4] : f[7]);
		goto done;
	}
	dkim = dkim_sign(lib, (const unsigned char *) "interop", NULL, key,
	                 (const unsigned char *) f[6], (const unsigned char *) f[5],
	                 canon_of(f[2]), canon_of(f[3]), alg_of(f[1]), -1L, &st);
	if (dkim == NULL) {
		printf("error\tdkim_sign: %s\n", dkim_getresultstr(st));
		goto done;
	}
	if ((st = dkim_chunk(dkim, msg, msglen)) != DKIM_STAT_OK ||
	    (st = dkim_chunk(dkim, NULL, 0)) != DKIM_STAT_OK ||
	    (st = dkim_eom(dkim, NULL)) != DKIM_STAT_OK) {
		printf("error\tsigning: %s (%s)\n", dkim_getresultstr(st), dkim_geterror(dkim) ? dkim_geterror(dkim) : "");
		goto done;
	}
	st = dkim_getsighdr_d(dkim, strlen(DKIM_SIGNHEADER) + 2, &hdr, &hdrlen);
	if (st != DKIM_STAT_OK) {
		printf("error\tdkim_getsighdr_d: %s\n", dkim_getresultstr(st));
		goto done;
	}
	if ((out = fopen(f[8], "wb")) == NULL) {
		printf("error\tcannot write %s\n", f[8]);
		goto done;
	}
	fputs(DKIM_SIGNHEADER ": ", out);
	/* the library folds with bare LF: write the field in wire form */
	for (i = 0; i < hdrlen; i++) {
		if (hdr[i] == '\n' && (i == 0 || hdr[i - 1] != '\r'))
			fputc('\r', out);
		fputc(hdr[i], out);
	}
	fputs("\r\n", out);
	fwrite(msg, 1, msglen, out);
	if (fclose(out) != 0)
		printf("error\tcannot write %s\n", f[8]);
	else
		printf("ok\n");
done:
	if (dkim != NULL)
		dkim_free(dkim);
	free(key);
	free(msg);
}

static void do_verify(DKIM_LIB *lib, char **f, int nf)
{
	unsigned char *msg;
	size_t msglen;
	DKIM_STAT st;
	DKIM *dkim;
	DKIM_SIGINFO *sig;
	const char *result;
	int err = DKIM_SIGERROR_OK;

	if (nf != 2 || (msg = read_file(f[1], &msglen)) == NULL) {
		printf("error\tcannot read message\n");
		return;
	}
	dkim = dkim_verify(lib, (const unsigned char *) "interop", NULL, &st);
	if (dkim == NULL) {
		printf("error\tdkim_verify: %s\n", dkim_getresultstr(st));
		free(msg);
		return;
	}
	st = dkim_chunk(dkim, msg, msglen);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(dkim, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(dkim, NULL);
	sig = dkim_getsignature(dkim);
	if (sig != NULL)
		err = dkim_sig_geterror(sig);
	switch (st) {
	case DKIM_STAT_OK:
		result = (sig != NULL && DKIM_SIG_CHECK(sig)) ? "pass" : "fail";
		break;
	case DKIM_STAT_BADSIG:
		result = "fail";
		break;
	case DKIM_STAT_NOSIG:
		result = "none";
		break;
	case DKIM_STAT_KEYFAIL:
	case DKIM_STAT_NORESOURCE:
	case DKIM_STAT_CBTRYAGAIN:
		result = "temperror";
		break;
	default:
		result = "permerror";
		break;
	}
	/* a bad signature because of a key problem is a permanent error */
	if (strcmp(result, "fail") == 0 && sig != NULL &&
	    (err == DKIM_SIGERROR_KEYREVOKED || err == DKIM_SIGERROR_NOKEY ||
	     err == DKIM_SIGERROR_MULTIREPLY || err == DKIM_SIGERROR_KEYDECODE ||
	     err == DKIM_SIGERROR_KEYVERSION || err == DKIM_SIGERROR_DNSSYNTAX))
		result = "permerror";
	if (strcmp(result, "fail") == 0 && sig != NULL && err == DKIM_SIGERROR_KEYFAIL)
		result = "temperror";
	printf("%s\tstat=%s sigerror=%s flags=0x%x bh=%d\n", result, dkim_getresultstr(st),
	       sig != NULL ? dkim_sig_geterrorstr(err) : "-",
	       sig != NULL ? dkim_sig_getflags(sig) : 0,
	       sig != NULL ? dkim_sig_getbh(sig) : -1);
	dkim_free(dkim);
	free(msg);
}

int main(int argc, char **argv)
{
	DKIM_LIB *lib;
	const char *dns = NULL;
	int timeout = 2;
	const char *oversign[32];
	int nover = 0;
	char line[8192];
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dns") == 0 && i + 1 < argc) {
			dns = argv[++i];
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			timeout = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--oversign") == 0 && i + 1 < argc) {
			char *p = strtok(argv[++i], ",");
			while (p != NULL && nover < 31) {
				oversign[nover++] = p;
				p = strtok(NULL, ",");
			}
		} else {
			fprintf(stderr, "usage: %s [--dns IP:PORT] [--timeout S] [--oversign a,b]\n", argv[0]);
			return 2;
		}
	}
	oversign[nover] = NULL;

	lib = dkim_init(NULL, NULL);
	if (lib == NULL) {
		fprintf(stderr, "dkim_init failed\n");
		return 1;
	}
	if (dns != NULL && configure_dns(dns, timeout) != 0) {
		fprintf(stderr, "bad --dns %s\n", dns);
		return 2;
	}
	dkim_dns_set_init(lib, dns_init);
	dkim_dns_set_close(lib, dns_close);
	dkim_dns_set_nslist(lib, dns_nslist);
	dkim_dns_set_config(lib, dns_config);
	dkim_dns_set_query_start(lib, dns_start);
	dkim_dns_set_query_cancel(lib, dns_cancel);
	dkim_dns_set_query_waitreply(lib, dns_waitreply);
	dkim_dns_set_query_service(lib, &service);
	{
		unsigned int t = (unsigned int) timeout;
		if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_TIMEOUT, &t, sizeof t) != DKIM_STAT_OK) {
			fprintf(stderr, "cannot set the DNS timeout\n");
			return 1;
		}
	}
	/* sign what the opendkim filter signs by default: the RFC 6376
	   section 5.4.1 list (the library alone would sign every field) */
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, dkim_should_signhdrs, sizeof(char **)) != DKIM_STAT_OK) {
		fprintf(stderr, "cannot set the signed header fields\n");
		return 1;
	}
	if (nover > 0 &&
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, oversign, sizeof(char **)) != DKIM_STAT_OK) {
		fprintf(stderr, "cannot set the oversigned header fields\n");
		return 1;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof line, stdin) != NULL) {
		char *fields[16];
		int nf = 0;
		char *p, *save = NULL;

		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		for (p = strtok_r(line, "\t", &save); p != NULL && nf < 16; p = strtok_r(NULL, "\t", &save))
			fields[nf++] = p;
		if (nf == 0)
			continue;
		if (strcmp(fields[0], "sign") == 0)
			do_sign(lib, fields, nf);
		else if (strcmp(fields[0], "verify") == 0)
			do_verify(lib, fields, nf);
		else
			printf("error\tunknown job %s\n", fields[0]);
		fflush(stdout);
	}
	dkim_close(lib);
	return 0;
}
