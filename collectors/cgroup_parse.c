/*
 * cgroup_parse.c: the kernel file formats the cgroup/procfs collector reads
 * (see cgroup_internal.h for each format and the contract): pure functions
 * over a buffer, no allocation, no I/O, tested on fixtures
 * (tests/fixtures/cgroup/) and fuzzed (tests/fuzz/fuzz_cgroup.c).
 *
 * Errors say "line L col C: ..." with the key; the collector puts the
 * file's path in front. Numbers are unsigned decimals that must fit in 64
 * bits: the kernel never writes a sign, an exponent or a fraction in the
 * fields read here (PSI's avg10=0.12 fractions are skipped, never read).
 */
#include "cgroup_internal.h"
#include "err.h"
#include "str.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A cursor over lines, for messages that point at line and column. */
struct cur {
	const char *p, *end;
	const char *line_start;
	int line;
};

static void cur_init(struct cur *c, const char *buf, size_t len)
{
	c->p = c->line_start = buf;
	c->end = buf + len;
	c->line = 1;
}

static int col(const struct cur *c, const char *at)
{
	return (int)(at - c->line_start) + 1;
}

static const char *line_end(const struct cur *c)
{
	const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
	return nl ? nl : c->end;
}

/* Past the line ending at le (and its newline). */
static void next_line(struct cur *c, const char *le)
{
	c->p = le < c->end ? le + 1 : c->end;
	c->line_start = c->p;
	c->line++;
}

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static const char *word_end(const char *p, const char *end)
{
	while (p < end && *p != ' ' && *p != '\t' && *p != '\n')
		p++;
	return p;
}

/* An unsigned decimal at p (before end): 0, -EINVAL (no digit), -ERANGE. */
static int u64_at(const char *p, const char *end, uint64_t *v, const char **next)
{
	uint64_t x = 0;
	const char *s = p;
	while (p < end && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -ERANGE;
		x = x * 10 + d;
		p++;
	}
	if (p == s)
		return -EINVAL;
	*v = x;
	*next = p;
	return 0;
}

static bool word_is(const char *p, const char *we, const char *w)
{
	size_t n = strlen(w);
	return (size_t)(we - p) == n && !memcmp(p, w, n);
}

static int num_err(struct tally_err *e, int rc, const struct cur *c, const char *at, const char *key, size_t klen)
{
	if (rc == -ERANGE)
		return err_set(e, -ERANGE, "line %d col %d: key '%.*s': number past 2^64 - 1", c->line, col(c, at),
			       (int)klen, key);
	return err_set(e, -EINVAL, "line %d col %d: key '%.*s': expected an unsigned integer", c->line, col(c, at),
		       (int)klen, key);
}

int cg_parse_keyed(const char *buf, size_t len, unsigned flags, const char *const *keys, int n_keys,
		   uint64_t *out, uint32_t *found, struct tally_err *e)
{
	struct cur c;
	*found = 0;
	for (cur_init(&c, buf, len); c.p < c.end;) {
		const char *le = line_end(&c);
		const char *k = c.p, *ke = word_end(k, le);
		if (ke == k) {
			if (le == k) {           /* an empty line: only as the last one */
				next_line(&c, le);
				continue;
			}
			return err_set(e, -EINVAL, "line %d col %d: expected 'key value'", c.line, col(&c, k));
		}
		const char *klast = ke;
		if ((flags & CG_KEYED_MEMINFO) && klast > k && klast[-1] == ':')
			klast--;
		int i;
		for (i = 0; i < n_keys; i++)
			if (word_is(k, klast, keys[i]))
				break;
		const char *v = skip_blanks(ke, le);
		if (v == le)
			return err_set(e, -EINVAL, "line %d col %d: key '%.*s' has no value", c.line, col(&c, v),
				       (int)(klast - k), k);
		if (i < n_keys) {
			uint64_t x;
			const char *ve;
			int rc = u64_at(v, le, &x, &ve);
			if (!rc && ve < le && *ve != ' ' && *ve != '\t')
				rc = -EINVAL;   /* "12x3" is not 12 */
			if (rc)
				return num_err(e, rc, &c, v, k, (size_t)(klast - k));
			const char *u = skip_blanks(ve, le);
			if (u < le && (flags & CG_KEYED_MEMINFO) && word_is(u, word_end(u, le), "kB")) {
				if (x > UINT64_MAX / 1024)
					return num_err(e, -ERANGE, &c, v, k, (size_t)(klast - k));
				x *= 1024;
				u = skip_blanks(word_end(u, le), le);
			}
			if (u != le)
				return err_set(e, -EINVAL, "line %d col %d: key '%.*s': unexpected '%.*s' after the"
					       " value", c.line, col(&c, u), (int)(klast - k), k,
					       (int)(word_end(u, le) - u), u);
			if (*found & (1u << i))
				return err_set(e, -EINVAL, "line %d col %d: key '%s' given twice", c.line,
					       col(&c, k), keys[i]);
			out[i] = x;
			*found |= 1u << i;
		}
		next_line(&c, le);
	}
	return 0;
}

