/*
 * libvirt_calls.c: the calls a cycle of the libvirt collector makes
 * besides the library's bulk call: that call over libvirt's protocol
 * (libvirt_rpc.h) on a hypervisor on this host, the per-disk
 * virDomainBlockStats calls and the slow cycles' virDomainGetInfo (all of
 * a cycle's asked at once over the protocol, else through the library),
 * and the second calls (virDomainListGetStats for just the domains that
 * need more than the bulk call asked). docs/libvirt.md says why each.
 */
#include "libvirt_state.h"
#include "log.h"
#include "str.h"
#include "tallytime.h"
#include "vec.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <libvirt/virterror.h>

/* How domain d's disk counters are read on a cycle whose bulk call did
 * not ask for the block group: 1 by a virDomainBlockStats call (one disk,
 * no stall seen: libvirt 9 sends QEMU two QMP queries for it, the block
 * group three), 2 in the block group's second call (several disks, whose
 * per-disk calls would each cost those two queries; a domain whose
 * per-disk call stalled, which the NOWAIT call cannot; disks not known
 * yet; a device just added or removed, whose capacity is wanted), 0 not
 * at all (no disk). */
int lv_disk_way(const struct lv *s, const struct lv_dom *d)
{
	if (d && d->want_sizes)
		return 2;
	if (!s->blk_calls)
		return 0;
	if (!d || !d->have_info)
		return 2;
	if (d->n_disks == 0)
		return 0;
	return d->n_disks == 1 && !d->blk_busy ? 1 : 2;
}

/* Whether d's disk counters come by a per-disk call this cycle: its block
 * group is asked neither in the bulk call nor in the second call (xr),
 * and lv_disk_way() says a per-disk call. */
int lv_disk_call_due(const struct lv *s, const struct lv_dom *d, const struct lv_xrec *xr)
{
	return !s->blk_main && !(xr && xr->asked >> 1 & 1) && lv_disk_way(s, d) == 1;
}

/* The answer in ans[0..m) for the domain with this id, looked for from
 * *j on (answers come in the order the domains were asked, some missing). */
static virDomainStatsRecordPtr answer_for(virDomainStatsRecordPtr *ans, int m, int *j, unsigned int id)
{
	for (int k = 0; k < m; k++) {
		int t = (*j + k) % m;
		if (virDomainGetID(ans[t]->dom) == id) {
			*j = t + 1;
			return ans[t];
		}
	}
	return NULL;
}

/* Domain d's disk counters by one virDomainBlockStats call into r, as
 * the block group would have given them (no capacity or allocation: the
 * block group's, every slow cycle). A call that waits for the domain's job
 * (libvirt's per-domain calls have no NOWAIT; a job held for long makes
 * it fail after 30 s) or takes more than a quarter interval moves the
 * domain to the NOWAIT block group until a slow cycle's bulk answer has
 * its block group again. A disk gone (hot-unplugged) has the domain's XML
 * read again next cycle. Returns 0, or -1 (nothing read). */
int lv_disk_call(struct lv *s, struct lv_dom *d, virDomainPtr dom, struct lv_rec *r)
{
	const struct lv_disk *dk = &d->disks[0];
	virDomainBlockStatsStruct bs;
	int rc, code = 0;
	if (d->rpc_cycle == s->cycle && !strcmp(d->rpc_target, dk->target)) {
		/* asked with the others (lv_rpc_calls()) */
		const struct lvrpc_call *k = &d->rpc;
		rc = k->state == LVRPC_OK ? 0 : -1;
		if (k->state == LVRPC_LATE)
			d->blk_busy = 1;
		code = k->state == LVRPC_ERROR ? k->vir_code : 0;
		bs.rd_req = k->rd_req;
		bs.rd_bytes = k->rd_bytes;
		bs.wr_req = k->wr_req;
		bs.wr_bytes = k->wr_bytes;
	} else {
		int64_t t0 = time_mono_ns();
		rc = virDomainBlockStats(dom, dk->target, &bs, sizeof(bs));
		if (time_mono_ns() - t0 > s->interval_ns / 4)
			d->blk_busy = 1;
		virErrorPtr err = rc ? virGetLastError() : NULL;
		code = err ? err->code : 0;
	}
	s->disk_calls_n++;
	if (rc) {
		s->disk_calls_failed++;
		if (code == VIR_ERR_OPERATION_TIMEOUT)
			d->blk_busy = 1;
		else if (code == VIR_ERR_INVALID_ARG)
			d->xml_stale = 1;
		return -1;
	}
	struct lv_rec_dev *dv = &r->blk[0];
	const long long v[4] = { bs.rd_bytes, bs.wr_bytes, bs.rd_req, bs.wr_req };  /* blk_fields' order */
	memset(dv, 0, sizeof(*dv));
	dv->name = dk->target;
	for (int f = 0; f < 4; f++)
		if (v[f] >= 0) {
			dv->v[f] = (unsigned long long)v[f];
			dv->have |= (uint8_t)(1 << f);
		}
	r->n_blk = 1;
	r->have_n_blk = 1;
	return 0;
}

