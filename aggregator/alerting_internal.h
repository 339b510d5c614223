/*
 * alerting_internal.h: the alert engine's windows and key lists
 * (alertwin.c), shared with the engine (alerting.c). Not for use outside
 * aggregator/.
 */
#ifndef TALLY_ALERTING_INTERNAL_H
#define TALLY_ALERTING_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_MAX 256                   /* an instance's or a window's key, bytes */

/* A windowed rule's recent readings of one series: a ring of (time, value)
 * where value is the counter's usage since the window's origin (base plus
 * the aggregator's total since it opened) or the gauge. Mirrored in the
 * ledger's alert_windows table by the commit hook, so a restart continues
 * it (schemas/migrations/004-alert-windows.sql). */
#define WND_MAX 4096                  /* readings kept per series at most */
struct wnd {
	char key[KEY_MAX];               /* rule, meter, resource, device, host */
	uint32_t head, n, cap;
	int64_t *t;
	double *v;
	int64_t window_ns;               /* the rule's window */
	double base;                     /* counters: usage before this process (loaded) */
	int64_t saved_ns;                /* newest reading in the ledger, 0: none */
	int64_t saved_from_ns;           /* oldest reading the ledger may hold, 0: none */
	int64_t saving_ns, saving_from_ns;  /* what the commit in progress writes */
	bool moved;                      /* its times moved (a clock step): write it anew */
};

/* A list of keys (instances or windows) to delete at the next commit. */
struct keylist {
	char (*v)[KEY_MAX];
	size_t n, cap;
};

/* Append key to l. Returns 0 or -ENOMEM. */
int keylist_push(struct keylist *l, const char *key);
/* The newest and the oldest reading's time of w; 0 when empty. */
int64_t wnd_newest(const struct wnd *w);
int64_t wnd_oldest(const struct wnd *w);
/* Add the reading (t, v) unless it is not newer than the last one. */
void wnd_add(struct wnd *w, int64_t t, double v);
/* Add (t, v), then the value over [t_last - window_ns, t_last] into *out;
 * false when the window cannot say (see alertwin.c). */
bool wnd_value(struct wnd *w, int64_t t, double v, int64_t window_ns, bool counter, double *out);

#endif
