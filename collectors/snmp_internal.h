/*
 * snmp_internal.h: the pure parts of the SNMP collector (collectors/snmp.c),
 * exposed for tests and the fuzz target: walking tables out of GETBULK
 * responses, and turning two polls of a port into samples.
 *
 * Nothing here calls net-snmp: a response is handed over as an array of
 * struct snmp_vb (views into the PDU, which the caller owns), so every rule
 * about hostile answers (wrong types, truncated or out-of-order varbinds, an
 * early endOfMibView, a table without end) is tested on fixtures without an
 * agent.
 *
 * Invariants of a walk:
 * - each column advances strictly (an OID not after the column's last one
 *   ends the column and is counted: a looping agent cannot keep us asking);
 * - rows are sorted by (table, index) and unique; a table that would pass
 *   max_rows ends the walk, flagged truncated (and counted);
 * - a value of the wrong type is counted and left out, never converted.
 */
#ifndef TALLY_SNMP_INTERNAL_H
#define TALLY_SNMP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample.h"

struct tally_err;

/* ASN.1 / SMI tags as they arrive in a varbind (the values net-snmp uses) */
#define SNMP_T_INTEGER    0x02
#define SNMP_T_OCTETS     0x04
#define SNMP_T_NULL       0x05
#define SNMP_T_OID        0x06
#define SNMP_T_IPADDR     0x40
#define SNMP_T_COUNTER32  0x41
#define SNMP_T_GAUGE32    0x42
#define SNMP_T_TIMETICKS  0x43
#define SNMP_T_COUNTER64  0x46
#define SNMP_T_NOSUCHOBJECT   0x80
#define SNMP_T_NOSUCHINSTANCE 0x81
#define SNMP_T_ENDOFMIBVIEW   0x82

#define SNMP_OID_MAX   32        /* sub-identifiers we keep of an OID */
#define SNMP_NAME_MAX  64        /* ifName, ifAlias, ifDescr, hrStorageDescr, with the NUL */

/* The columns we walk. IF-MIB ifXTable (.1.3.6.1.2.1.31.1.1.1) and
 * ifTable (.1.3.6.1.2.1.2.2.1) are both indexed by ifIndex; HOST-RESOURCES
 * hrProcessorTable by hrDeviceIndex and hrStorageTable by hrStorageIndex. */
enum snmp_col {
	SC_IFNAME = 0,      /* ifXTable.1   DisplayString */
	SC_HCIN_OCT,        /* ifXTable.6   Counter64 */
	SC_HCIN_UCAST,      /* ifXTable.7   Counter64 */
	SC_HCIN_MCAST,      /* ifXTable.8   Counter64 */
	SC_HCIN_BCAST,      /* ifXTable.9   Counter64 */
	SC_HCOUT_OCT,       /* ifXTable.10  Counter64 */
	SC_HCOUT_UCAST,     /* ifXTable.11  Counter64 */
	SC_HCOUT_MCAST,     /* ifXTable.12  Counter64 */
	SC_HCOUT_BCAST,     /* ifXTable.13  Counter64 */
	SC_HIGHSPEED,       /* ifXTable.15  Gauge32, Mbit/s */
	SC_IFALIAS,         /* ifXTable.18  DisplayString */
	SC_DISCONT,         /* ifXTable.19  TimeStamp (TimeTicks, sysUpTime at the discontinuity) */
	SC_IFDESCR,         /* ifTable.2    DisplayString */
	SC_OPER,            /* ifTable.8    INTEGER, up(1) */
	SC_IN_OCT,          /* ifTable.10   Counter32 */
	SC_IN_DISC,         /* ifTable.13   Counter32 */
	SC_IN_ERR,          /* ifTable.14   Counter32 */
	SC_OUT_OCT,         /* ifTable.16   Counter32 */
	SC_OUT_DISC,        /* ifTable.19   Counter32 */
	SC_OUT_ERR,         /* ifTable.20   Counter32 */
	SC_HRPROC_LOAD,     /* hrProcessorTable.2  INTEGER 0-100, % busy over the last minute */
	SC_HRST_TYPE,       /* hrStorageTable.2    OBJECT IDENTIFIER */
	SC_HRST_DESCR,      /* hrStorageTable.3    DisplayString */
	SC_HRST_UNITS,      /* hrStorageTable.4    INTEGER, bytes per allocation unit */
	SC_HRST_SIZE,       /* hrStorageTable.5    INTEGER, units */
	SC_HRST_USED,       /* hrStorageTable.6    INTEGER, units */
	SC_COUNT
};