int cg_parse_u64(const char *buf, size_t len, uint64_t *out, struct tally_err *e)
{
	struct cur c;
	const char *ve;
	cur_init(&c, buf, len);
	int rc = u64_at(c.p, c.end, out, &ve);
	if (rc)
		return num_err(e, rc, &c, c.p, "value", 5);
	if (ve < c.end && !(*ve == '\n' && ve + 1 == c.end))
		return err_set(e, -EINVAL, "line 1 col %d: key 'value': one number and a newline expected",
			       col(&c, ve));
	return 0;
}

int cg_parse_psi(const char *buf, size_t len, struct cg_psi *out, struct tally_err *e)
{
	struct cur c;
	memset(out, 0, sizeof(*out));
	for (cur_init(&c, buf, len); c.p < c.end;) {
		const char *le = line_end(&c);
		if (le == c.p) {
			next_line(&c, le);
			continue;
		}
		const char *k = c.p, *ke = word_end(k, le);
		bool some = word_is(k, ke, "some");
		if (!some && !word_is(k, ke, "full"))
			return err_set(e, -EINVAL, "line %d col 1: expected 'some' or 'full', got '%.*s'", c.line,
				       (int)(ke - k), k);
		if (some ? out->have_some : out->have_full)
			return err_set(e, -EINVAL, "line %d col 1: '%s' given twice", c.line, some ? "some" : "full");
		bool total = false;
		for (const char *f = skip_blanks(ke, le); f < le; f = skip_blanks(word_end(f, le), le)) {
			const char *fe = word_end(f, le), *eq = memchr(f, '=', (size_t)(fe - f));
			if (!eq)
				return err_set(e, -EINVAL, "line %d col %d: expected key=value, got '%.*s'", c.line,
					       col(&c, f), (int)(fe - f), f);
			if (!word_is(f, eq, "total"))
				continue; /* avg10=, avg60=, avg300=: percentages, not read */
			uint64_t x;
			const char *ve;
			int rc = u64_at(eq + 1, fe, &x, &ve);
			if (!rc && ve != fe)
				rc = -EINVAL;
			if (rc)
				return num_err(e, rc, &c, eq + 1, "total", 5);
			*(some ? &out->some_us : &out->full_us) = x;
			total = true;
		}
		if (!total)
			return err_set(e, -EINVAL, "line %d col %d: key 'total' missing from the '%s' line", c.line,
				       col(&c, le), some ? "some" : "full");
		*(some ? &out->have_some : &out->have_full) = true;
		next_line(&c, le);
	}
	if (!out->have_some)
		return err_set(e, -EINVAL, "line %d col 1: key 'some': no 'some' line", c.line);
	return 0;
}

/* "MAJ:MIN" at p: 0 and *next past it, or -EINVAL. */
static int devno_at(const char *p, const char *end, uint32_t *maj, uint32_t *min, const char **next)
{
	uint64_t a, b;
	const char *q;
	if (u64_at(p, end, &a, &q) || q >= end || *q != ':' || u64_at(q + 1, end, &b, &q) || a > UINT32_MAX ||
	    b > UINT32_MAX)
		return -EINVAL;
	*maj = (uint32_t)a;
	*min = (uint32_t)b;
	*next = q;
	return 0;
}

/* The entry of devs for (maj, min), appended when new; NULL when full. */
static struct cg_io_dev *io_dev(struct cg_io_dev *devs, int max, int *n, uint32_t maj, uint32_t min)
{
	for (int i = 0; i < *n; i++)
		if (devs[i].major == maj && devs[i].minor == min)
			return &devs[i];
	if (*n >= max)
		return NULL;
	struct cg_io_dev *d = &devs[(*n)++];
	memset(d, 0, sizeof(*d));
	d->major = maj;
	d->minor = min;
	return d;
}

