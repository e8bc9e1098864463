# grgw - secure inter-site gateway.  GNU make.
#   make            build ./grgw (strict warnings)
#   make deps       install the Debian packages needed to build, test, run
#   make check      unit tests (plain, ASan+UBSan), fuzz smoke, lab tests
#   make unit       unit tests only
#   make lab        two-site namespace lab with grgw up on both sides
#   make bench      benchmarks
#   make install    binary + example configuration (DESTDIR, PREFIX)

PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
DESTDIR ?=
CC      ?= cc
CLANG   ?= clang
V       ?= 0
B       ?= build

PKGS    := libnl-3.0 libnl-route-3.0 libevent libsodium libnftables
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wformat=2 \
	   -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wcast-qual \
	   -Wno-unused-parameter -Wno-format-truncation
XCFLAGS := -std=gnu11 -D_GNU_SOURCE -iquote . -iquote gw $(WARN) $(PKG_CFLAGS) \
	   -fstack-protector-strong -D_FORTIFY_SOURCE=2 -MMD -MP
LDLIBS  := $(PKG_LIBS)
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined

ifeq ($(V),1)
Q :=
E := @true
else
Q := @
E := @echo
endif

# Everything but main.c goes into a library that tests link against.
LIB_SRC := $(filter-out gw/main.c,$(wildcard gw/*.c ipsec/*.c netlink/*.c policy/*.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNITS   := $(UNIT_SRC:tests/unit/%.c=%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

all: grgw

# ---- plain build ---------------------------------------------------------
$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(E) "  CC      $<"
	$(Q)$(CC) $(XCFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libgrgw.a: $(LIB_SRC:%.c=$(B)/obj/%.o)
	$(Q)rm -f $@ && ar rcs $@ $^

grgw: $(B)/obj/gw/main.o $(B)/libgrgw.a
	$(E) "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# ---- sanitizer build (unit tests) ----------------------------------------
$(B)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(E) "  CC[san] $<"
	$(Q)$(CC) $(XCFLAGS) -O1 -g $(SAN) -c -o $@ $<

$(B)/libgrgw-asan.a: $(LIB_SRC:%.c=$(B)/asan/%.o)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/unit/%: $(B)/obj/tests/unit/%.o $(B)/libgrgw.a
	@mkdir -p $(dir $@)
	$(E) "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(B)/unit-asan/%: $(B)/asan/tests/unit/%.o $(B)/libgrgw-asan.a
	@mkdir -p $(dir $@)
	$(E) "  LD[san] $@"
	$(Q)$(CC) $(SAN) -o $@ $^ $(LDLIBS) -lcmocka

# ---- fuzzers (clang, libFuzzer) ------------------------------------------
$(B)/fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	$(E) "  FUZZ    $@"
	$(Q)$(CLANG) -std=gnu11 -D_GNU_SOURCE -iquote . -iquote gw $(PKG_CFLAGS) -g -O1 \
		-fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRC) $(LDLIBS)

fuzz: $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)

# ---- tests ----------------------------------------------------------------
unit-bins: $(UNITS:%=$(B)/unit/%) $(UNITS:%=$(B)/unit-asan/%)

unit: unit-bins
	$(Q)tests/run-unit.sh $(B) $(UNITS)

fuzz-smoke: fuzz
	$(Q)tests/run-fuzz.sh $(B) 15

lab: grgw
	$(Q)tests/lab/lab.sh demo

lab-check: grgw
	$(Q)tests/lab/run-tests.sh

check: grgw unit-bins fuzz
	$(Q)tests/check.sh $(B) $(UNITS)

bench: grgw
	$(Q)tests/bench/bench.sh

deps:
	$(Q)tests/deps.sh

# ---- install ----------------------------------------------------------------
install: grgw
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/grgw
	install -m 0755 grgw $(DESTDIR)$(SBINDIR)/grgw
	install -m 0644 grgw.conf.example $(DESTDIR)$(SYSCONFDIR)/grgw/grgw.conf.example

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/grgw $(DESTDIR)$(SYSCONFDIR)/grgw/grgw.conf.example
	-rmdir $(DESTDIR)$(SYSCONFDIR)/grgw 2>/dev/null

clean:
	rm -rf $(B) grgw

.PHONY: all fuzz unit unit-bins fuzz-smoke lab lab-check check bench deps \
	install uninstall clean
.SECONDARY:

-include $(shell find $(B) -name '*.d' 2>/dev/null)