#define SNMP_COLS_IF  ((1u << (SC_HRPROC_LOAD)) - 1u)          /* every IF-MIB column */
#define SNMP_COLS_HR  (((1u << SC_COUNT) - 1u) & ~SNMP_COLS_IF)  /* every HOST-RESOURCES column */

enum snmp_table { ST_IF = 0, ST_HRPROC, ST_HRSTORAGE };

struct snmp_coldef {
	const char *name;                    /* for messages: "ifHCInOctets" */
	uint8_t table;                       /* enum snmp_table */
	uint8_t type;                        /* the SNMP_T_* it must have */
	uint8_t oid_len;
	unsigned long oid[14];               /* the column, without the index */
};
extern const struct snmp_coldef snmp_cols[SC_COUNT];

/* sysUpTime.0 is asked as the one non-repeater of a walk's first request:
 * .1.3.6.1.2.1.1.3 (GETNEXT gives .1.3.6.1.2.1.1.3.0). */
extern const unsigned long snmp_sysuptime_oid[8];
#define SNMP_SYSUPTIME_LEN 8

/* hrStorageType values we meter (.1.3.6.1.2.1.25.2.1.N) */
#define SNMP_HRST_RAM        2
#define SNMP_HRST_FIXEDDISK  4
#define SNMP_HRST_NETDISK   10

/* One varbind of a response, as views into the caller's PDU. */
struct snmp_vb {
	const unsigned long *oid;            /* net-snmp's oid is unsigned long */
	size_t oid_len;
	uint8_t type;                        /* SNMP_T_* */
	uint64_t num;                        /* integer types (INTEGER as its two's complement) */
	const unsigned char *str;            /* SNMP_T_OCTETS: the bytes (not NUL-terminated) */
	const unsigned long *objid;          /* SNMP_T_OID: the value */
	size_t len;                          /* bytes of str, or sub-ids of objid */
};

/* A row of one table, as far as the walk found it. */
struct snmp_row {
	uint8_t table;                       /* enum snmp_table */
	uint32_t index;                      /* ifIndex, hrDeviceIndex, hrStorageIndex (1 - 2^31-1) */
	uint32_t have;                       /* bit per enum snmp_col: a value of the right type came */
	uint64_t v[SC_COUNT];                /* numbers, by column */
	char name[SNMP_NAME_MAX];            /* ifName ("" if none or not printable) */
	char alias[SNMP_NAME_MAX];           /* ifAlias */
	char descr[SNMP_NAME_MAX];           /* ifDescr, or hrStorageDescr */
};

struct snmp_walk {
	uint32_t cols;                       /* bit per column walked */
	uint32_t done;                       /* columns that ended */
	unsigned long last[SC_COUNT][SNMP_OID_MAX];  /* the column's last OID seen */
	uint8_t last_len[SC_COUNT];
	bool have_uptime;
	uint32_t uptime_cs;                  /* sysUpTime, centiseconds */
	struct snmp_row *rows;               /* owned; sorted by (table, index) */
	size_t n_rows, cap_rows, max_rows;
	bool truncated;                      /* max_rows was reached: the rest is unknown */
	/* hostile or broken answers, counted */
	uint32_t bad_type, bad_index, not_increasing, bad_string;
};

/* Start a walk of cols (a mask of enum snmp_col), keeping at most max_rows
 * rows. Returns 0 or -ENOMEM. */
int snmp_walk_init(struct snmp_walk *w, uint32_t cols, size_t max_rows);
void snmp_walk_release(struct snmp_walk *w);
bool snmp_walk_finished(const struct snmp_walk *w);

/* The columns still to walk, in column order, into cols[] (room for
 * SC_COUNT); returns how many. The next request asks, for each, the OID
 * after w->last[col] (the column itself at first). */