int cg_parse_io_stat(const char *buf, size_t len, struct cg_io_dev *devs, int max, int *n, int *skipped,
		     struct tally_err *e)
{
	static const struct { const char *k; uint32_t bit; } f[] = {
		{ "rbytes", CG_IO_RBYTES }, { "wbytes", CG_IO_WBYTES }, { "rios", CG_IO_RIOS }, { "wios", CG_IO_WIOS },
	};
	struct cur c;
	*n = *skipped = 0;
	for (cur_init(&c, buf, len); c.p < c.end;) {
		const char *le = line_end(&c), *q;
		uint32_t maj, min;
		if (le == c.p) {
			next_line(&c, le);
			continue;
		}
		if (devno_at(c.p, le, &maj, &min, &q) || (q < le && *q != ' '))
			return err_set(e, -EINVAL, "line %d col 1: expected a device MAJ:MIN, got '%.*s'", c.line,
				       (int)(word_end(c.p, le) - c.p), c.p);
		struct cg_io_dev tmp, *d = io_dev(devs, max, n, maj, min);
		if (!d) {
			(*skipped)++;
			d = &tmp;         /* still checked, then forgotten */
			memset(d, 0, sizeof(*d));
		} else if (d->have) {
			return err_set(e, -EINVAL, "line %d col 1: device %u:%u given twice", c.line, maj, min);
		}
		for (const char *w = skip_blanks(q, le); w < le; w = skip_blanks(word_end(w, le), le)) {
			const char *we = word_end(w, le), *eq = memchr(w, '=', (size_t)(we - w));
			if (!eq)
				return err_set(e, -EINVAL, "line %d col %d: expected key=value, got '%.*s'", c.line,
					       col(&c, w), (int)(we - w), w);
			for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
				if (!word_is(w, eq, f[i].k))
					continue; /* dbytes, dios, cost.vrate=100.00, ...: not read */
				uint64_t x;
				const char *ve;
				int rc = u64_at(eq + 1, we, &x, &ve);
				if (!rc && ve != we)
					rc = -EINVAL;
				if (rc)
					return num_err(e, rc, &c, eq + 1, w, (size_t)(eq - w));
				if (d->have & f[i].bit)
					return err_set(e, -EINVAL, "line %d col %d: key '%s' given twice", c.line,
						       col(&c, w), f[i].k);
				d->have |= f[i].bit;
				*(i == 0 ? &d->rbytes : i == 1 ? &d->wbytes : i == 2 ? &d->rios : &d->wios) = x;
			}
		}
		next_line(&c, le);
	}
	return 0;
}

int cg_parse_blkio_v1(const char *buf, size_t len, bool bytes, struct cg_io_dev *devs, int max, int *n,
		      int *skipped, struct tally_err *e)
{
	struct cur c;
	for (cur_init(&c, buf, len); c.p < c.end;) {
		const char *le = line_end(&c), *q;
		uint32_t maj, min;
		const char *w = c.p, *we = word_end(w, le);
		if (le == c.p) {
			next_line(&c, le);
			continue;
		}
		if (word_is(w, we, "Total")) {   /* the grand total of every device: not read */
			next_line(&c, le);
			continue;
		}
		if (devno_at(w, le, &maj, &min, &q) || q != we)
			return err_set(e, -EINVAL, "line %d col 1: expected a device MAJ:MIN or 'Total', got '%.*s'",
				       c.line, (int)(we - w), w);
		const char *k = skip_blanks(we, le), *ke = word_end(k, le);
		const char *v = skip_blanks(ke, le);
		uint64_t x;
		const char *ve;
		int rc = u64_at(v, le, &x, &ve);
		if (rc || skip_blanks(ve, le) != le)
			return num_err(e, rc ? rc : -EINVAL, &c, v, k, (size_t)(ke - k));
		uint32_t bit = 0;
		if (word_is(k, ke, "Read"))
			bit = bytes ? CG_IO_RBYTES : CG_IO_RIOS;
		else if (word_is(k, ke, "Write"))
			bit = bytes ? CG_IO_WBYTES : CG_IO_WIOS;
		else if (!word_is(k, ke, "Sync") && !word_is(k, ke, "Async") && !word_is(k, ke, "Discard") &&
			 !word_is(k, ke, "Total"))
			return err_set(e, -EINVAL, "line %d col %d: unknown operation '%.*s' (Read, Write, Sync,"
				       " Async, Discard, Total)", c.line, col(&c, k), (int)(ke - k), k);
		if (bit) {
			struct cg_io_dev *d = io_dev(devs, max, n, maj, min);
			if (!d) {
				(*skipped)++;
			} else {
				if (d->have & bit)
					return err_set(e, -EINVAL, "line %d col %d: device %u:%u: '%.*s' given twice",
						       c.line, col(&c, k), maj, min, (int)(ke - k), k);
				d->have |= bit;
				*(bit == CG_IO_RBYTES ? &d->rbytes : bit == CG_IO_WBYTES ? &d->wbytes :
				  bit == CG_IO_RIOS ? &d->rios : &d->wios) = x;
			}
		}
		next_line(&c, le);
	}
	return 0;
}

