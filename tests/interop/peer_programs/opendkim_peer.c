/*
 * libopendkim driven for the interop tests and the benchmarks: one program,
 * two modes.
 *
 * Built into a temporary directory by tests/interop/peers.py (build_opendkim):
 *     cc -O2 -o opendkim_peer opendkim_peer.c -lopendkim -lresolv -lm
 *
 * == Jobs mode (the interop tests) ==
 *
 *     opendkim_peer [--dns 127.0.0.1:PORT] [--timeout SECONDS] [--oversign a,b,...]
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
 *
 * == Loop mode (the benchmarks: benchmarks/run.py, benchmarks/bench_peers.py) ==
 *
 *     opendkim_peer loop OP ALG CANON DOMAIN SELECTOR KEYFILE TXTFILE MSGFILE OUTFILE
 *                        HEADERS OVERSIGN MIN_TIME ROUNDS MAX_TIME
 *
 * OP is "sign" or "verify"; ALG "rsa-sha256" or "ed25519-sha256"; CANON e.g.
 * "relaxed/simple"; HEADERS and OVERSIGN are comma-separated field names ("-"
 * for none).  KEYFILE is the PEM private key (sign), TXTFILE the key record
 * value (verify), MSGFILE the message in wire form.
 *
 * The protocol is the one the loop mode of every peer program follows:
 *   1. one operation; its product goes to OUTFILE (sign: the DKIM-Signature
 *      field, CRLF-terminated; verify: "pass") and "ready SECONDS" is printed;
 *   2. the program waits for a line on standard input: "go" goes on (the
 *      harness has checked OUTFILE), anything else ends it;
 *   3. batches of 1, 2, 4, ... operations until one lasts MIN_TIME/4 (skipped
 *      when the first operation alone lasted MIN_TIME), then the number of
 *      operations per round is set so that a round lasts about MIN_TIME;
 *   4. ROUNDS rounds (fewer if they would exceed MAX_TIME seconds in all),
 *      each printed as "round N SECONDS"; then "done".
 * Every verification in every round must pass, or the program exits with 3;
 * exit status 4 (with a message on standard error) means the peer cannot do
 * what was asked.  Timing uses the monotonic clock.
 *
 * No DNS in loop mode: a key lookup callback (dkim_set_key_lookup) hands the
 * library the record read from TXTFILE, so no query is ever sent.
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* the library folds with bare LF: write the field in wire form, CRLF-terminated */
static void write_field(FILE *out, const unsigned char *hdr, size_t len)
{
	size_t i;

	fputs(DKIM_SIGNHEADER ": ", out);
	for (i = 0; i < len; i++) {
		if (hdr[i] == '\n' && (i == 0 || hdr[i - 1] != '\r'))
			fputc('\r', out);
		fputc(hdr[i], out);
	}
	fputs("\r\n", out);
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
	write_field(out, hdr, hdrlen);
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

static int jobs_main(int argc, char **argv)
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

/* -- loop mode ------------------------------------------------------------ */

static unsigned char *record;   /* key record served by the lookup callback */
static size_t record_len;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned char *must_read(const char *path, size_t *len)
{
	unsigned char *buf = read_file(path, len);

	if (buf == NULL) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	return buf;
}

static DKIM_CBSTAT key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	(void) dkim;
	(void) sig;
	if (record_len + 1 > buflen)
		return DKIM_CBSTAT_ERROR;
	memcpy(buf, record, record_len);
	buf[record_len] = '\0';
	return DKIM_CBSTAT_CONTINUE;
}

