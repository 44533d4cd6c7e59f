#!/usr/bin/env bash
# make bench: every measured goal, written to docs/ (compare ratios within one run: the machine is shared).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs
echo "== polling schedule (docs/bench-polling.md)"
SEEDREPL_WRITE_BENCH=1 go test -count=1 -run '^TestWritePollingReport$' ./internal/steps
echo "== Go benchmarks (docs/bench-go.txt)"
go test -run '^$' -bench . -benchmem ./internal/... | tee docs/bench-go.txt
echo "== Lambda sizes (docs/bench-lambda-sizes.txt)"
make -s build | tee docs/bench-lambda-sizes.txt
echo "== rehearsal wall time per mode and phase (docs/bench-rehearsal.md)"
out=docs/bench-rehearsal.md
{
  echo "# Rehearsal wall times"
  echo
  echo "Measured by \`make bench\` (\`scripts/bench.sh\`): \`make rehearse\` with the default sample (pgbench scale 10 + awkward tables,"
  echo "live writer), default local delays. $(date -u +%Y-%m-%d), $(nproc) cores."
} > "$out"
for mode in subscription dms; do
  MODE=$mode make -s rehearse > /tmp/seedrepl-bench-$mode.log 2>&1 || { tail -40 /tmp/seedrepl-bench-$mode.log; exit 1; }
  { echo; echo "## MODE=$mode"; echo; sed -n '/^## Phases/,$p' .rehearsal/report-$mode.md | tail -n +2;
    grep -o 'Status: .*' .rehearsal/report-$mode.md; } >> "$out"
done
cat "$out"