/* Up to max unsigned decimals separated by blanks from p to le; the count
 * read into *got. -EINVAL names field i (names[i]) that is not a number. */
static int numbers(const struct cur *c, const char *p, const char *le, uint64_t *v, int max, int *got,
		   const char *const *names, struct tally_err *e)
{
	int i = 0;
	for (p = skip_blanks(p, le); p < le && i < max; p = skip_blanks(p, le), i++) {
		const char *ve;
		int rc = u64_at(p, le, &v[i], &ve);
		if (!rc && ve < le && *ve != ' ' && *ve != '\t')
			rc = -EINVAL;
		if (rc)
			return num_err(e, rc, c, p, names[i], strlen(names[i]));
		p = ve;
	}
	*got = i;
	return 0;
}

int cg_parse_proc_stat(const char *buf, size_t len, struct cg_host_cpu *out, struct tally_err *e)
{
	static const char *const names[] = { "user", "nice", "system", "idle", "iowait", "irq", "softirq",
					     "steal", "guest", "guest_nice" };
	struct cur c;
	memset(out, 0, sizeof(*out));
	for (cur_init(&c, buf, len); c.p < c.end;) {
		const char *le = line_end(&c), *we = word_end(c.p, le);
		if (!word_is(c.p, we, "cpu")) {
			next_line(&c, le);
			continue;
		}
		uint64_t v[10] = { 0 };
		int got;
		int rc = numbers(&c, we, le, v, 10, &got, names, e);
		if (rc)
			return rc;
		if (got < 4)
			return err_set(e, -EINVAL, "line %d col %d: key 'cpu': %d fields, at least 4 expected"
				       " (user nice system idle)", c.line, col(&c, le), got);
		out->user = v[0];
		out->nice = v[1];
		out->system = v[2];
		out->idle = v[3];
		out->iowait = v[4];
		out->irq = v[5];
		out->softirq = v[6];
		out->steal = v[7];
		out->fields = got;
		return 0;
	}
	return err_set(e, -EINVAL, "line %d col 1: key 'cpu': no 'cpu' line", c.line);
}

int cg_parse_diskstats(const char *buf, size_t len, struct cg_disk *disks, int max, int *n, int *skipped,
		       struct tally_err *e)
{
	static const char *const names[] = { "reads", "reads_merged", "sectors_read", "ms_reading", "writes",
					     "writes_merged", "sectors_written", "ms_writing", "ios_in_progress",
					     "ms_io", "weighted_ms_io", "discards", "discards_merged",
					     "sectors_discarded", "ms_discarding", "flushes", "ms_flushing",
					     "field18", "field19", "field20" };
	struct cur c;
	*n = *skipped = 0;
	for (cur_init(&c, buf, len); c.p < c.end;) {
		const char *le = line_end(&c);
		const char *p = skip_blanks(c.p, le);
		if (p == le) {
			next_line(&c, le);
			continue;
		}
		uint64_t maj, min, v[20];
		const char *q;
		int got;
		if (u64_at(p, le, &maj, &q) || maj > UINT32_MAX || (p = skip_blanks(q, le)) == q ||
		    u64_at(p, le, &min, &q) || min > UINT32_MAX || (p = skip_blanks(q, le)) == q)
			return err_set(e, -EINVAL, "line %d col %d: expected 'major minor name' and the counters",
				       c.line, col(&c, p));
		const char *name = p, *ne = word_end(p, le);
		if ((size_t)(ne - name) >= sizeof(disks[0].name))
			return err_set(e, -EINVAL, "line %d col %d: device name '%.*s' longer than %zu bytes", c.line,
				       col(&c, name), (int)(ne - name), name, sizeof(disks[0].name) - 1);
		int rc = numbers(&c, ne, le, v, 20, &got, names, e);
		if (rc)
			return rc;
		if (got < 7)
			return err_set(e, -EINVAL, "line %d col %d: device '%.*s': %d counters, at least 7 expected"
				       " (reads .. sectors_written)", c.line, col(&c, le), (int)(ne - name), name, got);
		if (*n >= max) {
			(*skipped)++;
		} else {
			struct cg_disk *d = &disks[(*n)++];
			memcpy(d->name, name, (size_t)(ne - name));
			d->name[ne - name] = '\0';
			d->major = (uint32_t)maj;
			d->minor = (uint32_t)min;
			d->rd_ios = v[0];
			d->rd_sectors = v[2];
			d->wr_ios = v[4];
			d->wr_sectors = v[6];
		}
		next_line(&c, le);
	}
	return 0;
}

