/*
 * alerts.c: the Alertmanager v2 client (see alerts.h): render the committed
 * alerts as postable alerts and POST them from a thread of its own, with
 * libcurl (timeouts bounded by alerts.timeout) and a doubling back-off.
 */
#include "alerts.h"
#include "err.h"
#include "log.h"
#include "str.h"
#include "tallytime.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WAKE_NS (250 * 1000 * 1000LL)   /* how often the thread looks at the clock and stop flag */

struct alerts_sender {
	const struct alerting_config *c;
	struct alert_store *store;
	pthread_t thread;
	atomic_int stop;
	char url[300];
	struct complaint complaint;
	uint64_t sent_version;       /* alert_snap.version last delivered */
};

json_t *alerts_pairs_json(const char *s)
{
	json_t *o = json_object();
	for (const char *p = s; p && *p;) {
		const char *nl = strchr(p, '\n'), *eq = strchr(p, '=');
		if (!nl)
			nl = p + strlen(p);
		if (!eq || eq > nl)
			break;
		char k[64];
		size_t kl = (size_t)(eq - p);
		if (kl < sizeof(k)) {
			memcpy(k, p, kl);
			k[kl] = '\0';
			json_object_set_new(o, k, json_stringn(eq + 1, (size_t)(nl - eq - 1)));
		}
		p = *nl ? nl + 1 : nl;
	}
	return o;
}

static json_t *iso(int64_t t_ns)
{
	char b[48];
	return json_string(time_format_iso(t_ns, b, sizeof(b)));
}

char *alerts_render(const struct alert_snap *snap, int64_t now_ns, int64_t resend_ns,
		    const char *generator_url, size_t *n_alerts)
{
	json_t *arr = json_array();
	*n_alerts = 0;
	if (!arr)
		return NULL;
	for (size_t i = 0; snap && i < snap->n; i++) {
		const struct alert_view *v = &snap->v[i];
		if (v->state != ALERT_FIRING && v->state != ALERT_RESOLVED)
			continue;
		json_t *o = json_object();
		json_object_set_new(o, "labels", alerts_pairs_json(v->labels));
		json_object_set_new(o, "annotations", alerts_pairs_json(v->annotations));
		json_object_set_new(o, "startsAt", iso(v->fired_ns));
		if (v->state == ALERT_FIRING) {
			/* a lease: Alertmanager resolves it itself if we stop re-sending.
			 * Never before startsAt (a fast-forward run can be ahead of the
			 * wall clock), or Alertmanager refuses the whole POST */
			int64_t lease = now_ns > v->fired_ns ? now_ns : v->fired_ns;
			json_object_set_new(o, "endsAt", iso(lease + 4 * resend_ns));
		} else {
			int64_t end = v->resolved_ns > v->fired_ns ? v->resolved_ns : v->fired_ns + 1;
			json_object_set_new(o, "endsAt", iso(end));
		}
		if (generator_url && generator_url[0])
			json_object_set_new(o, "generatorURL", json_string(generator_url));
		json_array_append_new(arr, o);
		(*n_alerts)++;
	}
	char *s = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(arr);
	return s;
}

static size_t sink(char *p, size_t sz, size_t n, void *ctx)
{
	char *buf = ctx;
	size_t have = strlen(buf), add = sz * n;
	if (have < 255) {
		size_t k = add < 255 - have ? add : 255 - have;
		memcpy(buf + have, p, k);
		buf[have + k] = '\0';
	}
	return sz * n;
}

/* POST body; 0, or -EIO with why in e. */
static int post(struct alerts_sender *s, const char *body, struct tally_err *e)
{
	char reply[256] = "";
	long status = 0;
	int rc = 0;
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (!h || !hdr) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	long ms = (long)(s->c->timeout_ns / 1000000);
	curl_easy_setopt(h, CURLOPT_URL, s->url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)reply);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tallyd");
	CURLcode cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		rc = err_set(e, -EIO, "%s: %s", s->url, curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		rc = err_set(e, -EIO, "%s: HTTP %ld: %.200s", s->url, status, reply);
out:
	curl_slist_free_all(hdr);
	if (h)
		curl_easy_cleanup(h);
	return rc;
}

static uint64_t current_version(struct alerts_sender *s)
{
	struct alert_snap *snap = alert_acquire(s->store);
	uint64_t v = snap ? snap->version : 0;
	alert_put(s->store, snap);
	return v;
}

/* Send the current snapshot. 0 when delivered (or nothing to deliver). */
static int send_current(struct alerts_sender *s)
{
	struct tally_err e = { 0 };
	size_t n = 0;
	struct alert_snap *snap = alert_acquire(s->store);
	uint64_t version = snap ? snap->version : 0;
	char *body = alerts_render(snap, time_now_ns(), s->c->resend_ns, s->c->generator_url, &n);
	alert_put(s->store, snap);
	if (!body)
		return -ENOMEM;
	int rc = n ? post(s, body, &e) : 0;
	free(body);
	if (n)
		alert_store_count_post(s->store, rc == 0, n, time_now_ns());
	if (rc) {
		complain(&s->complaint, LOG_WARN, "alerts: cannot reach alertmanager: %s; retrying", e.msg);
	} else {
		if (s->complaint.window_ns)
			complaint_clear(&s->complaint, "alerts: alertmanager reachable again");
		s->sent_version = version;
	}
	return rc;
}

static bool anything_to_resend(struct alerts_sender *s)
{
	bool any = false;
	struct alert_snap *snap = alert_acquire(s->store);
	for (size_t i = 0; snap && i < snap->n && !any; i++)
		any = snap->v[i].state == ALERT_FIRING || snap->v[i].state == ALERT_RESOLVED;
	alert_put(s->store, snap);
	return any;
}

static void *run(void *arg)
{
	struct alerts_sender *s = arg;
	uint64_t seen = 0;
	int64_t next_resend = 0, next_try = 0, backoff = 0;

	while (!atomic_load(&s->stop)) {
		seen = alert_wait(s->store, seen, WAKE_NS);
		int64_t now = time_mono_ns();
		if (!seen || now < next_try)
			continue;
		bool changed = current_version(s) != s->sent_version;
		if (!changed && (now < next_resend || !anything_to_resend(s)))
			continue;
		if (send_current(s)) {
			backoff = backoff ? backoff * 2 : NS_PER_SEC;
			if (backoff > s->c->backoff_max_ns)
				backoff = s->c->backoff_max_ns;
			next_try = now + backoff;
		} else {
			backoff = 0;
			next_try = 0;
			next_resend = now + s->c->resend_ns;
		}
	}
	return NULL;
}

int alerts_start(struct alerts_sender **out, const struct alerting_config *c,
		 struct alert_store *store, struct tally_err *e)
{
	struct alerts_sender *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->c = c;
	s->store = store;
	snprintf(s->url, sizeof(s->url), "%s/api/v2/alerts", c->alertmanager);
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		free(s);
		return err_set(e, -ENOMEM, "alerts: cannot initialise libcurl");
	}
	int rc = pthread_create(&s->thread, NULL, run, s);
	if (rc) {
		free(s);
		return err_set(e, -rc, "alerts: cannot start the sender thread: %s", strerror(rc));
	}
	*out = s;
	return 0;
}

void alerts_stop(struct alerts_sender *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, 1);
	pthread_join(s->thread, NULL);
	/* the last commit's alerts (a resolution, say) may not be out yet */
	if (current_version(s) != s->sent_version)
		send_current(s);
	free(s);
}