size_t snmp_walk_pending(const struct snmp_walk *w, int *cols);

/* Take a GETBULK response to a request that asked cols[0..ncols) as
 * repeaters, and sysUpTime as one non-repeater first when `uptime`. Values
 * come row by row (vb[k] answers cols[k % ncols]); an agent may send fewer
 * than asked. Returns 0; -EPROTO when the response cannot be an answer to
 * the request (sysUpTime missing or not TimeTicks, no varbind for any
 * column still open: a walk that would not advance); -ENOMEM. */
int snmp_walk_feed(struct snmp_walk *w, const int *cols, size_t ncols, bool uptime,
		   const struct snmp_vb *vb, size_t n, struct tally_err *e);

/* The row (table, index), or NULL. */
const struct snmp_row *snmp_walk_row(const struct snmp_walk *w, uint8_t table, uint32_t index);

/* ---- two polls of a port -> samples ---- */

/* What a port's readings are from the tenant's side: a switch port faces
 * the tenant's device, so what the switch sent out of it (ifHCOutOctets)
 * is the tenant's incoming traffic; a host's own interface is the tenant's
 * already (ifHCInOctets is the host's incoming). */
enum snmp_view { SNMP_VIEW_SWITCH = 0, SNMP_VIEW_HOST };

/* What one poll of a target says about the agent. */
struct snmp_poll_ctx {
	int64_t now_ns;                      /* when the readings were taken (wall clock) */
	uint32_t uptime_cs;                  /* sysUpTime of this poll */
	bool rebooted;                       /* sysUpTime went back since the previous poll */
	int64_t boot_ns;                     /* now_ns - sysUpTime: when the agent (re)started */
	enum snmp_view view;
};

/* The previous reading of a port (by name), kept by the collector. */
#define SNMP_C64 4                           /* 64-bit counters: bytes in/out, packets in/out (raw as read) */
#define SNMP_C32 6                           /* 32-bit counters: bytes, errors, discards, in/out (raw) */
struct snmp_port_state {
	int64_t last_ns;                     /* 0: never read */
	uint32_t ifindex;
	uint32_t discont_cs;                 /* ifCounterDiscontinuityTime last read */
	uint8_t have_discont;
	uint8_t have64, have32;              /* bits of c64[], c32[] read last time */
	uint64_t c64[SNMP_C64];
	uint32_t c32[SNMP_C32];
};

/* The most samples one port reading gives (counters with a final reading
 * before each, and gauges). */
#define SNMP_PORT_SAMPLES 32

/* What changed for a port, for the collector's log and /metrics. */
struct snmp_port_note {
	bool discontinuity;                  /* ifIndex changed, or ifCounterDiscontinuityTime moved */
	bool only32;                         /* no 64-bit octet counters: bytes32 meters only */
};

/* Fill out[] with the samples of a port's reading `row` (resource id
 * `resource`, already checked to fit) after its previous state st, and
 * update st. Counters follow DESIGN.md rules 2 and 3 (see snmp.c's header
 * for each case). Returns the number of samples (<= SNMP_PORT_SAMPLES). */
size_t snmp_port_samples(struct snmp_port_state *st, const struct snmp_row *row, const char *resource,
			 const struct snmp_poll_ctx *cx, struct sample *out, struct snmp_port_note *note);

/* Did sysUpTime go back from prev_cs to cs, elapsed_ns apart? A wrap of
 * the 32-bit TimeTicks (every 497 days) is not a reboot. */
bool snmp_rebooted(uint32_t prev_cs, uint32_t cs, int64_t elapsed_ns);

/* The samples of a host's HOST-RESOURCES rows (processor load, memory and
 * fixed-disk storage), as gauges of resource `resource`. out has room for
 * max; returns how many were written. */
size_t snmp_host_samples(const struct snmp_walk *w, const char *resource, int64_t now_ns,
			 struct sample *out, size_t max);

/* A device label of at most TALLY_DEV_MAX - 1 bytes for s: s itself when it
 * fits, else its head and a hash of the whole, so two long names never
 * share a label. */
void snmp_device_label(char *out, const char *s);

#endif
