# grgw - secure inter-site gateway.  GNU make.
#   make            build ./grgw (strict warnings)
#   make deps       install the Debian packages needed to build, test, run
#   make check      unit tests (plain, ASan+UBSan), fuzz smoke, lab tests
#   make unit       unit tests only
#   make feeds-check  the Clearwater alarm hook and the etcd feed (real etcd)
#   make monitoring-check  Prometheus rules (promtool) and Grafana dashboard
#   make lab        two-site namespace lab with grgw up on both sides
#   make bench      benchmarks
#   make check-kernel  the lab on Debian's kernel (XFRM) in a qemu VM
#   make bench-kernel  kernel vs libipsec vs bare WAN, in that VM
#   make vagrant-box   a local Debian 12 libvirt box for the Vagrant lab
#   make check-vagrant the Vagrant lab booted with libvirt, checked over ssh
#   make install    binary, systemd unit, man pages, example configuration,
#                   alarm hook and definition, Prometheus rules, dashboard
#                   (DESTDIR, PREFIX, SBINDIR, SYSCONFDIR, UNITDIR, MANDIR)
#   make uninstall  removes what install put there (an edited config stays)
#   make deb        Debian package grgw_VERSION_ARCH.deb (apt install ./grgw_*.deb)

PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/grgw
DATADIR ?= $(PREFIX)/share/grgw
# Where Clearwater's alarm agent reads alarm definitions.  CW_ALARMS: yes
# (always install grgw's there), no, or auto (only where the directory
# exists, that is where Clearwater is installed).
CW_ALARMDIR ?= /usr/share/clearwater/infrastructure/alarms
CW_ALARMS ?= auto
DESTDIR ?=
CC      ?= cc
CLANG   ?= clang
V       ?= 0
B       ?= build
GRGW_USER ?= _grgw

PKGS    := libnl-3.0 libnl-route-3.0 libevent libsodium libnftables jansson \
	   libseccomp libcrypto
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
# Each harness links only the sources it tests and what those strictly
# need, and only the libraries named: that it links at all proves the
# code under test does no I/O of its own (no event loop, no kernel).
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/%.c=%)

fuzz_config_SRCS   := gw/config.c gw/addr.c gw/err.c gw/log.c gw/psk.c \
		      policy/policy.c
fuzz_config_LIBS   := libsodium
fuzz_etcd_SRCS     := gw/etcd_msg.c gw/addr.c gw/err.c
fuzz_etcd_LIBS     := jansson libsodium
fuzz_probe_SRCS    := gw/probe_codec.c
fuzz_probe_LIBS    := libsodium
fuzz_pair_SRCS     := gw/pair_codec.c gw/pair_role.c gw/probe_codec.c \
		      gw/addr.c gw/err.c
fuzz_pair_LIBS     := libsodium
fuzz_vici_SRCS     := ipsec/vici_msg.c gw/err.c
fuzz_vici_LIBS     := libsodium
fuzz_xfrm_SRCS     := netlink/xfrm.c gw/log.c
fuzz_xfrm_LIBS     := libnl-3.0
fuzz_record_SRCS   := netlink/record.c gw/addr.c gw/err.c gw/log.c
fuzz_record_LIBS   :=
fuzz_nftcount_SRCS := netlink/nftcount.c
fuzz_nftcount_LIBS :=
fuzz_pmsg_SRCS     := gw/pmsg.c
fuzz_pmsg_LIBS     :=
fuzz_http_SRCS     := gw/httpreq.c
fuzz_http_LIBS     :=

