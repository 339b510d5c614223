# tally: hand-written Makefile. `make V=1` shows full commands;
# `make check SANITIZE=1` builds and tests under ASan+UBSan in build-san/;
# `make WERROR=1` (CI) turns warnings into errors.

PKGS      := sqlite3 yaml-0.1 librrd jansson libvirt libxml-2.0 libcrypto libmicrohttpd libcurl libpcap
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
CPPFLAGS += -D_GNU_SOURCE -I. -Icommon -Icollectors -Iaggregator -Ibilling -Iexporters
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

LIB_SRC := $(wildcard common/*.c collectors/*.c aggregator/*.c billing/*.c exporters/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o) $(B)/gen/ledger_schema.o
PROGS   := tallyd tally check_tally
PROG_BIN := $(PROGS:%=$(B)/%)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)

.PHONY: all deps check check-unit check-integration check-vm demo bench fuzz clean
all: $(PROG_BIN)
	@for p in $(PROGS); do ln -sf $(B)/$$p $$p 2>/dev/null || true; done

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
MIGRATIONS := schemas/ledger.sql $(sort $(wildcard schemas/migrations/*.sql))
$(B)/gen/ledger_schema.c: $(MIGRATIONS)
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	$(Q){ echo '/* generated from $(MIGRATIONS): do not edit */'; \
	  echo 'const char *const ledger_migrations[] = {'; \
	  for f in $^; do echo "/* $$f */"; \
	    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $$f; echo ','; done; \
	  echo '};'; echo 'const int ledger_n_migrations = $(words $(MIGRATIONS));'; } > $@

$(B)/gen/%.o: $(B)/gen/%.c
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(B)/%: $(B)/cmd/%.o $(B)/libtally.a
	@echo "  LD      $@"
	$(Q)$(CC) $(SANFLAGS) -o $@ $< $(B)/libtally.a $(LDLIBS_ALL)

$(B)/tests/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(TEST_CFLAGS) -c -o $@ $<

$(B)/tests/%: $(B)/tests/%.o $(B)/libtally.a
	@echo "  LD      $@"
	$(Q)$(CC) $(SANFLAGS) -o $@ $< $(B)/libtally.a $(TEST_LIBS) $(LDLIBS_ALL)

$(B)/bench/%: bench/%.c $(B)/libtally.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(B)/libtally.a $(LDLIBS_ALL)

# Every unit suite, then every integration script; one summary line at the end.
check: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BIN)
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
	    -o build-fuzz/$$n $$f $(wildcard common/*.c) billing/plan.c billing/money.c aggregator/alertcfg.c \
	    $(FUZZ_PKT) $(LDLIBS_ALL) || exit 1; done

clean:
	rm -rf build build-san build-fuzz $(PROGS)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
.SECONDARY:
