/*
 * alertwin.c: the readings behind a windowed alert rule (alerting_
 * internal.h): a ring of the last readings of one series, and the value
 * over the window it gives (a counter's rate, a gauge's mean); the list of
 * keys the engine deletes from the ledger at the next commit.
 */
#include "alerting_internal.h"
#include "fault.h"
#include "str.h"

#include <errno.h>

int keylist_push(struct keylist *l, const char *key)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char (*v)[KEY_MAX] = fault_realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	str_copy(l->v[l->n++], key, KEY_MAX);
	return 0;
}

int64_t wnd_newest(const struct wnd *w)
{
	return w->n ? w->t[(w->head + w->cap - 1) % w->cap] : 0;
}

int64_t wnd_oldest(const struct wnd *w)
{
	return w->n ? w->t[(w->head + w->cap - w->n) % w->cap] : 0;
}

/* Add the reading (t, v) unless it is not newer than the last one. */
void wnd_add(struct wnd *w, int64_t t, double v)
{
	if (w->n && t <= wnd_newest(w))
		return;
	w->t[w->head] = t;
	w->v[w->head] = v;
	w->head = (w->head + 1) % w->cap;
	if (w->n < w->cap)
		w->n++;
}

/* Add the reading (t, v), then the windowed value over [t_last - window,
 * t_last] into *out: for a counter the rate between the oldest reading in
 * it and the last, for a gauge the mean of the readings in it. Returns
 * false when the window cannot say: a counter with fewer than two readings
 * in it has no interval to take a rate over (a new series, or one whose
 * readings before a long gap all left the window). Unknown is not 0: 0
 * would resolve every rate_above alert and fire every rate_below one. */
bool wnd_value(struct wnd *w, int64_t t, double v, int64_t window_ns, bool counter, double *out)
{
	wnd_add(w, t, v);
	uint32_t last = (w->head + w->cap - 1) % w->cap;
	int64_t from = w->t[last] - window_ns;
	double sum = 0;
	uint32_t k = 0, oldest = last;
	for (uint32_t i = 0; i < w->n; i++) {
		uint32_t j = (last + w->cap - i) % w->cap;
		if (w->t[j] < from)
			break;
		oldest = j;
		sum += w->v[j];
		k++;
	}
	if (!counter) {
		*out = sum / k;
		return true;
	}
	if (oldest == last)
		return false;
	*out = (w->v[last] - w->v[oldest]) / ((double)(w->t[last] - w->t[oldest]) / 1e9);
	return true;
}