#define RPC_RETRY_NS (60 * NS_PER_SEC)  /* the library's calls this long after the protocol failed */

/* The domain a call of lv_rpc_calls() was asked for. */
static struct lv_dom *dom_of_call(struct lvrpc_call *k)
{
	if (k->proc == LVRPC_GET_INFO)
		return (struct lv_dom *)((char *)k - offsetof(struct lv_dom, info));
	return (struct lv_dom *)((char *)k - offsetof(struct lv_dom, rpc));
}

/* The protocol's connection, opened if it is not and may be tried now.
 * 1 when it can be used. */
static int rpc_ready(struct lv *s)
{
	if (s->rpc)
		return 1;
	int64_t now = time_mono_ns();
	struct tally_err e = { 0 };
	if (now < s->rpc_retry_ns)
		return 0;
	int rc = s->rpc_test ? 0 : lvrpc_socket_for(s->uri, NULL, s->rpc_path, sizeof(s->rpc_path));
	if (rc == 0)
		rc = lvrpc_open(&s->rpc, s->rpc_path, s->uri, s->interval_ns / 4, &e);
	if (rc) {
		s->rpc_retry_ns = now + RPC_RETRY_NS;
		if (rc != -ENOENT)
			complain(&s->rpc_note, LOG_INFO, "libvirt %s: stats calls through libvirt's library (its"
				 " protocol on %s: %s)", s->uri, s->rpc_path, e.msg);
		return 0;
	}
	s->bulk_rpc_off = 0;
	return 1;
}

/* The protocol's connection broke or the daemon broke the protocol: what
 * it would have asked goes through the library's calls for a while. */
static void rpc_broke(struct lv *s, const char *what, const struct tally_err *e)
{
	complain(&s->rpc_note, LOG_WARN, "libvirt %s: %s through libvirt's library for %d s: its protocol on %s"
		 " failed (%s)", s->uri, what, (int)(RPC_RETRY_NS / NS_PER_SEC), s->rpc_path, e->msg);
	lvrpc_close(s->rpc);
	s->rpc = NULL;
	s->rpc_retry_ns = time_mono_ns() + RPC_RETRY_NS;
}

/* The domain of a protocol record: its reference, the one its lv_dom
 * keeps for this process, or else looked up by UUID (once per process:
 * read_domains() hands it to the domain, bulk_own[i] until then). NULL
 * when the domain is not known to the library's connection as that
 * process (stopped since the answer, or another process already). */
static virDomainPtr rpc_dom(struct lv *s, const struct lvrpc_stats *r, uint8_t *own)
{
	struct lv_dom *d = lv_dom_by_bulk_id(s, r->id);
	*own = 0;
	if (d && d->ptr && d->ptr_id == (int)r->id)
		return d->ptr;
	virDomainPtr p = virDomainLookupByUUID(s->conn, r->uuid);
	if (p && virDomainGetID(p) != r->id) {
		virDomainFree(p);
		p = NULL;
	}
	*own = p != NULL;
	return p;
}

/* The answer's references no domain took, and the answer. */
void lv_rpc_bulk_free(struct lv *s)
{
	for (int i = 0; s->bulk_rpc && i < s->bulk_ans.n; i++)
		if (s->bulk_rec[i].own)
			virDomainFree(s->bulk_rec[i].r.dom);
	lvrpc_answer_free(&s->bulk_ans);
	s->bulk_rpc = 0;
}

/* This cycle's bulk call over libvirt's protocol (a hypervisor on this
 * host, libvirt_rpc.h: about 150 us of tallyd's CPU for 32 domains where
 * the library's call costs about 380, its records' free included: it
 * runs the call in a GLib main context of its own and makes and frees a
 * domain object per record). The records are given in *recs as the
 * library's would be. Returns their number, or -1 where the library's call
 * is to be made (the protocol cannot be spoken, failed, or the daemon
 * refused the call: then on this connection from now on). */