int cg_parse_net_dev(const char *buf, size_t len, struct cg_netif *ifs, int max, int *n, int *skipped,
		     struct tally_err *e)
{
	static const char *const names[] = { "rx_bytes", "rx_packets", "rx_errs", "rx_drop", "rx_fifo",
					     "rx_frame", "rx_compressed", "rx_multicast", "tx_bytes", "tx_packets",
					     "tx_errs", "tx_drop", "tx_fifo", "tx_colls", "tx_carrier",
					     "tx_compressed", "extra" };
	struct cur c;
	*n = *skipped = 0;
	cur_init(&c, buf, len);
	/* "Inter-|   Receive ..." and " face |bytes    packets ...": the
	 * column order the numbers below follow */
	for (int h = 0; h < 2; h++) {
		const char *le = line_end(&c);
		if (!memchr(c.p, '|', (size_t)(le - c.p)))
			return err_set(e, -EINVAL, "line %d col 1: expected the header of /proc/net/dev (with '|')",
				       c.line);
		next_line(&c, le);
	}
	while (c.p < c.end) {
		const char *le = line_end(&c);
		const char *p = skip_blanks(c.p, le);
		if (p == le) {
			next_line(&c, le);
			continue;
		}
		const char *colon = memchr(p, ':', (size_t)(le - p));
		if (!colon)
			return err_set(e, -EINVAL, "line %d col %d: expected 'name:' and 16 counters", c.line,
				       col(&c, p));
		if (colon == p || (size_t)(colon - p) >= sizeof(ifs[0].name) || memchr(p, ' ', (size_t)(colon - p)))
			return err_set(e, -EINVAL, "line %d col %d: interface name '%.*s' is not a name of at most"
				       " %zu bytes", c.line, col(&c, p), (int)(colon - p), p, sizeof(ifs[0].name) - 1);
		uint64_t v[17];
		int got;
		int rc = numbers(&c, colon + 1, le, v, 17, &got, names, e);
		if (rc)
			return rc;
		if (got != 16)
			return err_set(e, -EINVAL, "line %d col %d: interface '%.*s': %d counters, 16 expected", c.line,
				       col(&c, le), (int)(colon - p), p, got);
		if (*n >= max) {
			(*skipped)++;
		} else {
			struct cg_netif *f = &ifs[(*n)++];
			memcpy(f->name, p, (size_t)(colon - p));
			f->name[colon - p] = '\0';
			f->rx_bytes = v[0];
			f->rx_packets = v[1];
			f->tx_bytes = v[8];
			f->tx_packets = v[9];
		}
		next_line(&c, le);
	}
	return 0;
}

uint64_t cg_counter_extend(struct cg_ext *x, uint64_t raw, bool same_life)
{
	if (x->have && raw < x->last_raw) {
		if (same_life && x->last_raw <= UINT32_MAX && x->offset <= UINT64_MAX - (1ULL << 32))
			x->offset += 1ULL << 32;
		else
			x->offset = 0;
	}
	x->last_raw = raw;
	x->have = true;
	return x->offset + raw;
}

/* ---- QEMU's command line ---- */

static int hexval(int ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
	       ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

static bool uuid_at(const char *s, size_t n)
{
	if (n < 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : hexval((unsigned char)s[i]) < 0)
			return false;
	}
	return true;
}

bool cg_is_uuid(const char *s)
{
	return strlen(s) == 36 && uuid_at(s, 36);
}

