#!/bin/sh
# make bench: prints the figures the issues name. Nothing here is asserted;
# compare medians, and run the peers (PEERS=DIR, the peer benchmark harness) beside it on the
# same machine for the ratios.
set -eu
B=${B:-build}
work=$(mktemp -d /tmp/tally-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== aggregator ingest (delta + hourly buckets + ledger commits), one core"
"$B/bench/bench_ingest" 1000 360 5

echo
echo "== batch wire format beside JSON (jansson) for the same batch; the agent's spool"
echo "   (append with one fdatasync per batch, the same without, the disk's own fdatasync rate;"
echo "   RSS and disk of a 100-VM agent's spool through a 10-hour outage)"
"$B/bench/bench_wire" 1000 5 "$work"

echo
echo "== aggregator ingest over the network: 100 agents x 100 simulated VMs posting to one aggregator on"
echo "   loopback (tallyd role aggregator, bench/simagents), every batch acknowledged once committed"
sh bench/ingest.sh "$B" 100 10000 "${INGEST_RUNS:-3}"
echo "   the same fleet into PostgreSQL: one aggregator, then two aggregators on one ledger (issue 13)"
sh bench/ingest_pg.sh "$B" 100 10000 "${INGEST_RUNS:-3}"

if [ -x "$B/bench/bench_rrd" ]; then
	echo
	echo "== RRD writes (librrd, many values per rrd_update_r call)"
	"$B/bench/bench_rrd"
fi

echo
echo "== libvirt collector: 1000 test-driver domains (2 disks, 1 NIC each), per-domain path"
sh tests/fixtures/libvirt/gen-testnode.sh 1000 "$work/node1000.xml"
"$B/bench/bench_libvirt" "$work/node1000.xml" 20 2>/dev/null
echo "(collectd 5.12 virt plugin, block stats off, on this kind of machine: ~28 us per domain per cycle;"
echo " PEERS=/tmp/peers make bench measures it here and now)"

echo
echo "== tallyd collecting the same 1000 domains: libvirt -> ledger, 1 s interval, RRD off"
echo "   (CPU of the whole daemon in 5 s windows after a 5 s warm-up, as the peer harness measures collectd)"
sh bench/libvirt_daemon.sh "$B/tallyd" "$work/node1000.xml" "$work/lvd"
# PEERS=DIR (a writable, installed copy of the peer benchmark harness): collectd's virt
# plugin and prometheus-libvirt-exporter on a fleet of the same shape, now
if [ -n "${PEERS:-}" ]; then
	echo
	echo "== peers on 1000 test-driver domains (from $PEERS)"
	(cd "$PEERS" && WRITERS=prom ./bench-collectd.sh 1000 30 1 |
		grep -E '^(cpu_us_per_cycle_per_domain|win_med_us|win_min_us|win_max_us|series)[[:space:]]')
	(cd "$PEERS" && ./bench-libvirt-exporter.sh 1000 |
		grep -E '^(cpu_ms_per_scrape|scrape_med_s|rss_kB|domains_reported)[[:space:]]')
fi

echo "(real QEMU guests, whole-host cost per stats group and beside collectd and the exporter:"
echo " flock -o /tmp/tally-qemu.lock sh bench/libvirt_qemu.sh, as root; docs/libvirt.md)"
echo
echo "== SNMP: one poll of 20 targets, 200 interfaces, beside sequential snmpbulkwalk and collectd's snmp plugin"
sh bench/snmp.sh 15

echo
echo "== cgroup collector: CPU per VM per cycle, target <= 5 us on a 1000-scope fake tree"
"$B/bench/bench_cgroup" fake 1000 10 2>/dev/null
echo "   and beside collectd 5.12's cgroups plugin on 1000 real (empty) cgroup v1 cgroups"
sh bench/cgroup_peers.sh "$B" 1000 "$work/cgroup"

if [ -x "$B/bench/bench_invoice" ]; then
	echo
	echo "== invoices: a month of 1000 VMs x 10 meters, hourly rows, every tenant (plan-example.yaml)"
	"$B/bench/bench_invoice" 1000 3
fi

echo
echo "== the ledger on PostgreSQL 15 beside SQLite (issue 13): a cluster of its own, fsync on, shared_buffers 512MB"
. tests/lib/pg.sh
if pg_need >/dev/null && PG_FSYNC=on PG_SHARED_BUFFERS=512MB pg_start "$work/pg" >/dev/null; then
	pg_schema bench_commit >/dev/null
	"$B/bench/bench_commit" "$work/commit.db" 100000 5
	"$B/bench/bench_commit" "$PG_LEDGER" 100000 5
	echo "   (target on PostgreSQL: <= 1 s for 100,000 series; load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
	if [ -x "$B/bench/bench_invoice" ]; then
		pg_schema bench_invoice >/dev/null
		echo "   the month's invoices of 1000 VMs on both (the ledger copied into PostgreSQL by tally ledger copy)"
		BENCH_PG=$PG_LEDGER "$B/bench/bench_invoice" 1000 3 | grep -E "^(ledger|tally invoices|tally usage|copied|ratio PostgreSQL)"
	fi
	pg_stop
else
	echo "   (skipped: PostgreSQL 15 is not installed or cannot start here; scripts/deps.sh installs it)"
fi

echo
echo "== ledger checks: a month of 1000 VMs x 10 meters (docs/ledger.md), medians of 3"
sh bench/ledger_checks.sh "$B/tallyd" "$B/tally" "$work/checks" 3
rm -rf "$work/checks"

if [ -x "$B/bench/bench_prom" ]; then
	echo
	echo "== /metrics scrape latency: 1000 simulated VMs (2 disks, 1 NIC), real listener on loopback"
	"$B/bench/bench_prom" 1000 1 50
	"$B/bench/bench_prom" 1000 2 50
	"$B/bench/bench_prom" 1000 4 50
	echo "(target: <= 0.5 us per series; peers on this kind of machine, 1000 domains, one scrape at a"
	echo " time: collectd write_prometheus ~10.5 ms for 10004 series, prometheus-libvirt-exporter ~450 ms"
	echo " for 10798 series: the peer harness, measured 2026-11-24)"
fi

echo
n=${RRD_SCALE:-10000}
echo "== RRD at scale: tallyd, libvirt test driver, $n domains (2 disks, 1 NIC), 10 s interval, real time"
echo "   (files created by the RRD writer while metering; steady-state CPU; with PEERS, collectd's"
echo "   rrdtool plugin on the same fleet and interval; RRD_SCALE=N for another size)"
sh bench/rrd_scale.sh "$B/tallyd" "$n" "$work/rrdscale"
rm -rf "$work/rrdscale"

echo
echo "== tallyd end to end: 1000 simulated VMs, 10 s interval, 6 h fast-forward, RRD on"
cat > "$work/tally.yaml" <<EOC
tallyd:
  agent_id: bench
  data_dir: $work/data
  interval: 10s
  clock: fast-forward
  start: 2026-10-01T00:00:00Z
  end: 2026-10-01T06:00:00Z
  log_level: warning
ledger:
  commit_every: 1s
rrd:
  enabled: true
collectors:
  sim:
    vms: 1000
    tenants: 20
    hosts: 10
    seed: 11
    loss: 0.01
EOC
"$B/tallyd" -c "$work/tally.yaml"
echo "(peak RSS target for 1000 VMs: under 64 MiB)"

echo
echo "== the agent role: cost per sample, RSS through an outage, catch-up of 100 agents, and beside"
echo "   collectd 5.12's network plugin through the same outage (bench/agent.sh)"
sh bench/agent.sh "$B" "$work/agent"
rm -rf "$work/agent"
echo
echo "== pcap traffic classes: offline classification beside pmacctd, and live capture on a veth pair"
sh bench/pcap.sh