int lv_rpc_bulk(struct lv *s, unsigned int groups, unsigned int flags, virDomainStatsRecordPtr **recs)
{
	struct tally_err e = { 0 };
	int code = 0;
	if (!s->local || s->bulk_rpc_off || !rpc_ready(s))
		return -1;
	int rc = lvrpc_all_stats(s->rpc, groups, flags, s->interval_ns > 5 * NS_PER_SEC ? s->interval_ns : 5 * NS_PER_SEC,
				 &s->bulk_ans, &code, &e);
	if (rc == -EREMOTEIO) {
		/* NOWAIT unknown to an older daemon, say: the library's call
		 * says what, and copes, from now on */
		s->bulk_rpc_off = 1;
		return -1;
	}
	if (rc) {
		rpc_broke(s, "the bulk stats call", &e);
		return -1;
	}
	s->bulk_calls_rpc++;
	int n = s->bulk_ans.n;
	if (vec_reserve((void **)&s->bulk_rec, &s->cap_brec, (size_t)n + 1, sizeof(*s->bulk_rec), 64) ||
	    vec_reserve((void **)&s->bulk_ptr, &s->cap_bptr, (size_t)n + 1, sizeof(*s->bulk_ptr), 64) ||
	    vec_reserve((void **)&s->rid, &s->cap_rid, (size_t)n + 1, sizeof(*s->rid), 64)) {
		lvrpc_answer_free(&s->bulk_ans);
		return -1;   /* the library's call, which may find the memory */
	}
	int m = 0;
	s->bulk_rpc = 1;
	for (int i = 0; i < n; i++) {
		const struct lvrpc_stats *r = &s->bulk_ans.recs[i];
		uint8_t own;
		virDomainPtr p = rpc_dom(s, r, &own);
		if (!p)
			continue;   /* gone since: its stop event, or the next cycle, says */
		s->bulk_rec[m].r = (virDomainStatsRecord){ .dom = p, .params = r->params, .nparams = r->nparams };
		s->bulk_rec[m].own = own;
		s->bulk_ptr[m] = &s->bulk_rec[m].r;
		s->rid[m] = r->id;
		m++;
	}
	s->bulk_ans.n = m;   /* what lv_rpc_bulk_free() walks */
	*recs = s->bulk_ptr;
	if (!s->rpc_said) {
		log_msg(LOG_INFO, "libvirt %s: the bulk stats call, per-disk calls and vCPU counts asked over"
			" libvirt's protocol on %s", s->uri, s->rpc_path);
		s->rpc_said = 1;
	}
	return m;
}

/* This cycle's per-disk calls, and a slow cycle's virDomainGetInfo (the
 * vCPUs), all at once over libvirt's protocol (libvirt_rpc.h: a few us of
 * tallyd's CPU a call, against about 96 and 50 for the library's), for
 * the domains from_record() would make one for: a per-disk call for a
 * process already read, with one disk, whose block group is not asked;
 * the info for every process already read. Their answers wait in each
 * domain (rpc_cycle, info_cycle) and from_record() takes them. Where the
 * protocol cannot be spoken (not this host's system daemon, no read-only
 * socket, authentication asked) or breaks, from_record() makes the
 * library's calls, as before, and the protocol is tried again after
 * RPC_RETRY_NS. The batch waits at most a quarter interval, as one library
 * call may: a per-disk call not answered by then moves its domain to the
 * block group (blk_busy), as a stalled call does; an info not answered
 * leaves the vCPU count as it was until the next slow cycle. */
void lv_rpc_calls(struct lv *s, virDomainStatsRecordPtr *recs, int n)
{
	int disks = s->blk_calls && !s->blk_main, infos = s->vcpus_by_info;
	if ((!disks && !infos) || n <= 0)
		return;
	struct tally_err e = { 0 };
	int rc;
	if (!rpc_ready(s))
		return;
	if (vec_reserve((void **)&s->rpc_batch, &s->rpc_cap, 2 * (size_t)n, sizeof(*s->rpc_batch), 16))
		return;
	size_t m = 0, m_disk = 0;
	for (int i = 0; i < n; i++) {
		unsigned int bid = s->rid[i];
		struct lv_dom *d = bid ? lv_dom_by_bulk_id(s, bid) : NULL;
		const struct lv_xrec *xr = i < s->n_xrec ? &s->xrec[i] : NULL;
		const char *name = virDomainGetName(recs[i]->dom);
		if (!d || !name || d->dom_id != bid)
			continue;
		const unsigned char *uuid = d->raw;
		if (disks && !d->xml_stale && lv_disk_call_due(s, d, xr)) {
			d->rpc = (struct lvrpc_call){ .proc = LVRPC_BLOCK_STATS, .name = name, .id = (int)bid };
			memcpy(d->rpc.uuid, uuid, sizeof(d->rpc.uuid));
			str_copy(d->rpc_target, d->disks[0].target, sizeof(d->rpc_target));
			d->rpc.path = d->rpc_target;
			d->rpc_cycle = s->cycle + 1;   /* the cycle read_domains() reads next */
			s->rpc_batch[m++] = &d->rpc;
			m_disk++;
		}
		if (infos) {
			d->info = (struct lvrpc_call){ .proc = LVRPC_GET_INFO, .name = name, .id = (int)bid };
			memcpy(d->info.uuid, uuid, sizeof(d->info.uuid));
			d->info_cycle = s->cycle + 1;
			s->rpc_batch[m++] = &d->info;
		}
	}
	if (!m)
		return;
	rc = lvrpc_calls(s->rpc, s->rpc_batch, m, s->interval_ns / 4, &e);
	s->disk_calls_rpc += m_disk;
	s->info_calls_rpc += m - m_disk;
	if (rc) {
		/* what came is taken; the rest are read by the library's calls
		 * this cycle (from_record()), and for a while */
		for (size_t i = 0; i < m; i++)
			if (s->rpc_batch[i]->state == LVRPC_LATE) {
				struct lv_dom *d = dom_of_call(s->rpc_batch[i]);
				if (s->rpc_batch[i]->proc == LVRPC_GET_INFO)
					d->info_cycle = 0;
				else
					d->rpc_cycle = 0;
			}
		rpc_broke(s, "per-disk calls and vCPU counts", &e);
	} else if (!s->rpc_said) {
		log_msg(LOG_INFO, "libvirt %s: per-disk calls and vCPU counts asked at once over libvirt's"
			" protocol on %s", s->uri, s->rpc_path);
		s->rpc_said = 1;
	}
}