bool cg_find_uuid(const char *s, char *out)
{
	size_t n = strlen(s);
	for (size_t i = 0; i + 36 <= n; i++)
		if (uuid_at(s + i, n - i) && (i == 0 || hexval((unsigned char)s[i - 1]) < 0) &&
		    (i + 36 == n || hexval((unsigned char)s[i + 36]) < 0)) {
			for (int k = 0; k < 36; k++)
				out[k] = (char)tolower((unsigned char)s[i + k]);
			out[36] = '\0';
			return true;
		}
	return false;
}

bool cg_parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		int a = hexval((unsigned char)s[3 * i]), b = a < 0 ? -1 : hexval((unsigned char)s[3 * i + 1]);
		if (a < 0 || b < 0 || s[3 * i + 2] != (i == 5 ? '\0' : ':'))
			return false;
		mac[i] = (uint8_t)(a << 4 | b);
	}
	return true;
}

/* The value of key in one argument (a, alen): "k=v" between commas, or
 * "\"k\":\"v\"" / "\"k\":N" in JSON. Copied (at most size - 1 bytes) into
 * out; false when the key is not there. */
static bool arg_value(const char *a, size_t alen, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);
	const char *end = a + alen, *v = NULL, *ve = NULL;
	if (alen && a[0] == '{') {
		for (const char *p = a; p + kl + 3 <= end; p++) {
			if (p[0] != '"' || memcmp(p + 1, key, kl) || p[kl + 1] != '"')
				continue;
			const char *q = p + kl + 2;
			while (q < end && (*q == ' ' || *q == ':'))
				q++;
			if (q < end && *q == '"') {
				v = q + 1;
				ve = memchr(v, '"', (size_t)(end - v));
			} else {
				v = q;
				for (ve = q; ve < end && *ve != ',' && *ve != '}' && *ve != ' '; ve++)
					;
			}
			break;
		}
	} else {
		for (const char *p = a; p + kl < end; p++) {
			if ((p != a && p[-1] != ',') || memcmp(p, key, kl) || p[kl] != '=')
				continue;
			v = p + kl + 1;
			ve = memchr(v, ',', (size_t)(end - v));
			if (!ve)
				ve = end;
			break;
		}
	}
	if (!v || !ve)
		return false;
	size_t n = (size_t)(ve - v) < size - 1 ? (size_t)(ve - v) : size - 1;
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

/* -m: "512" (MiB), "512M", "2G", "size=2G,slots=..", {"size":...}: bytes. */
static uint64_t mem_arg(const char *a, size_t alen)
{
	char v[32];
	if (!arg_value(a, alen, "size", v, sizeof(v))) {
		size_t n = alen < sizeof(v) - 1 ? alen : sizeof(v) - 1;
		memcpy(v, a, n);
		v[n] = '\0';
		char *comma = strchr(v, ',');
		if (comma)
			*comma = '\0';
	}
	uint64_t x;
	const char *ve;
	if (u64_at(v, v + strlen(v), &x, &ve))
		return 0;
	uint64_t mul = 1ULL << 20; /* QEMU's default unit for -m */
	switch (*ve) {
	case 'k': case 'K': mul = 1ULL << 10; break;
	case 'm': case 'M': mul = 1ULL << 20; break;
	case 'g': case 'G': mul = 1ULL << 30; break;
	case 't': case 'T': mul = 1ULL << 40; break;
	case '\0': break;
	default:
		if (*ve >= '0')
			return 0;
	}
	if (!*ve && arg_value(a, alen, "size", v, sizeof(v)))
		mul = 1; /* QOM-style size= is in bytes */
	return x > UINT64_MAX / mul ? 0 : x * mul;
}