/* "a,b,c" -> NULL-terminated array; "-" -> NULL */
static const char **name_list(char *spec)
{
	const char **out;
	size_t n = 1, i = 0;
	char *p;

	if (strcmp(spec, "-") == 0 || *spec == '\0')
		return NULL;
	for (p = spec; *p; p++)
		if (*p == ',')
			n++;
	out = calloc(n + 1, sizeof *out);
	if (out == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	for (p = strtok(spec, ","); p != NULL; p = strtok(NULL, ","))
		out[i++] = p;
	out[i] = NULL;
	return out;
}

struct loop_job {
	DKIM_LIB *lib;
	bool sign;
	dkim_alg_t alg;
	dkim_canon_t hc, bc;
	const char *domain, *selector;
	unsigned char *key;
	unsigned char *msg;
	size_t msg_len;
	FILE *out;              /* product of this operation goes here (first one only) */
};

static void fail(const char *what, DKIM_STAT st)
{
	fprintf(stderr, "%s: %s\n", what, dkim_getresultstr(st));
	exit(3);
}

static void one(struct loop_job *j)
{
	DKIM_STAT st;
	DKIM *d;

	if (j->sign)
		d = dkim_sign(j->lib, (const unsigned char *) "bench", NULL, (dkim_sigkey_t) j->key,
		              (const unsigned char *) j->selector, (const unsigned char *) j->domain,
		              j->hc, j->bc, j->alg, -1, &st);
	else
		d = dkim_verify(j->lib, (const unsigned char *) "bench", NULL, &st);
	if (d == NULL)
		fail(j->sign ? "dkim_sign" : "dkim_verify", st);
	st = dkim_chunk(d, j->msg, j->msg_len);
	if (st != DKIM_STAT_OK)
		fail("dkim_chunk", st);
	st = dkim_chunk(d, NULL, 0);
	if (st != DKIM_STAT_OK)
		fail("dkim_chunk(end)", st);
	st = dkim_eom(d, NULL);
	if (j->sign) {
		unsigned char *hdr;
		size_t len;

		if (st != DKIM_STAT_OK)
			fail("dkim_eom", st);
		st = dkim_getsighdr_d(d, strlen(DKIM_SIGNHEADER ": "), &hdr, &len);
		if (st != DKIM_STAT_OK)
			fail("dkim_getsighdr_d", st);
		if (j->out != NULL)
			write_field(j->out, hdr, len);
	} else {
		DKIM_SIGINFO **sigs;
		int nsigs = 0;

		if (st != DKIM_STAT_OK)
			fail("verification", st);
		if (dkim_getsiglist(d, &sigs, &nsigs) != DKIM_STAT_OK || nsigs < 1 || !DKIM_SIG_CHECK(sigs[0])) {
			fprintf(stderr, "verification did not pass\n");
			exit(3);
		}
		if (j->out != NULL)
			fputs("pass\n", j->out);
	}
	dkim_free(d);
}

static double batch(struct loop_job *j, long n)
{
	double t0 = now();
	for (long i = 0; i < n; i++)
		one(j);
	return now() - t0;
}

static int loop_main(int argc, char **argv)
{
	struct loop_job j;
	char *slash;
	const char **headers, **oversign;
	double min_time, max_time, first, t, t0;
	long n, rounds;
	size_t key_len;
	char line[64];

	if (argc != 15) {
		fprintf(stderr, "usage: opendkim_peer loop OP ALG CANON DOMAIN SELECTOR KEYFILE TXTFILE MSGFILE OUTFILE "
		        "HEADERS OVERSIGN MIN_TIME ROUNDS MAX_TIME\n");
		return 2;
	}
	memset(&j, 0, sizeof j);
	j.sign = strcmp(argv[1], "sign") == 0;
	j.alg = alg_of(argv[2]);
	if (j.alg == DKIM_SIGN_UNKNOWN) {
		fprintf(stderr, "unknown algorithm %s\n", argv[2]);
		return 2;
	}
	slash = strchr(argv[3], '/');
	if (slash == NULL) {
		fprintf(stderr, "CANON must be HEADER/BODY, not %s\n", argv[3]);
		return 2;
	}
	*slash = '\0';
	j.hc = canon_of(argv[3]);
	j.bc = canon_of(slash + 1);
	if (j.hc == DKIM_CANON_UNKNOWN || j.bc == DKIM_CANON_UNKNOWN) {
		fprintf(stderr, "unknown canonicalization %s/%s\n", argv[3], slash + 1);
		return 2;
	}
	j.domain = argv[4];
	j.selector = argv[5];
	if (j.sign)
		j.key = must_read(argv[6], &key_len);
	else {
		record = must_read(argv[7], &record_len);
		while (record_len > 0 && (record[record_len - 1] == '\n' || record[record_len - 1] == '\r'))
			record[--record_len] = '\0';
	}
	j.msg = must_read(argv[8], &j.msg_len);
	headers = name_list(argv[10]);
	oversign = name_list(argv[11]);
	min_time = atof(argv[12]);
	rounds = atol(argv[13]);
	max_time = atof(argv[14]);

	j.lib = dkim_init(NULL, NULL);
	if (j.lib == NULL) {
		fprintf(stderr, "dkim_init failed\n");
		return 2;
	}
	if (!j.sign && dkim_set_key_lookup(j.lib, key_lookup) != DKIM_STAT_OK) {
		fprintf(stderr, "dkim_set_key_lookup failed\n");
		return 2;
	}
	if (headers != NULL &&
	    dkim_options(j.lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, headers, sizeof(char **)) != DKIM_STAT_OK) {
		fprintf(stderr, "cannot set the signed header fields\n");
		return 2;
	}
	if (oversign != NULL &&
	    dkim_options(j.lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, oversign, sizeof(char **)) != DKIM_STAT_OK) {
		fprintf(stderr, "cannot set the oversigned header fields\n");
		return 2;
	}

	j.out = fopen(argv[9], "wb");
	if (j.out == NULL) {
		perror(argv[9]);
		return 2;
	}
	t0 = now();
	one(&j);
	first = now() - t0;
	fclose(j.out);
	j.out = NULL;
	printf("ready %.9f\n", first);
	fflush(stdout);
	if (fgets(line, sizeof line, stdin) == NULL || strncmp(line, "go", 2) != 0)
		return 0;

	n = 1;
	if (first < min_time) {
		for (;;) {
			t = batch(&j, n);
			if (t >= min_time / 4 || n >= (1L << 30))
				break;
			n *= 2;
		}
		n = (long) ceil(n * min_time / (t > 0 ? t : 1e-9));
		if (n < 1)
			n = 1;
		t = min_time;  /* about the length of one round, for the budget below */
	} else {
		t = first;
	}
	if (rounds > 1 && t * rounds > max_time) {
		rounds = (long) (max_time / (t > 0 ? t : 1e-9));
		if (rounds < 1)
			rounds = 1;
	}
	for (long r = 0; r < rounds; r++) {
		t = batch(&j, n);
		printf("round %ld %.9f\n", n, t);
		fflush(stdout);
	}
	printf("done\n");
	dkim_close(j.lib);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "loop") == 0)
		return loop_main(argc - 1, argv + 1);
	return jobs_main(argc, argv);
}