/* What the second calls ask, for each of the n records (s->xrec[i].asked),
 * and, when doms is given, the domains of each call (NULL-terminated
 * arrays, the caller's to free; k their lengths). Returns 0, or -ENOMEM
 * (nothing is asked). */
int lv_extra_plan(struct lv *s, virDomainStatsRecordPtr *recs, int n, virDomainPtr *doms[2], size_t k[2])
{
	s->n_xrec = 0;
	if (n <= 0)
		return 0;
	if (vec_reserve((void **)&s->xrec, &s->cap_xrec, (size_t)n, sizeof(*s->xrec), 64))
		return -ENOMEM;
	memset(s->xrec, 0, (size_t)n * sizeof(*s->xrec));
	for (int i = 0; i < n; i++) {
		unsigned int id = s->rid[i];
		const struct lv_dom *d = lv_dom_by_bulk_id(s, id);
		int need[2] = { !s->asked_cpu && s->local && !s->cg_off && !(d && d->cg_ok_id == id),
				!s->blk_main && lv_disk_way(s, d) == 2 };
		for (int g = 0; g < 2; g++) {
			if (!need[g])
				continue;
			if (doms && !doms[g] && !(doms[g] = calloc((size_t)n + 1, sizeof(*doms[g]))))
				return -ENOMEM;
			if (doms)
				doms[g][k[g]++] = recs[i]->dom;
			s->xrec[i].asked |= (uint8_t)(1 << g);
			*(g ? &s->blk_alone : &s->cg_checks) += 1;
		}
	}
	s->n_xrec = n;
	return 0;
}

/* A cycle's second calls: virDomainListGetStats for just the domains that
 * need more than the bulk call asked. [0] cpu-total for the processes
 * whose cgroup has not been checked against libvirt's cpu.time (started
 * since the last cycle, or whose cgroup was not found): QEMU answers
 * libvirt 9's halt-poll query (the cost reading the cgroups saves) once
 * per process, not every cycle. [1] the block group for the domains whose
 * disks are not read by a per-disk call (lv_disk_way()). The answers are
 * kept in s->xans until the cycle's readings are sent, and each bulk
 * record's in s->xrec (by index). A failed call leaves its domains
 * unanswered: from_record() then reads their cgroups unchecked where
 * other domains' were found the same way (else they are not read this
 * cycle), and their disks not at all this cycle. Without memory nothing
 * is asked (n_xrec 0). */
void lv_extra_calls(struct lv *s, virDomainStatsRecordPtr *recs, int n)
{
	static const unsigned int groups[2] = { VIR_DOMAIN_STATS_CPU_TOTAL, VIR_DOMAIN_STATS_BLOCK };
	virDomainPtr *doms[2] = { NULL, NULL };
	size_t k[2] = { 0, 0 };
	if (lv_extra_plan(s, recs, n, doms, k)) {
		s->n_xrec = 0;
		goto out;
	}
	for (int g = 0; g < 2; g++) {
		if (!k[g])
			continue;
		int m = virDomainListGetStats(doms[g], groups[g], &s->xans[g],
					      s->nowait_ok ? VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT : 0);
		for (int i = 0, j = 0; i < n && m > 0; i++)
			if (s->xrec[i].asked >> g & 1)
				s->xrec[i].rec[g] = answer_for(s->xans[g], m, &j, s->rid[i]);
	}
out:
	free(doms[0]);
	free(doms[1]);
}

/* The second calls' answers, once their readings are sent. */
void lv_extra_free(struct lv *s)
{
	for (int g = 0; g < 2; g++) {
		if (s->xans[g])
			virDomainStatsRecordListFree(s->xans[g]);
		s->xans[g] = NULL;
	}
	s->n_xrec = 0;
}
