# shellcheck shell=bash
#
# Pictures for the benchmarks, sourced by tests/bench/*.sh.  Each script
# keeps its figures in BENCH_OUT (default build/bench in the checkout): the
# text it printed (NAME.txt), the samples behind each plot, and PNGs drawn
# with gnuplot (gnuplot-nox, installed with apt-get when missing; without
# it the text and samples are still written).  BENCH_OUT/index.md links
# them all.
#
#   bench_out_init NAME      creates BENCH_OUT and sends the script's
#                            output to the terminal and to NAME.txt
#   plot_cdf PNG TITLE XLABEL LABEL FILE [LABEL FILE]...
#                            empirical CDF of the numbers in each FILE
#   plot_bars PNG TITLE YLABEL FILE
#                            one bar per line "LABEL VALUE" of FILE
#   report_add NAME TITLE PNG...   a section of index.md

BENCH_OUT=${BENCH_OUT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/bench}
GNUPLOT_OK=

bench_out_init() {
	mkdir -p "$BENCH_OUT"
	exec > >(tee "$BENCH_OUT/$1.txt") 2>&1
}

gnuplot_ready() {
	if [ -z "$GNUPLOT_OK" ]; then
		GNUPLOT_OK=no
		if ! command -v gnuplot >/dev/null && [ "$(id -u)" -eq 0 ]; then
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
				gnuplot-nox >/dev/null 2>&1 || true
		fi
		command -v gnuplot >/dev/null && GNUPLOT_OK=yes
		[ "$GNUPLOT_OK" = yes ] || echo "(no gnuplot: plots not drawn; apt-get install gnuplot-nox)"
	fi
	[ "$GNUPLOT_OK" = yes ]
}

plot_cdf() {
	local png=$1 title=$2 xlabel=$3 plots="" label file sorted n
	shift 3
	gnuplot_ready || return 0
	while [ $# -ge 2 ]; do
		label=$1 file=$2
		shift 2
		[ -s "$file" ] || continue
		sorted=$file.cdf
		n=$(wc -l <"$file")
		sort -g "$file" | awk -v n="$n" '{ print $1, NR / n }' >"$sorted"
		plots+="${plots:+, }'$sorted' using 1:2 with steps lw 2 title '$label'"
	done
	[ -n "$plots" ] || return 0
	gnuplot <<-EOF
	set terminal pngcairo size 900,540 noenhanced
	set output '$png'
	set title '$title'
	set xlabel '$xlabel'
	set ylabel 'share of samples'
	set yrange [0:1]
	set grid
	set key bottom right
	plot $plots
	EOF
}

plot_bars() {
	local png=$1 title=$2 ylabel=$3 file=$4
	gnuplot_ready || return 0
	[ -s "$file" ] || return 0
	gnuplot <<-EOF
	set terminal pngcairo size 900,540 noenhanced
	set output '$png'
	set title '$title'
	set ylabel '$ylabel'
	set style fill solid 0.6
	set boxwidth 0.6
	set yrange [0:*]
	set grid ytics
	plot '$file' using 0:2:xtic(1) with boxes notitle, \
	     '' using 0:2:(sprintf('%.0f', \$2)) with labels offset 0,1 notitle
	EOF
}

# report_add NAME TITLE PNG...: index.md gets (or replaces) a section for
# the script NAME with its text output and pictures
report_add() {
	local name=$1 title=$2 index=$BENCH_OUT/index.md png
	shift 2
	[ -f "$index" ] || printf '# grgw benchmarks\n\nWritten by %s; each section is the latest run of its script.\n' \
		"\`make bench\`" >"$index"
	awk -v n="$name" '/^<!-- begin / { skip = ($3 == n) } !skip { print } /^<!-- end / && $3 == n { skip = 0 }' \
		"$index" >"$index.new" && mv "$index.new" "$index"
	{
		printf '<!-- begin %s -->\n## %s\n\nText output: [%s.txt](%s.txt), %s\n\n' \
			"$name" "$title" "$name" "$name" "$(date -u '+%Y-%m-%d %H:%M UTC')"
		for png in "$@"; do
			[ -f "$BENCH_OUT/$png" ] && printf '![%s](%s)\n\n' "$png" "$png"
		done
		printf '<!-- end %s -->\n' "$name"
	} >>"$index"
}
