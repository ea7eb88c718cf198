/*
 * Timing loop over libopendkim for the fastdkim benchmarks (benchmarks/run.py).
 *
 * Built by the benchmark into a temporary directory with the system compiler:
 *     cc -O2 -o opendkim_loop opendkim_loop.c -lopendkim
 *
 * Usage:
 *     opendkim_loop OP ALG CANON DOMAIN SELECTOR KEYFILE TXTFILE MSGFILE OUTFILE
 *                   HEADERS OVERSIGN MIN_TIME ROUNDS MAX_TIME
 *
 * OP is "sign" or "verify"; ALG "rsa-sha256" or "ed25519-sha256"; CANON e.g.
 * "relaxed/simple"; HEADERS and OVERSIGN are comma-separated field names ("-"
 * for none).  KEYFILE is the PEM private key (sign), TXTFILE the key record
 * value (verify), MSGFILE the message in wire form.
 *
 * The protocol is the one every external peer of the benchmark follows:
 *   1. one operation; its product goes to OUTFILE (sign: the DKIM-Signature
 *      field, CRLF-terminated; verify: "pass") and "ready SECONDS" is printed;
 *   2. the program waits for a line on standard input: "go" goes on (the
 *      harness has checked OUTFILE), anything else ends it;
 *   3. batches of 1, 2, 4, ... operations until one lasts MIN_TIME/4 (skipped
 *      when the first operation alone lasted MIN_TIME), then the number of
 *      operations per round is set so that a round lasts about MIN_TIME;
 *   4. ROUNDS rounds (fewer if they would exceed MAX_TIME seconds in all),
 *      each printed as "round N SECONDS"; then "done".
 * Every verification in every round must pass, or the program exits with 3.
 *
 * No DNS: a key lookup callback (dkim_set_key_lookup) hands the library the
 * record read from TXTFILE, so no query is ever sent.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opendkim/dkim.h>

static unsigned char *record;   /* key record served by the lookup callback */
static size_t record_len;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long size;

	if (f == NULL) {
		perror(path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t) size + 1);
	if (buf == NULL || fread(buf, 1, (size_t) size, f) != (size_t) size) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	buf[size] = '\0';
	fclose(f);
	*len = (size_t) size;
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
	for (p = strtok(spec, ","); p != NULL; p = strtok(NULL, ","))
		out[i++] = p;
	out[i] = NULL;
	return out;
}

static dkim_canon_t canon_of(const char *s, size_t len)
{
	if (len == 6 && strncmp(s, "simple", 6) == 0)
		return DKIM_CANON_SIMPLE;
	if (len == 7 && strncmp(s, "relaxed", 7) == 0)
		return DKIM_CANON_RELAXED;
	fprintf(stderr, "unknown canonicalization %.*s\n", (int) len, s);
	exit(2);
}

struct job {
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

static void one(struct job *j)
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
		if (j->out != NULL) {
			/* the library folds with bare LF: write the field in wire form */
			fputs(DKIM_SIGNHEADER ": ", j->out);
			for (size_t i = 0; i < len; i++) {
				if (hdr[i] == '\n' && (i == 0 || hdr[i - 1] != '\r'))
					fputc('\r', j->out);
				fputc(hdr[i], j->out);
			}
			fputs("\r\n", j->out);
		}
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

static double batch(struct job *j, long n)
{
	double t0 = now();
	for (long i = 0; i < n; i++)
		one(j);
	return now() - t0;
}

int main(int argc, char **argv)
{
	struct job j;
	const char *slash;
	const char **headers, **oversign;
	double min_time, max_time, first, t, t0;
	long n, rounds;
	size_t key_len;
	char line[64];

	if (argc != 15) {
		fprintf(stderr, "usage: %s OP ALG CANON DOMAIN SELECTOR KEYFILE TXTFILE MSGFILE OUTFILE "
		        "HEADERS OVERSIGN MIN_TIME ROUNDS MAX_TIME\n", argv[0]);
		return 2;
	}
	memset(&j, 0, sizeof j);
	j.sign = strcmp(argv[1], "sign") == 0;
	if (strcmp(argv[2], "rsa-sha256") == 0)
		j.alg = DKIM_SIGN_RSASHA256;
	else if (strcmp(argv[2], "ed25519-sha256") == 0)
		j.alg = DKIM_SIGN_ED25519SHA256;
	else {
		fprintf(stderr, "unknown algorithm %s\n", argv[2]);
		return 2;
	}
	slash = strchr(argv[3], '/');
	if (slash == NULL)
		return 2;
	j.hc = canon_of(argv[3], (size_t) (slash - argv[3]));
	j.bc = canon_of(slash + 1, strlen(slash + 1));
	j.domain = argv[4];
	j.selector = argv[5];
	if (j.sign)
		j.key = slurp(argv[6], &key_len);
	else {
		record = slurp(argv[7], &record_len);
		while (record_len > 0 && (record[record_len - 1] == '\n' || record[record_len - 1] == '\r'))
			record[--record_len] = '\0';
	}
	j.msg = slurp(argv[8], &j.msg_len);
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
