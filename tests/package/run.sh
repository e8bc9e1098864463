#!/bin/bash
#
# What an operator installs, and the VM lab, checked as far as this machine
# can run them:
#
#   plan      tests/lab/site-a.conf and site-b.conf agree with plan.env, the
#             lab plan both the namespace lab and the VM lab read
#   docs      grgw(8) and grgw.conf(5) render without warnings and document
#             every subcommand (gw/main.c) and every key (gw/config.c)
#   install   make install / make uninstall into a scratch root (DESTDIR):
#             exactly the expected files, an edited config kept, nothing
#             left; into a scratch PREFIX: the unit passes systemd-analyze
#   deb       make deb: control fields, conffiles, contents, and Depends
#             covering the binary's libraries and the plugins charon loads
#   dpkg      the package installed on this machine with dpkg: check-config
#             on the installed example, systemd-analyze verify, man pages,
#             an edited conffile kept across reinstall and upgrades, purge
#             leaves nothing (a `make install` in /usr/local is untouched)
#   sandbox   grgw confined like grgw.service (its capability bounding set,
#             no new privileges, a read-only file system but /run/grgw)
#             brings the namespace lab's tunnel up and tears it down
#   vagrant   vagrant validate --ignore-provider on vagrant/Vagrantfile, and
#             the provisioning, packaging and test scripts pass shellcheck
#
# usage: run.sh [TEST...]        as root; default: every test
#
# The dpkg test installs and purges the grgw package on this machine; it
# refuses to start while a grgw package is installed, and puts back an
# /etc/grgw that was there before.  dpkg and sandbox wait (up to 5 min)
# for the namespace lab to be free: they use its names and site-a's
# runtime directory.  The last line is "N passed, N failed".

set -u

HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/grgw-pkgtest.XXXXXX)
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 MANWIDTH=80

# check, pass, fail, wait_until, conf_value, the plan's variables
# shellcheck source-path=SCRIPTDIR source=../lab/lib.sh
. "$TOP/tests/lab/lib.sh"

ALL_TESTS=(plan docs install deb dpkg sandbox vagrant)
VERSION=
DEB_FILE=$WORK/grgw.deb
ETC_SAVED=
INSTALLED_HERE=0
SANDBOX_DIR=
SANDBOX_CAPS=

cleanup() {
	set +e
	if [ -n "$SANDBOX_DIR" ]; then
		GRGW=$WORK/sandboxed-grgw
		[ -f "$SANDBOX_DIR/site-a.conf" ] && on gw-a "$GRGW" down --purge -c "$SANDBOX_DIR/site-a.conf" >/dev/null 2>&1
		[ -f "$SANDBOX_DIR/site-b.conf" ] && on gw-b "$GRGW" down --purge -c "$SANDBOX_DIR/site-b.conf" >/dev/null 2>&1
		"$LAB_HERE/lab.sh" down >/dev/null 2>&1
		rm -rf "$SANDBOX_DIR"
	fi
	if [ "$INSTALLED_HERE" -eq 1 ] && dpkg_installed; then
		dpkg --purge grgw >/dev/null 2>&1
	fi
	if [ -n "$ETC_SAVED" ]; then
		rm -rf /etc/grgw
		mv "$ETC_SAVED" /etc/grgw
	elif [ -f "$WORK/made-psk" ]; then
		rm -f /etc/grgw/psk
		rmdir /etc/grgw 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n=== %s\n' "$*"; }

# ---- helpers ----------------------------------------------------------------

# conf_values FILE SECTION KEY: every value of KEY in [SECTION], one line,
# space-separated
conf_values() {
	awk -v sect="[$2]" -v key="$3" '
		/^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); in_sect = ($0 == sect); next }
		in_sect && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
			sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]+$/, ""); print
		}' "$1" | paste -sd' ' -
}

# conf_is FILE SECTION KEY EXPECTED: the values of KEY are EXPECTED
conf_is() {
	local got
	got=$(conf_values "$1" "$2" "$3")
	echo "[$2] $3: \"$got\", plan: \"$4\""
	[ "$got" = "$4" ]
}

# files_under DIR: the files and symbolic links below DIR, relative, sorted
files_under() {
	(cd "$1" && find . \( -type f -o -type l \) -printf '%P\n' | LC_ALL=C sort)
}

# same_lines EXPECTED-FILE ACTUAL-FILE: equal, or a diff
same_lines() { diff -u "$1" "$2"; }