define fuzz_rule
$(B)/fuzz/$(1): tests/fuzz/$(1).c $$($(1)_SRCS)
	@mkdir -p $$(dir $$@)
	$$(E) "  FUZZ    $$@"
	$$(Q)$$(CLANG) -std=gnu11 -D_GNU_SOURCE -iquote . -iquote gw \
		$$(PKG_CFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined \
		-o $$@ $$< $$($(1)_SRCS) \
		$$(if $$($(1)_LIBS),$$(shell pkg-config --libs $$($(1)_LIBS)))
endef
$(foreach f,$(FUZZ_NAMES),$(eval $(call fuzz_rule,$(f))))

fuzz: $(FUZZ_NAMES:%=$(B)/fuzz/%)

# For tests/build/run.sh: the sources one harness declares.
print-fuzz-srcs:
	@echo $($(FUZZ)_SRCS)

# ---- lab tools --------------------------------------------------------------
# probe-inject: sends good, forged, tampered, replayed and garbage probes.
$(B)/probe-inject: $(B)/obj/tests/lab/probe-inject.o $(B)/libgrgw.a
	$(E) "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# ---- tests ----------------------------------------------------------------
unit-bins: $(UNITS:%=$(B)/unit/%) $(UNITS:%=$(B)/unit-asan/%)

unit: unit-bins
	$(Q)tests/run-unit.sh $(B) $(UNITS)

fuzz-smoke: fuzz
	$(Q)tests/run-fuzz.sh $(B) 15

# etcdtest, fencetest: drive gw/etcd.c and gw/fence.c against a real etcd
# for tests/feeds/run.sh.
$(B)/feeds/%: $(B)/obj/tests/feeds/%.o $(B)/libgrgw.a
	@mkdir -p $(dir $@)
	$(E) "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

feeds-check: $(B)/feeds/etcdtest $(B)/feeds/fencetest
	$(Q)tests/feeds/run.sh $(B)

# The shipped Prometheus rules and Grafana dashboard: promtool check and
# unit tests, metric names against what grgw exports (Debian's prometheus
# package; tests/deps.sh installs it).  The lab test link-prometheus runs
# them in a real Prometheus.
monitoring-check:
	$(Q)tests/monitoring/run.sh

lab: grgw
	$(Q)tests/lab/lab.sh demo

lab-check: grgw $(B)/probe-inject
	$(Q)tests/lab/run-tests.sh

check: grgw unit-bins fuzz $(B)/probe-inject $(B)/feeds/etcdtest \
	$(B)/feeds/fencetest
	$(Q)tests/check.sh $(B) $(UNITS)

bench: grgw
	$(Q)tests/bench/bench.sh
	$(Q)tests/bench/startup-bench.sh
	$(Q)tests/bench/link-bench.sh
	$(Q)tests/bench/interop-bench.sh
	$(Q)tests/bench/qos-bench.sh
	$(Q)tests/bench/reload-bench.sh
	$(Q)tests/bench/rekey-bench.sh
	$(Q)tests/bench/pair-bench.sh

# The two-site lab with the kernel data plane, in a VM running Debian's
# kernel (qemu; apt-get installs qemu-system-x86, linux-image-amd64 and
# busybox-static when missing).  Exit 77 and "skipped: ..." without them.
check-kernel: grgw
	$(Q)tests/kernel-lab/run.sh

bench-kernel: grgw
	$(Q)tests/kernel-lab/run.sh bench

# The Vagrant lab (vagrant/) booted with libvirt and checked over ssh; the
# local Debian 12 box it uses, with every package inside, added to Vagrant
# as grgw-lab/bookworm (both install what they need with apt-get; run as root).
vagrant-box:
	$(Q)tests/vagrant/run.sh box

check-vagrant: grgw
	$(Q)tests/vagrant/run.sh check

deps:
	$(Q)tests/deps.sh

# ---- install ----------------------------------------------------------------
# The unit names the installed paths; the operator's grgw.conf is never
# overwritten, and uninstall removes it only while it is the unedited example.
CONF_DIR := $(DESTDIR)$(SYSCONFDIR)/grgw

install: grgw
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DOCDIR)/examples $(CONF_DIR)
	install -m 0755 grgw $(DESTDIR)$(SBINDIR)/grgw
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		gw/grgw.service.in >$(DESTDIR)$(UNITDIR)/grgw.service
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		gw/grgw-block.service.in >$(DESTDIR)$(UNITDIR)/grgw-block.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/grgw.service $(DESTDIR)$(UNITDIR)/grgw-block.service
	install -m 0644 gw/grgw.8 $(DESTDIR)$(MANDIR)/man8/grgw.8
	install -m 0644 gw/grgw.conf.5 $(DESTDIR)$(MANDIR)/man5/grgw.conf.5
	install -m 0644 grgw.conf.example $(DESTDIR)$(DOCDIR)/examples/grgw.conf
	install -d $(DESTDIR)$(DATADIR)/hooks $(DESTDIR)$(DATADIR)/alarms
	install -m 0755 gw/hooks/clearwater-alarm $(DESTDIR)$(DATADIR)/hooks/clearwater-alarm
	install -m 0644 gw/hooks/grgw_alarms.json $(DESTDIR)$(DATADIR)/alarms/grgw_alarms.json
	install -d $(DESTDIR)$(DATADIR)/monitoring
	install -m 0644 gw/monitoring/grgw-rules.yml $(DESTDIR)$(DATADIR)/monitoring/grgw-rules.yml
	install -m 0644 gw/monitoring/grgw-dashboard.json $(DESTDIR)$(DATADIR)/monitoring/grgw-dashboard.json
	@if [ "$(CW_ALARMS)" = yes ] || \
	    { [ "$(CW_ALARMS)" = auto ] && [ -d "$(DESTDIR)$(CW_ALARMDIR)" ]; }; then \
		echo "install -m 0644 gw/hooks/grgw_alarms.json $(DESTDIR)$(CW_ALARMDIR)/"; \
		install -d $(DESTDIR)$(CW_ALARMDIR); \
		install -m 0644 gw/hooks/grgw_alarms.json $(DESTDIR)$(CW_ALARMDIR)/grgw_alarms.json; \
	fi
	@# The network process's user (not in a staging tree: the package's
	@# postinst makes it on the host it is installed on).
	@if [ -z "$(DESTDIR)" ] && ! getent passwd $(GRGW_USER) >/dev/null; then \
		echo "adduser --system --group $(GRGW_USER)"; \
		adduser --system --group --no-create-home --home /nonexistent \
			--quiet $(GRGW_USER); \
	fi
	@if [ -e $(CONF_DIR)/grgw.conf ]; then \
		echo "kept $(CONF_DIR)/grgw.conf"; \
	else \
		echo "install -m 0644 grgw.conf.example $(CONF_DIR)/grgw.conf"; \
		install -m 0644 grgw.conf.example $(CONF_DIR)/grgw.conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/grgw $(DESTDIR)$(UNITDIR)/grgw.service \
		$(DESTDIR)$(UNITDIR)/grgw-block.service \
		$(DESTDIR)$(MANDIR)/man8/grgw.8 $(DESTDIR)$(MANDIR)/man5/grgw.conf.5 \
		$(DESTDIR)$(DOCDIR)/examples/grgw.conf $(CONF_DIR)/grgw.conf.example \
		$(DESTDIR)$(DATADIR)/hooks/clearwater-alarm \
		$(DESTDIR)$(DATADIR)/alarms/grgw_alarms.json \
		$(DESTDIR)$(DATADIR)/monitoring/grgw-rules.yml \
		$(DESTDIR)$(DATADIR)/monitoring/grgw-dashboard.json \
		$(DESTDIR)$(CW_ALARMDIR)/grgw_alarms.json
	@if cmp -s grgw.conf.example $(CONF_DIR)/grgw.conf; then \
		echo "rm -f $(CONF_DIR)/grgw.conf"; rm -f $(CONF_DIR)/grgw.conf; \
	elif [ -e $(CONF_DIR)/grgw.conf ]; then \
		echo "kept $(CONF_DIR)/grgw.conf (edited)"; \
	fi
	@for d in $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(DATADIR)/hooks $(DESTDIR)$(DATADIR)/alarms \
	    $(DESTDIR)$(DATADIR)/monitoring $(DESTDIR)$(DATADIR) \
	    $(CONF_DIR); do \
		if [ -d $$d ]; then rmdir --ignore-fail-on-non-empty $$d; fi; \
	done

