#!/usr/bin/env bash
# The README's main command as a newcomer meets it: a fresh clone of this repository, set up with
# `make setup` (pip's cache may help), then `make run` twice with one new, empty HOME (no
# ~/.prefect, no caches). Prints each run's wall time and the training time inside it.
#
#   bash benchmarks/fresh_machine.sh            # clones HEAD of this checkout into a temp dir
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$src" "$work/clone"
cd "$work/clone"
echo "fresh clone of $(git rev-parse --short HEAD) in $work/clone"
t0=$(date +%s.%N)
make setup > "$work/setup.log" 2>&1 || { tail -n 40 "$work/setup.log"; exit 1; }
echo "make setup: $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s"
home="$work/home"
mkdir "$home"
for i in 1 2; do
  t0=$(date +%s.%N)
  HOME="$home" make run > "$work/run$i.log" 2>&1 || { tail -n 40 "$work/run$i.log"; exit 1; }
  wall=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
  python3 - "$work/run$i.log" "$i" "$wall" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
summary = json.loads(text[text.rindex("\n{") + 1:])
start = re.search(r"(\d\d:\d\d:\d\d\.\d+) \| INFO +\| prefect - Starting temporary server", text)
began = re.search(r"(\d\d:\d\d:\d\d\.\d+) \| INFO +\| Flow run .* - Beginning flow run", text)
def secs(t): h, m, s = t.split(":"); return int(h) * 3600 + int(m) * 60 + float(s)
server = f", Prefect server start {secs(began[1]) - secs(start[1]):.1f} s" if start and began else ""
print(f"make run {sys.argv[2]} (HOME empty before run 1): {sys.argv[3]} s wall, training "
      f"{summary['training_seconds']:.1f} s, flow {summary['pipeline_seconds']:.1f} s{server}, "
      f"performance {summary['performance']}")
PY
done