# empty_output CMD...: CMD succeeds and prints nothing (warnings included)
empty_output() {
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	printf '%s\n' "$out"
	[ "$rc" -eq 0 ] && [ -z "$out" ]
}

# man_clean PAGE: renders with no warning on stderr
man_clean() {
	local err
	err=$(man --warnings -l "$1" 2>&1 >/dev/null)
	printf '%s\n' "$err"
	[ -z "$err" ]
}

dpkg_installed() {
	dpkg-query -W -f='${Status}' grgw 2>/dev/null | grep -q "install ok installed"
}

# The namespace lab is free: no grgwlab-* namespace, no lab site state.
lab_free() {
	[ -z "$(lab_namespaces)" ] && [ ! -e "$LAB_RUN_DIR/site-a" ] && [ ! -e "$LAB_RUN_DIR/site-b" ]
}

wait_for_lab() {
	lab_free && return 0
	note "the namespace lab is in use (grgwlab-* namespaces or /run/grgw/site-*); waiting up to 5 min"
	wait_until 300 lab_free
}

version_of_binary() { "$TOP/grgw" version | awk '{ print $2 }'; }

build_deb() {
	[ -s "$DEB_FILE" ] && return 0
	make -s -C "$TOP" deb DEB="$DEB_FILE" >"$WORK/deb.log" 2>&1 || {
		show_file "$WORK/deb.log"
		return 1
	}
}

# ---- plan: the site configurations follow the lab plan -----------------------------

t_plan() {
	local s o S O f
	for s in a b; do
		S=${s^^}
		o=$([ "$s" = a ] && echo b || echo a)
		O=${o^^}
		f=$LAB_HERE/$(plan "SITE_${S}_NAME").conf
		check "$(basename "$f") exists" test -f "$f"
		[ -f "$f" ] || continue
		check "$(basename "$f"): [site] name" conf_is "$f" site name "$(plan "SITE_${S}_NAME")"
		check "$(basename "$f"): [site] wan_interface" conf_is "$f" site wan_interface "$GW_WAN_IF"
		check "$(basename "$f"): [site] wan_address" conf_is "$f" site wan_address "$(plan "GW_${S}_WAN")"
		check "$(basename "$f"): [site] lan_interface" conf_is "$f" site lan_interface "$GW_LAN_IF"
		check "$(basename "$f"): [site] lan_address" conf_is "$f" site lan_address \
			"$(plan "GW_${S}_LAN4") $(plan "GW_${S}_LAN6")"
		check "$(basename "$f"): [site] prefix" conf_is "$f" site prefix \
			"$(plan "SITE_${S}_PREFIX4") $(plan "SITE_${S}_PREFIX6")"
		check "$(basename "$f"): [peer] name" conf_is "$f" peer name "$(plan "SITE_${O}_NAME")"
		check "$(basename "$f"): [peer] address" conf_is "$f" peer address "$(plan "GW_${O}_WAN")"
		check "$(basename "$f"): [peer] address under NAT" \
			grep -qx "# lab --nat: address = $(plan "GW_${O}_PUBLIC")" "$f"
		check "$(basename "$f"): [peer] lan_address" conf_is "$f" peer lan_address \
			"$(plan "GW_${O}_LAN4") $(plan "GW_${O}_LAN6")"
		check "$(basename "$f"): [peer] prefix" conf_is "$f" peer prefix \
			"$(plan "SITE_${O}_PREFIX4") $(plan "SITE_${O}_PREFIX6")"
	done
}

# ---- docs: the man pages --------------------------------------------------------------

# man_source PAGE: the roff source with \- turned into -
man_source() { sed 's/\\-/-/g' "$1"; }

# documents_command NAME: grgw(8) has ".B NAME" under COMMANDS
documents_command() {
	man_source "$TOP/gw/grgw.8" |
		awk -v cmd="$1" '/^\.SH/ { in_cmds = ($0 ~ /COMMANDS/) } in_cmds && $0 == ".B " cmd { found = 1 } END { exit !found }'
}

# documents_key SECTION KEY: grgw.conf(5) has '.BI "KEY = "' under .SS "[SECTION..."
documents_key() {
	man_source "$TOP/gw/grgw.conf.5" |
		awk -v sect="$1" -v key="$2" '
			/^\.S[SH]/ { in_sect = (index($0, ".SS \"[" sect "]") == 1 || index($0, ".SS \"[" sect " ") == 1) }
			in_sect && index($0, ".BI \"" key " = \"") == 1 { found = 1 }
			END { exit !found }'
}