int cg_parse_qemu_cmdline(const char *buf, size_t len, struct cg_qemu *out, struct tally_err *e)
{
	const char *end = buf + len;
	const char *argv[4] = { NULL };   /* this arg and the previous one */
	size_t alen[4] = { 0 };
	int i = 0;
	char v[64];

	memset(out, 0, sizeof(*out));
	for (const char *p = buf; p < end; i++) {
		const char *z = memchr(p, '\0', (size_t)(end - p));
		const char *ae = z ? z : end;
		const char *a = p;
		size_t n = (size_t)(ae - a);
		p = z ? z + 1 : end;
		if (i == 0) {
			const char *base = a;
			for (const char *s = a; s < ae; s++)
				if (*s == '/')
					base = s + 1;
			out->is_qemu = (size_t)(ae - base) >= 4 && !memcmp(base, "qemu", 4);
		}
		const char *opt = argv[1];
		size_t olen = alen[1];
		argv[1] = a;
		alen[1] = n;
		if (!opt || olen < 2 || opt[0] != '-')
			continue;
		if (opt[1] == '-') {   /* --uuid is -uuid to QEMU */
			opt++;
			olen--;
		}
#define OPT(s) (olen == strlen(s) && !memcmp(opt, s, olen))
		if (OPT("-uuid")) {
			if (n != 36 || !uuid_at(a, n))
				return err_set(e, -EINVAL, "arg %d: key '-uuid': '%.*s' is not a UUID", i + 1,
					       (int)(n > 64 ? 64 : n), a);
			for (int k = 0; k < 36; k++)
				out->uuid[k] = (char)tolower((unsigned char)a[k]);
			out->uuid[36] = '\0';
			out->is_qemu = true;
		} else if (OPT("-name")) {
			if (!arg_value(a, n, "guest", out->name, sizeof(out->name))) {
				size_t k = n < sizeof(out->name) - 1 ? n : sizeof(out->name) - 1;
				const char *comma = memchr(a, ',', k);
				if (comma)
					k = (size_t)(comma - a);
				memcpy(out->name, a, k);
				out->name[k] = '\0';
			}
			out->is_qemu = true;
		} else if (OPT("-smp")) {
			uint64_t x;
			const char *ve;
			if (arg_value(a, n, "cpus", v, sizeof(v)) ? !u64_at(v, v + strlen(v), &x, &ve)
								    : !u64_at(a, a + n, &x, &ve))
				out->vcpus = x > UINT32_MAX ? 0 : (uint32_t)x;
		} else if (OPT("-m")) {
			out->memory_bytes = mem_arg(a, n);
		} else if (OPT("-device") || OPT("-net")) {
			if (out->n_macs < CG_MAX_NICS && arg_value(a, n, "mac", v, sizeof(v))) {
				uint8_t m[6];
				if (cg_parse_mac(v, m)) {
					snprintf(out->macs[out->n_macs], sizeof(out->macs[0]), "%02x:%02x:%02x:%02x:%02x:%02x",
						 m[0], m[1], m[2], m[3], m[4], m[5]);
					out->n_macs++;
				}
			}
		} else if (OPT("-netdev")) {
			if (out->n_ifnames < CG_MAX_NICS &&
			    arg_value(a, n, "ifname", out->ifnames[out->n_ifnames], sizeof(out->ifnames[0])) &&
			    out->ifnames[out->n_ifnames][0])
				out->n_ifnames++;
		}
#undef OPT
	}
	return 0;
}

int cg_parse_fdinfo_iff(const char *buf, size_t len, char *name, size_t size)
{
	for (const char *p = buf, *end = buf + len; p + 5 <= end;) {
		const char *le = memchr(p, '\n', (size_t)(end - p));
		if (!le)
			le = end;
		if (!memcmp(p, "iff:", 4)) {
			const char *v = skip_blanks(p + 4, le);
			size_t n = (size_t)(le - v);
			if (!n || n >= size)
				return -ENOENT;
			memcpy(name, v, n);
			name[n] = '\0';
			return 0;
		}
		p = le + 1;
	}
	return -ENOENT;
}

int cg_parse_first_pid(const char *buf, size_t len, int *pid, struct tally_err *e)
{
	struct cur c;
	uint64_t x;
	const char *ve;
	cur_init(&c, buf, len);
	if (len == 0)
		return -ENOENT;
	int rc = u64_at(c.p, c.end, &x, &ve);
	if (rc || x == 0 || x > INT32_MAX || (ve < c.end && *ve != '\n'))
		return err_set(e, -EINVAL, "line 1 col 1: key 'pid': expected a process id");
	*pid = (int)x;
	return 0;
}

int cg_parse_events(const char *buf, size_t len, bool *populated, struct tally_err *e)
{
	static const char *const keys[] = { "populated" };
	uint64_t v = 0;
	uint32_t found;
	int rc = cg_parse_keyed(buf, len, 0, keys, 1, &v, &found, e);
	if (rc)
		return rc;
	if (!found || v > 1)
		return err_set(e, -EINVAL, "line 1 col 1: key 'populated': 0 or 1 expected");
	*populated = v == 1;
	return 0;
}
