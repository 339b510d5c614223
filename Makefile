# tally: hand-written Makefile. `make V=1` shows full commands;
# `make check SANITIZE=1` builds and tests under ASan+UBSan in build-san/;
# `make WERROR=1` (CI) turns warnings into errors.

PKGS      := sqlite3 libpq yaml-0.1 librrd jansson libvirt libxml-2.0 libcrypto libmicrohttpd libcurl netsnmp libpcap gnutls
TEST_PKGS := check

ifeq ($(SANITIZE),1)
B         ?= build-san
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       ?= -O1
else
B         ?= build
SANFLAGS  :=
OPT       ?= -O2
endif

CC       ?= cc
CFLAGS   ?= $(OPT) -g
# messages are cut to their buffers on purpose, so -Wformat-truncation is off
WFLAGS   := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wformat=2 -Wstrict-prototypes -Wno-format-truncation
ifeq ($(WERROR),1)
WFLAGS   += -Werror
endif
CPPFLAGS += -D_GNU_SOURCE -I. -Icommon -Icollectors -Iaggregator -Ibilling -Iexporters -Idaemon -Iledger
# A build on a machine without the libraries says which Debian packages are
# missing and how to get them, instead of failing on the first #include.
DEB_OF_sqlite3 := libsqlite3-dev
DEB_OF_libpq := libpq-dev
DEB_OF_yaml-0.1 := libyaml-dev
DEB_OF_librrd := librrd-dev
DEB_OF_jansson := libjansson-dev
DEB_OF_libvirt := libvirt-dev
DEB_OF_libxml-2.0 := libxml2-dev
DEB_OF_libcrypto := libssl-dev
DEB_OF_libmicrohttpd := libmicrohttpd-dev
DEB_OF_libcurl := libcurl4-openssl-dev
DEB_OF_libpcap := libpcap-dev
DEB_OF_gnutls := libgnutls28-dev
DEB_OF_netsnmp := libsnmp-dev
DEB_OF_check := check
NO_LIB_GOALS := deps clean uninstall
ifeq ($(filter $(NO_LIB_GOALS),$(MAKECMDGOALS)),)
ifeq ($(shell command -v pkg-config),)
$(error pkg-config is missing: run 'make deps' (scripts/deps.sh, as root) to install what tally needs)
endif
MISSING_PKGS := $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) && echo y),,$(DEB_OF_$(p)))))
ifneq ($(MISSING_PKGS),)
ifeq ($(filter check demo bench check-vm fuzz,$(MAKECMDGOALS)),)
$(error missing libraries: $(MISSING_PKGS); run 'make deps' (scripts/deps.sh, as root) to install them)
endif
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)
ALL_CFLAGS = -std=c11 $(WFLAGS) $(SANFLAGS) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP
LDLIBS_ALL = $(PKG_LIBS) -lm -lpthread

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC := $(wildcard common/*.c collectors/*.c aggregator/*.c billing/*.c exporters/*.c daemon/*.c ledger/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o) $(B)/gen/ledger_schema.o $(B)/gen/ledger_pg_schema.o $(B)/gen/version.o

# The version is the VERSION file; the revision is the commit built from (a
# "+" when the tree had changes), or "unknown" outside git (a source
# package). build/gen/version.c is rewritten only when they change.
VERSION_TXT := $(shell cat VERSION)
REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null || echo +)
PROGS   := tallyd tally check_tally
PROG_BIN := $(PROGS:%=$(B)/%)
MANS := $(B)/man/tallyd.8 $(B)/man/tally.1 $(B)/man/check_tally.1 $(B)/man/tally.yaml.5 \
	$(B)/man/tally-plan.5 $(B)/man/tally.7
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)

.PHONY: FORCE all man install uninstall deps check check-unit check-integration check-vm demo bench fuzz clean
all: $(PROG_BIN) $(MANS)
	@for p in $(PROGS); do ln -sf $(B)/$$p $$p 2>/dev/null || true; done

# make install PREFIX=/usr/local DESTDIR=: the programs, man pages, the
# systemd unit, a sample config and plan (kept when already there), docs.
# PREFIX=/usr puts the config under /etc, as Debian does.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/tally
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
PLUGINDIR  ?= $(PREFIX)/lib/nagios/plugins
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCS       := README.md docs/architecture.md docs/meters.md docs/config.md docs/usage.md \
	      docs/invoice.md docs/sla.md docs/ledger.md schemas/plan.md schemas/customers.md schemas/rrd.md schemas/events-api.md \
	      schemas/invoice.schema.json

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/tally
	install -m 0755 $(B)/tally $(DESTDIR)$(BINDIR)/tally
	install -m 0755 $(B)/tallyd $(DESTDIR)$(SBINDIR)/tallyd
	install -m 0755 $(B)/check_tally $(DESTDIR)$(PLUGINDIR)/check_tally
	for m in $(MANS); do s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
	  install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' config/tallyd.service.in \
	  > $(DESTDIR)$(UNITDIR)/tallyd.service && chmod 0644 $(DESTDIR)$(UNITDIR)/tallyd.service
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	install -m 0644 config/plan-example.yaml $(DESTDIR)$(DOCDIR)/plan-example.yaml
	for d in prometheus grafana nagios icinga2; do install -d $(DESTDIR)$(DOCDIR)/examples/$$d; \
	  install -m 0644 monitoring/$$d/* $(DESTDIR)$(DOCDIR)/examples/$$d/; done
	test -e $(DESTDIR)$(SYSCONFDIR)/tally/tally.yaml || \
	  install -m 0644 config/tally.yaml $(DESTDIR)$(SYSCONFDIR)/tally/tally.yaml
	test -e $(DESTDIR)$(SYSCONFDIR)/tally/plan.yaml || \
	  install -m 0644 config/plan-example.yaml $(DESTDIR)$(SYSCONFDIR)/tally/plan.yaml

# Removes what install put there but the config under SYSCONFDIR/tally,
# which is the operator's.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tally $(DESTDIR)$(SBINDIR)/tallyd $(DESTDIR)$(PLUGINDIR)/check_tally \
	  $(DESTDIR)$(UNITDIR)/tallyd.service
	for m in $(MANS); do s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done
	rm -rf $(DESTDIR)$(DOCDIR)

# Installs the Debian packages the build, tests and demo need; quick no-op
# when they are all there.
deps:
	$(Q)scripts/deps.sh

$(B)/libtally.a: $(LIB_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

# schemas/ledger.sql (version 1) and schemas/migrations/NNN-*.sql (version
# NNN-1 -> NNN, in order) are the one source of the schema: compiled in as
# strings, ledger_migrations[v] taking a ledger from version v to v + 1.
# The PostgreSQL schema is the same versions in schemas/pg/ (ledger.sql and
# migrations/NNN-*.sql): ledger_pg_migrations[v], and the two lists must be
# as long as each other (a new version is written for both engines).
MIGRATIONS := schemas/ledger.sql $(sort $(wildcard schemas/migrations/*.sql))
PG_MIGRATIONS := schemas/pg/ledger.sql $(sort $(wildcard schemas/pg/migrations/*.sql))
ifneq ($(words $(MIGRATIONS)),$(words $(PG_MIGRATIONS)))
$(error schemas/migrations has $(words $(MIGRATIONS)) versions, schemas/pg/migrations $(words $(PG_MIGRATIONS)): write the new version for both engines)
endif
ifneq ($(notdir $(MIGRATIONS)),$(notdir $(PG_MIGRATIONS)))
$(error schemas/migrations and schemas/pg/migrations name their versions differently: $(notdir $(MIGRATIONS)) vs $(notdir $(PG_MIGRATIONS)))
endif
# $(call schema_c,ARRAY,COUNT,FILES)
schema_c = { echo '/* generated from $(3): do not edit */'; \
	  echo 'const char *const $(1)[] = {'; \
	  for f in $(3); do echo "/* $$f */"; \
	    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $$f; echo ','; done; \
	  echo '};'; echo 'const int $(2) = $(words $(3));'; }
$(B)/gen/ledger_schema.c: $(MIGRATIONS)
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	$(Q)$(call schema_c,ledger_migrations,ledger_n_migrations,$(MIGRATIONS)) > $@
$(B)/gen/ledger_pg_schema.c: $(PG_MIGRATIONS)
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	$(Q)$(call schema_c,ledger_pg_migrations,ledger_pg_n_migrations,$(PG_MIGRATIONS)) > $@

$(B)/gen/version.c: FORCE
	@mkdir -p $(dir $@)
	$(Q)printf '/* generated by the Makefile: do not edit */\nconst char tally_version[] = "%s";\nconst char tally_revision[] = "%s";\n' \
	  '$(VERSION_TXT)' '$(REVISION)' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; echo "  GEN     $@"; fi

# Man pages, made from the docs (scripts/md2man.py) so the two cannot drift.
MAN_DATE := $(shell git log -1 --format=%cs 2>/dev/null || date -u -d "@$${SOURCE_DATE_EPOCH:-0}" +%F)
MD2MAN = python3 scripts/md2man.py --version '$(VERSION_TXT)' --date '$(MAN_DATE)' --skip-title
man: $(MANS)
$(B)/man/tallyd.8: docs/man/tallyd.8.md scripts/md2man.py
	@mkdir -p $(dir $@)
	$(Q)$(MD2MAN) --name tallyd --section 8 --summary "the tally metering daemon" $< > $@
$(B)/man/tally.1: docs/man/tally.1.md docs/usage.md docs/invoice.md docs/sla.md docs/ledger.md scripts/md2man.py
	@mkdir -p $(dir $@)
	$(Q)$(MD2MAN) --name tally --section 1 --summary "usage reports, invoices and SLA reports from the tally ledger" \
	  $(filter %.md,$^) > $@
$(B)/man/check_tally.1: docs/man/check_tally.1.md scripts/md2man.py
	@mkdir -p $(dir $@)
	$(Q)$(MD2MAN) --name check_tally --section 1 --summary "Nagios/Icinga plugin for a running tallyd" $< > $@
$(B)/man/tally.yaml.5: docs/config.md scripts/md2man.py
	@mkdir -p $(dir $@)
	$(Q)$(MD2MAN) --name tally.yaml --section 5 --summary "tallyd configuration file" $< > $@
$(B)/man/tally-plan.5: schemas/plan.md scripts/md2man.py
	@mkdir -p $(dir $@)
	$(Q)$(MD2MAN) --name tally-plan --section 5 --summary "tally rate plan format" $< > $@
$(B)/man/tally.7: docs/architecture.md docs/meters.md scripts/md2man.py
	@mkdir -p $(dir $@)
	$(Q)$(MD2MAN) --name tally --section 7 --summary "how tally meters usage exactly, and what it measures" \
	  $(filter %.md,$^) > $@

$(B)/gen/%.o: $(B)/gen/%.c
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(B)/%: $(B)/cmd/%.o $(B)/libtally.a
	@echo "  LD      $@"
	$(Q)$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $< $(B)/libtally.a $(LDLIBS_ALL)

$(B)/tests/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(TEST_CFLAGS) -c -o $@ $<

$(B)/tests/%: $(B)/tests/%.o $(B)/libtally.a
	@echo "  LD      $@"
	$(Q)$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $< $(B)/libtally.a $(TEST_LIBS) $(LDLIBS_ALL)

$(B)/bench/%: bench/%.c $(B)/libtally.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(B)/libtally.a $(LDLIBS_ALL)

# Every unit suite, then every integration script; one summary line at the end.
# bench/simagents (simulated agents) is also the integration tests' client.
check: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BIN) $(B)/bench/simagents
	$(Q)B=$(B) SANITIZE=$(SANITIZE) tests/run.sh $(UNIT_BIN)

