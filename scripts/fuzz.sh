#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time, starting from the committed
# seed corpora (copied, so runs do not rewrite the repository). Exits non-zero
# on the first finding; the reproducer is left in FUZZ_DIR/artifacts/.
# Usage: fuzz.sh FUZZ_DIR SECONDS_PER_TARGET
set -euo pipefail
FUZZ_DIR=$1
SECONDS_PER_TARGET=${2:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$FUZZ_DIR/artifacts"
for target in frame topic broker; do
  corpus="$FUZZ_DIR/corpus/$target"
  mkdir -p "$corpus"
  cp -n "$ROOT/fuzz/corpus/$target/"* "$corpus/" 2>/dev/null || true
  echo "== ${target}_fuzz for ${SECONDS_PER_TARGET}s"
  "$FUZZ_DIR/fuzz/${target}_fuzz" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
    -artifact_prefix="$FUZZ_DIR/artifacts/${target}-" -rss_limit_mb=4096 "$corpus" 2>"$FUZZ_DIR/${target}.log" || {
    tail -n 60 "$FUZZ_DIR/${target}.log"
    echo "${target}_fuzz found a problem; reproducer in $FUZZ_DIR/artifacts/" >&2
    exit 1
  }
  grep -E "^stat::number_of_executed_units|^#[0-9]+ *DONE" "$FUZZ_DIR/${target}.log" | tail -2
done
echo "fuzzing: 3 passed, 0 failed"