# ---- Debian package ---------------------------------------------------------
# Built from a staging tree (make install into it) with dpkg-deb; no root
# needed.  The maintainer scripts are gw/deb/; /etc/grgw/grgw.conf is a
# conffile, so dpkg keeps the operator's edits on upgrades.  Depends: what
# dpkg-shlibdeps finds for the binary, and the strongSwan parts grgw's charon
# loads (vici: swanctl; gcm, openssl: standard; curve25519: extra;
# kernel-libipsec: libcharon-extra).  tests/package/run.sh checks the list.
VERSION  := $(shell sed -n 's/^\#define GRGW_VERSION[[:space:]]*"\(.*\)"/\1/p' gw/grgw.h)
DEB_VERSION ?= $(VERSION)
DEB_ARCH ?= $(shell dpkg --print-architecture 2>/dev/null)
DEB      ?= grgw_$(DEB_VERSION)_$(DEB_ARCH).deb
DEB_MAINTAINER ?= grgw maintainers <grgw@example.org>
DEB_DEPENDS := libc6 (>= 2.34), libevent-2.1-7 (>= 2.1.8-stable), \
	libjansson4 (>= 2.14), libnftables1 (>= 1.0.2), libnl-3-200 (>= 3.2.7), \
	libnl-route-3-200 (>= 3.5.0), libsodium23 (>= 1.0.14), \
	libseccomp2 (>= 2.5.0), libssl3 (>= 3.0.0), adduser, \
	strongswan-charon (>= 5.9), strongswan-swanctl, \
	libstrongswan-standard-plugins, libstrongswan-extra-plugins, \
	libcharon-extra-plugins
