# shellcheck shell=bash
#
# Sourced by the scripts that install what they need (the kernel VM lab,
# the Vagrant lab).

# missing_packages PKG...: prints " pkg1 pkg2" for those of PKG not
# installed (nothing when all are)
missing_packages() {
	local p out=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			out="$out $p"
	done
	printf '%s' "$out"
}