# config_keys: "section key" for every row of key_defs[] in gw/config.c
config_keys() {
	perl -0ne '
		my %sect;
		$sect{$1} = $2 while /\[(SEC_[A-Z]+)\]\s*=\s*"([a-z]+)"/g;
		if (/key_defs\[K_COUNT\]\s*=\s*\{(.*?)\n\};/s) {
			for my $row (split /\n\s*\[K_/, $1) {
				my ($s) = $row =~ /\b(SEC_[A-Z]+)\b/;
				$s = "SEC_CLASS" if $row =~ /\bCLASS_[A-Z]+\(/;
				my ($k) = $row =~ /"([a-z_]+)"/;
				next unless $k;
				# a row this cannot read fails the check
				print +($s && $sect{$s} ? $sect{$s} : "?"), " $k\n";
			}
		}' "$TOP/gw/config.c"
}

t_docs() {
	local page cmd sect key n=0
	for page in "$TOP/gw/grgw.8" "$TOP/gw/grgw.conf.5"; do
		check "man --warnings: $(basename "$page") renders clean" man_clean "$page"
	done
	while read -r cmd; do
		check "grgw(8) documents the command $cmd" documents_command "$cmd"
	done < <(grep -o '{ "[a-z-]*", cmd_' "$TOP/gw/main.c" | cut -d'"' -f2)
	while read -r sect key; do
		n=$((n + 1))
		check "grgw.conf(5) documents [$sect] $key" documents_key "$sect" "$key"
	done < <(config_keys)
	check "gw/config.c's key table was read ($n keys)" test "$n" -ge 20
	check "the example configuration passes check-config" example_config_ok
}

# The example, with its key file pointed at a fresh key, is valid.
example_config_ok() {
	(umask 077 && "$TOP/grgw" keygen >"$WORK/example.psk")
	sed "s|^psk_file = .*|psk_file = $WORK/example.psk|" "$TOP/grgw.conf.example" >"$WORK/example.conf"
	"$TOP/grgw" check-config -c "$WORK/example.conf"
}

# ---- install: make install / uninstall ------------------------------------------------

t_install() {
	local root=$WORK/destdir pre=$WORK/prefix conf
	conf=$root/etc/grgw/grgw.conf
	printf '%s\n' etc/grgw/grgw.conf usr/local/lib/systemd/system/grgw.service \
		usr/local/lib/systemd/system/grgw-block.service usr/local/sbin/grgw usr/local/share/doc/grgw/examples/grgw.conf \
		usr/local/share/man/man5/grgw.conf.5 usr/local/share/man/man8/grgw.8 \
		usr/local/share/grgw/hooks/clearwater-alarm usr/local/share/grgw/alarms/grgw_alarms.json \
		usr/local/share/grgw/monitoring/grgw-rules.yml usr/local/share/grgw/monitoring/grgw-dashboard.json |
		LC_ALL=C sort >"$WORK/install.expected"

	check "make install DESTDIR=..." make -s -C "$TOP" install DESTDIR="$root"
	files_under "$root" >"$WORK/install.actual"
	check "make install: exactly the expected files" same_lines "$WORK/install.expected" "$WORK/install.actual"
	check "make install: modes (0755 binary, 0644 the rest)" same_lines \
		<(printf '%s\n' "644 etc/grgw/grgw.conf" "644 usr/local/lib/systemd/system/grgw.service" \
			"644 usr/local/lib/systemd/system/grgw-block.service" \
			"755 usr/local/sbin/grgw" "644 usr/local/share/doc/grgw/examples/grgw.conf" \
			"644 usr/local/share/man/man5/grgw.conf.5" "644 usr/local/share/man/man8/grgw.8" \
			"755 usr/local/share/grgw/hooks/clearwater-alarm" \
			"644 usr/local/share/grgw/alarms/grgw_alarms.json" \
			"644 usr/local/share/grgw/monitoring/grgw-rules.yml" \
			"644 usr/local/share/grgw/monitoring/grgw-dashboard.json" | LC_ALL=C sort -k2) \
		<(cd "$root" && xargs stat -c '%a %n' <"$WORK/install.actual")
	check "make install: the unit runs /usr/local/sbin/grgw on /etc/grgw/grgw.conf" \
		grep -qx 'ExecStart=/usr/local/sbin/grgw up -f -c /etc/grgw/grgw.conf' \
		"$root/usr/local/lib/systemd/system/grgw.service"
	check "make install: /etc/grgw/grgw.conf is the example" cmp "$TOP/grgw.conf.example" "$conf"

	echo '# edited by the package test' >>"$conf"
	check "make install again keeps an edited grgw.conf" make -s -C "$TOP" install DESTDIR="$root"
	check "the edit is still there" grep -qx '# edited by the package test' "$conf"
	check "make uninstall" make -s -C "$TOP" uninstall DESTDIR="$root"
	check "make uninstall: only the edited grgw.conf is left" same_lines \
		<(echo etc/grgw/grgw.conf) <(files_under "$root")
	cp "$TOP/grgw.conf.example" "$conf"
	check "make uninstall with the unedited example" make -s -C "$TOP" uninstall DESTDIR="$root"
	check "make uninstall: no file left" same_lines /dev/null <(files_under "$root")
	check "make uninstall: no grgw directory left" \
		same_lines /dev/null <(cd "$root" && find . -name '*grgw*')

	# Installed for real under a scratch PREFIX, the unit's paths exist.
	check "make install PREFIX=scratch" make -s -C "$TOP" install PREFIX="$pre" SYSCONFDIR="$pre/etc"
	check "systemd-analyze verify grgw.service (make install)" \
		empty_output env MANPATH="$pre/share/man" systemd-analyze verify "$pre/lib/systemd/system/grgw.service"
	check "systemd-analyze verify grgw-block.service (make install)" \
		empty_output env MANPATH="$pre/share/man" systemd-analyze verify "$pre/lib/systemd/system/grgw-block.service"
	check "make uninstall PREFIX=scratch" make -s -C "$TOP" uninstall PREFIX="$pre" SYSCONFDIR="$pre/etc"
	check "make uninstall PREFIX=scratch: no file left" same_lines /dev/null <(files_under "$pre")
}

# ---- deb: the package as built ----------------------------------------------------------

deb_field() { dpkg-deb -f "$DEB_FILE" "$1"; }

# Package names in Depends, one per line
deb_depends() { deb_field Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/[[:space:]]//g' | sed '/^$/d'; }

# depends_covers_libraries: every library grgw links directly (NEEDED)
# comes from a package named in Depends
depends_covers_libraries() {
	local soname lib pkg rc=0 n=0
	for soname in $(readelf -d "$TOP/grgw" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		n=$((n + 1))
		lib=$(ldd "$TOP/grgw" | awk -v so="$soname" '$1 == so { print $3 }')
		pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1)
		[ -n "$pkg" ] || pkg=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1)
		if [ -n "$pkg" ] && deb_depends | grep -qx "$pkg"; then
			echo "$soname: $pkg"
		else
			echo "$soname: ${pkg:-no package}, not in Depends"
			rc=1
		fi
	done
	[ "$n" -gt 0 ] || { echo "no NEEDED entry read"; rc=1; }
	return $rc
}

# The plugins grgw's charon loads (ipsec/charon.c: plugins_common and the
# rest of the load line).
charon_plugins() {
	{
		sed -n '/plugins_common\[\] =/,/;/p' "$TOP/ipsec/charon.c" | grep -o '"[^"]*"' | tr -d '"'
		grep -o '" kernel-libipsec"' "$TOP/ipsec/charon.c" | tr -d '"'
		sed -n 's/.*load = %s%s \([a-z -]*\)\\n.*/\1/p' "$TOP/ipsec/charon.c"
	} | tr ' ' '\n' | sed '/^$/d' | sort -u
}

# depends_covers_plugins: each plugin's package is in Depends, or is one
# strongswan-charon itself depends on
depends_covers_plugins() {
	local p so pkg allowed rc=0 n=0
	allowed=$( { deb_depends; dpkg-query -W -f='${Depends}\n' strongswan-charon |
		tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/[[:space:]]//g'; } | sed '/^$/d')
	for p in $(charon_plugins); do
		n=$((n + 1))
		so=/usr/lib/ipsec/plugins/libstrongswan-$p.so
		pkg=$(dpkg -S "$so" 2>/dev/null | head -n1 | cut -d: -f1)
		if [ -z "$pkg" ]; then
			echo "$p: $so is not installed here"
			rc=1
		elif grep -qx "$pkg" <<<"$allowed"; then
			echo "$p: $pkg"
		else
			echo "$p: $pkg, not in Depends"
			rc=1
		fi
	done
	[ "$n" -ge 10 ] || { echo "only $n plugins found in ipsec/charon.c"; rc=1; }
	return $rc
}

t_deb() {
	check "make deb" build_deb
	[ -s "$DEB_FILE" ] || return 0
	check "Package: grgw" test "$(deb_field Package)" = grgw
	check "Version: $VERSION" test "$(deb_field Version)" = "$VERSION"
	check "Architecture: $(dpkg --print-architecture)" test "$(deb_field Architecture)" = "$(dpkg --print-architecture)"
	check "conffiles: /etc/grgw/grgw.conf" same_lines <(echo /etc/grgw/grgw.conf) \
		<(dpkg-deb --ctrl-tarfile "$DEB_FILE" | tar -xOf - ./conffiles)
	check "maintainer scripts: postinst, prerm, postrm; triggers" same_lines \
		<(printf '%s\n' ./conffiles ./control ./md5sums ./postinst ./postrm ./prerm ./triggers) \
		<(dpkg-deb --ctrl-tarfile "$DEB_FILE" | tar -tf - | grep -v '^\./$' | LC_ALL=C sort)
	check "contents" same_lines \
		<(printf '%s\n' etc/grgw/grgw.conf lib/systemd/system/grgw.service \
			lib/systemd/system/grgw-block.service usr/sbin/grgw \
			usr/share/doc/grgw/examples/grgw.conf usr/share/man/man5/grgw.conf.5.gz \
			usr/share/man/man8/grgw.8.gz usr/share/grgw/hooks/clearwater-alarm \
			usr/share/grgw/alarms/grgw_alarms.json usr/share/grgw/monitoring/grgw-rules.yml \
			usr/share/grgw/monitoring/grgw-dashboard.json \
			usr/share/clearwater/infrastructure/alarms/grgw_alarms.json | LC_ALL=C sort) \
		<(dpkg-deb --fsys-tarfile "$DEB_FILE" | tar -tvf - | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $6 }' | LC_ALL=C sort)
	check "the unit runs /usr/sbin/grgw" \
		grep -qx 'ExecStart=/usr/sbin/grgw up -f -c /etc/grgw/grgw.conf' \
		<(dpkg-deb --fsys-tarfile "$DEB_FILE" | tar -xOf - ./lib/systemd/system/grgw.service)
	check "triggers: Clearwater's alarm agent is told of the definition" same_lines \
		<(echo 'activate-noawait clearwater-snmp-alarm-agent') \
		<(dpkg-deb --ctrl-tarfile "$DEB_FILE" | tar -xOf - ./triggers | sed '/^#/d; /^$/d')
	check "Depends covers every library grgw links" depends_covers_libraries
	check "Depends covers every plugin grgw's charon loads" depends_covers_plugins
}

# ---- dpkg: installed on this machine -------------------------------------------------

# repack_changed_example OUT VERSION: the package with a changed example
# configuration, as a later release could ship
repack_changed_example() {
	local dir=$WORK/repack
	rm -rf "$dir"
	dpkg-deb -R "$DEB_FILE" "$dir" &&
		echo '# a line a later release added' >>"$dir/etc/grgw/grgw.conf" &&
		sed -i "s/^Version: .*/Version: $2/" "$dir/DEBIAN/control" &&
		(cd "$dir" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' |
			LC_ALL=C sort | xargs md5sum >DEBIAN/md5sums) &&
		dpkg-deb --root-owner-group -b "$dir" "$1" >/dev/null
}

installed_version() { dpkg-query -W -f='${Version}' grgw; }

# nothing_left LISTFILE: no file of the list (dpkg -L) exists any more
nothing_left() {
	local f rc=0
	while read -r f; do
		if [ -e "$f" ] && [ ! -d "$f" ]; then
			echo "left: $f"
			rc=1
		fi
	done <"$1"
	return $rc
}

no_unit_state() {
	local left
	left=$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
		/var/lib/systemd/deb-systemd-helper-masked -name '*grgw*' 2>/dev/null)
	printf '%s\n' "$left"
	[ -z "$left" ]
}

t_dpkg() {
	local local_sum=none up=$WORK/grgw-upgrade.deb changed=$WORK/grgw-changed.deb run_before=absent

	check "make deb" build_deb
	[ -s "$DEB_FILE" ] || return 0
	if dpkg_installed; then
		fail "the grgw package is already installed here; remove it first (dpkg --purge grgw)"
		return 0
	fi
	if ! wait_for_lab; then
		fail "the namespace lab stayed busy; not installing the package"
		return 0
	fi
	if [ -e /etc/grgw ]; then
		ETC_SAVED=$WORK/etc-grgw.saved
		mv /etc/grgw "$ETC_SAVED"
		note "moved the existing /etc/grgw aside (put back at the end)"
	fi
	[ -e /usr/local/sbin/grgw ] && local_sum=$(sha256sum </usr/local/sbin/grgw)
	[ -d /run/grgw ] && run_before=$(ls -A /run/grgw)

	check "apt-get resolves the package's dependencies" apt-get install -s "$DEB_FILE"
	INSTALLED_HERE=1
	check "dpkg -i" dpkg -i "$DEB_FILE"
	dpkg_installed || return 0
	dpkg -L grgw >"$WORK/dpkg-L"
	check "/usr/sbin/grgw belongs to the package" test "$(dpkg -S /usr/sbin/grgw | cut -d: -f1)" = grgw
	check "installed grgw is version $VERSION" test "$(/usr/sbin/grgw version)" = "grgw $VERSION"
	check "the unit is not enabled by the installation" \
		test "$(systemctl is-enabled grgw.service 2>/dev/null)" = disabled
	check "grgw-block.service (fail closed from boot) is enabled by the installation" \
		test "$(systemctl is-enabled grgw-block.service 2>/dev/null)" = enabled
	if grep -Eqs '^path-exclude[= ]+/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
		# A minimal image whose dpkg drops every manual page.
		note "dpkg here excludes /usr/share/man: the installed pages are not checked"
		check "systemd-analyze verify /lib/systemd/system/grgw.service" \
			empty_output systemd-analyze verify --man=no /lib/systemd/system/grgw.service
	else
		check "systemd-analyze verify /lib/systemd/system/grgw.service" \
			empty_output systemd-analyze verify /lib/systemd/system/grgw.service
		check "man --warnings: installed grgw(8)" man_clean /usr/share/man/man8/grgw.8.gz
		check "man --warnings: installed grgw.conf(5)" man_clean /usr/share/man/man5/grgw.conf.5.gz
		check "man finds grgw.conf(5)" test "$(man -w 5 grgw.conf)" = /usr/share/man/man5/grgw.conf.5.gz
	fi

	(umask 077 && /usr/sbin/grgw keygen >/etc/grgw/psk) && touch "$WORK/made-psk"
	check "grgw check-config on the installed example" \
		grep -qx 'configuration OK' <(/usr/sbin/grgw check-config 2>&1)

	echo '# edited by the package test' >>/etc/grgw/grgw.conf
	check "dpkg -i again (same version)" dpkg -i "$DEB_FILE"
	check "reinstall kept the edited grgw.conf" grep -qx '# edited by the package test' /etc/grgw/grgw.conf

	check "make deb (upgrade $VERSION+pkgtest1)" \
		make -s -C "$TOP" deb DEB_VERSION="$VERSION+pkgtest1" DEB="$up"
	check "dpkg -i upgrade" dpkg -i "$up"
	check "upgraded to $VERSION+pkgtest1" test "$(installed_version)" = "$VERSION+pkgtest1"
	check "upgrade kept the edited grgw.conf" grep -qx '# edited by the package test' /etc/grgw/grgw.conf

	check "repack with a changed example ($VERSION+pkgtest2)" repack_changed_example "$changed" "$VERSION+pkgtest2"
	check "dpkg -i --force-confold upgrade with a changed example" dpkg -i --force-confold "$changed"
	check "upgraded to $VERSION+pkgtest2" test "$(installed_version)" = "$VERSION+pkgtest2"
	check "the edited grgw.conf kept" grep -qx '# edited by the package test' /etc/grgw/grgw.conf
	check "the new example beside it (grgw.conf.dpkg-dist)" \
		grep -qx '# a line a later release added' /etc/grgw/grgw.conf.dpkg-dist
	check "check-config still passes" grep -qx 'configuration OK' <(/usr/sbin/grgw check-config 2>&1)

	check "dpkg --purge" dpkg --purge grgw
	check "purged: not installed" not_installed
	check "purged: no file of the package left" nothing_left "$WORK/dpkg-L"
	check "purged: /etc/grgw holds only the key the operator made" \
		same_lines <(echo psk) <(ls -A /etc/grgw 2>&1)
	check "purged: no unit file, link or helper state left" no_unit_state
	if [ "$run_before" = absent ]; then
		check "purged: no /run/grgw left" test ! -e /run/grgw
	else
		check "purged: /run/grgw as it was before" test "$(ls -A /run/grgw)" = "$run_before"
	fi
	rm -f /etc/grgw/psk "$WORK/made-psk"
	rmdir /etc/grgw 2>/dev/null
	if [ "$local_sum" != none ]; then
		check "/usr/local/sbin/grgw (make install) untouched" \
			test "$(sha256sum </usr/local/sbin/grgw)" = "$local_sum"
	fi
}

not_installed() { ! dpkg_installed; }

# ---- sandbox: grgw confined as grgw.service confines it ---------------------------------

# unit_value KEY: the value of KEY= in gw/grgw.service.in
unit_value() { sed -n "s/^$1=//p" "$TOP/gw/grgw.service.in"; }

# make_sandbox: $WORK/sandboxed-grgw runs grgw as the unit would: only the
# unit's bounding set of capabilities, no new privileges, every mount
# read-only but /proc, /sys, /dev and /run/grgw (ProtectSystem=strict with
# RuntimeDirectory=grgw), /home and /root empty (ProtectHome=yes).
make_sandbox() {
	local caps
	caps=$(unit_value CapabilityBoundingSet | tr ' ' '\n' | sed '/^$/d; s/^CAP_/+/' |
		tr '[:upper:]' '[:lower:]' | paste -sd, -)
	[ -n "$caps" ] || { echo "no CapabilityBoundingSet in the unit"; return 1; }
	if [ "$(unit_value ProtectSystem)" != strict ] || [ "$(unit_value RuntimeDirectory)" != grgw ] ||
		[ "$(unit_value NoNewPrivileges)" != yes ] || [ "$(unit_value ProtectHome)" != yes ]; then
		echo "the unit's sandbox changed: update make_sandbox in $0"
		return 1
	fi
	# An installed grgw lives in /usr; the checkout may be under /root or
	# /home, which the sandbox hides, so it runs a copy from $WORK.
	install -m 0755 "$GRGW" "$WORK/grgw.bin" || return 1
	cat >"$WORK/sandboxed-grgw" <<-EOF
	#!/bin/sh
	mkdir -p $LAB_RUN_DIR
	exec unshare -m --propagation slave sh -c '
	set -e
	for mp in \$(awk "{ print \\\$5 }" /proc/self/mountinfo | sort -u); do
		case \$mp in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
		mount -o remount,bind,ro "\$mp" 2>/dev/null || true
	done
	mount --bind $LAB_RUN_DIR $LAB_RUN_DIR
	mount -o remount,bind,rw $LAB_RUN_DIR
	mount -t tmpfs -o ro,mode=0755 tmpfs /root
	mount -t tmpfs -o ro,mode=0755 tmpfs /home
	exec setpriv --bounding-set -all,$caps --inh-caps -all --no-new-privs "$WORK/grgw.bin" "\$@"
	' grgw "\$@"
	EOF
	chmod 0755 "$WORK/sandboxed-grgw"
	SANDBOX_CAPS=$caps
	echo "capabilities: $caps"
}

# sandbox_is_confined: what the sandbox gives grgw
sandbox_is_confined() {
	local out
	out=$("$WORK/sandboxed-grgw" version) || return 1
	echo "$out"
	# shellcheck disable=SC2016
	unshare -m --propagation slave sh -c '
		for mp in $(awk "{ print \$5 }" /proc/self/mountinfo | sort -u); do
			case $mp in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
			mount -o remount,bind,ro "$mp" 2>/dev/null || true
		done
		! touch /etc/grgw-sandbox-probe 2>/dev/null'
}

sandbox_up() {
	local rc_a=0 rc_b=0 pid
	grgw_at a up --timeout 60 >"$WORK/sandbox-up-a.log" 2>&1 &
	pid=$!
	grgw_at b up --timeout 60 >"$WORK/sandbox-up-b.log" 2>&1 || rc_b=$?
	wait "$pid" || rc_a=$?
	cat "$WORK/sandbox-up-a.log" "$WORK/sandbox-up-b.log"
	[ "$rc_a" -eq 0 ] && [ "$rc_b" -eq 0 ]
}

# confined SITE: its daemon and charon run with only the unit's bounding
# set of capabilities and no new privileges
confined() {
	local want pid rc=0 json
	want=$(setpriv --bounding-set "-all,$SANDBOX_CAPS" sh -c "grep '^CapBnd' /proc/self/status")
	json=$(status_json "$1")
	for pid in $(jq -r '.daemon.pid, .charon.pid' <<<"$json"); do
		if [ "$pid" -gt 0 ] 2>/dev/null && [ -r "/proc/$pid/status" ]; then
			echo "pid $pid ($(cat "/proc/$pid/comm")): $(grep -E '^(CapBnd|NoNewPrivs)' "/proc/$pid/status" | paste -sd' ' -)"
			grep -qx "$want" "/proc/$pid/status" || rc=1
			grep -qx 'NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" || rc=1
		else
			echo "no process $pid"
			rc=1
		fi
	done
	echo "expected $want"
	return $rc
}

sandbox_down_leaves_nothing() {
	grgw_at a down --purge && grgw_at b down --purge &&
		test "$(status_json a | jq -r '.kernel.block_objects + .kernel.run_objects')" = 0
}

t_sandbox() {
	local saved_grgw=$GRGW
	[ -x "$GRGW" ] || { fail "no grgw binary at $GRGW (make)"; return 0; }
	check "a sandbox like grgw.service's" make_sandbox
	[ -x "$WORK/sandboxed-grgw" ] || return 0
	check "the sandbox's file system is read-only" sandbox_is_confined
	if ! wait_for_lab; then
		fail "the namespace lab stayed busy; sandbox test not run"
		return 0
	fi
	SANDBOX_DIR=$(mktemp -d /run/grgw-pkgtest.XXXXXX)
	GRGW=$WORK/sandboxed-grgw
	CONF_A=$SANDBOX_DIR/site-a.conf
	CONF_B=$SANDBOX_DIR/site-b.conf
	check "namespace lab up" "$LAB_HERE/lab.sh" up
	check "lab configurations" env GRGW="$GRGW" "$LAB_HERE/lab.sh" conf "$SANDBOX_DIR"
	check "grgw up on both gateways, sandboxed" sandbox_up
	check "gw-a: tunnel up" status_is a "$TUNNEL_UP_JQ"
	check "gw-a: grgw and charon confined" confined a
	check "vellum-a reaches vellum-b through it" ping_ok vellum-a "$VELLUM_B4"
	check "grgw down --purge on both, sandboxed; no kernel object left" sandbox_down_leaves_nothing
	"$LAB_HERE/lab.sh" down >/dev/null 2>&1
	rm -rf "$SANDBOX_DIR"
	SANDBOX_DIR=
	GRGW=$saved_grgw
}

# ---- vagrant ------------------------------------------------------------------------------

vagrant_validate() {
	(cd "$TOP/vagrant" &&
		VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_DOTFILE_PATH="$WORK/vagrant-dot" \
			VAGRANT_HOME="$WORK/vagrant-home" vagrant validate --ignore-provider)
}

t_vagrant() {
	local before
	before=$(ls -A "$TOP/vagrant")
	check "vagrant validate --ignore-provider" vagrant_validate
	check "vagrant validate left the checkout as it was" test "$(ls -A "$TOP/vagrant")" = "$before"
	check "shellcheck vagrant/*.sh" shellcheck -x "$TOP"/vagrant/*.sh
	check "shellcheck gw/deb maintainer scripts" shellcheck -s sh "$TOP"/gw/deb/postinst \
		"$TOP"/gw/deb/prerm "$TOP"/gw/deb/postrm
	check "shellcheck tests/package/*.sh" shellcheck -x "$TOP"/tests/package/*.sh
}

# ---- main -----------------------------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (dpkg, namespaces)" >&2; exit 1; }
if [ ! -x "$TOP/grgw" ]; then
	make -s -C "$TOP" grgw >"$WORK/make.log" 2>&1 || { cat "$WORK/make.log"; exit 1; }
fi
VERSION=$(version_of_binary)

tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("${ALL_TESTS[@]}")
for t in "${tests[@]}"; do
	if ! declare -F "t_$t" >/dev/null; then
		echo "run.sh: no test \"$t\" (tests: ${ALL_TESTS[*]})" >&2
		exit 2
	fi
	say "$t"
	TEST=$t
	"t_$t"
done

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