DEB_ROOT := $(B)/deb/root

deb: grgw
	$(E) "  DEB     $(DEB)"
	$(Q)rm -rf $(B)/deb
	$(Q)$(MAKE) --no-print-directory -s install DESTDIR=$(abspath $(DEB_ROOT)) \
		PREFIX=/usr UNITDIR=/lib/systemd/system SYSCONFDIR=/etc CW_ALARMS=yes >/dev/null
	$(Q)strip --strip-unneeded --remove-section=.comment --remove-section=.note \
		$(DEB_ROOT)/usr/sbin/grgw
	$(Q)gzip -9n $(DEB_ROOT)/usr/share/man/man8/grgw.8 \
		$(DEB_ROOT)/usr/share/man/man5/grgw.conf.5
	$(Q)install -d -m 0755 $(DEB_ROOT)/DEBIAN
	$(Q)install -m 0755 gw/deb/postinst gw/deb/prerm gw/deb/postrm $(DEB_ROOT)/DEBIAN/
	$(Q)install -m 0644 gw/deb/triggers $(DEB_ROOT)/DEBIAN/triggers
	$(Q)echo /etc/grgw/grgw.conf >$(DEB_ROOT)/DEBIAN/conffiles
	$(Q)cd $(DEB_ROOT) && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | \
		LC_ALL=C sort | xargs md5sum >DEBIAN/md5sums
	$(Q)sed -e 's|@VERSION@|$(DEB_VERSION)|' -e 's|@ARCH@|$(DEB_ARCH)|' \
		-e 's|@MAINTAINER@|$(DEB_MAINTAINER)|' -e 's|@DEPENDS@|$(DEB_DEPENDS)|' \
		-e "s|@SIZE@|$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)|" \
		gw/deb/control.in >$(DEB_ROOT)/DEBIAN/control
	$(Q)chmod 0644 $(DEB_ROOT)/DEBIAN/control $(DEB_ROOT)/DEBIAN/conffiles \
		$(DEB_ROOT)/DEBIAN/md5sums
	$(Q)dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB) >/dev/null

# The package's file name, for scripts (vagrant/provision.sh, tests).
print-deb:
	@echo $(DEB)

clean:
	rm -rf $(B) grgw grgw_*.deb

.PHONY: all fuzz print-fuzz-srcs unit unit-bins fuzz-smoke feeds-check monitoring-check lab lab-check check bench deps \
	check-kernel bench-kernel vagrant-box check-vagrant \
	install uninstall deb print-deb clean
.SECONDARY:

-include $(shell find $(B) -name '*.d' 2>/dev/null)