check-unit: $(UNIT_BIN)
	$(Q)B=$(B) tests/run.sh --unit-only $(UNIT_BIN)

# Real QEMU guests under libvirtd (tests/vm/run.sh): root, a few minutes.
check-vm: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)B=$(B) sh tests/vm/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCH_BIN)
	$(Q)B=$(B) bench/run.sh

# libFuzzer targets (tests/fuzz/README.md); clang only.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_PKT := collectors/pktdecode.c collectors/pktclass.c collectors/lpm.c
fuzz: deps
	@command -v clang >/dev/null || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@mkdir -p build-fuzz
	$(Q)for f in $(FUZZ_SRC); do n=$$(basename $$f .c); echo "  FUZZ    build-fuzz/$$n"; \
	  clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined $(CPPFLAGS) $(PKG_CFLAGS) \
	    -o build-fuzz/$$n $$f $(wildcard common/*.c) billing/plan.c billing/money.c billing/customer.c \
	    aggregator/alertcfg.c aggregator/import_parse.c \
	    collectors/snmp_parse.c collectors/cgroup_parse.c collectors/mapping.c collectors/libvirt_xml.c \
	    exporters/httpgate.c $(FUZZ_PKT) $(LDLIBS_ALL) || exit 1; done

clean:
	rm -rf build build-san build-fuzz $(PROGS)

FORCE:

-include $(shell find $(B) -name '*.d' 2>/dev/null)
.SECONDARY:
