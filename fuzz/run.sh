#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 30) from corpora seeded with the
# repository's captures; exits non-zero on the first crash, leaving the input that crashed
# in fuzz/artifacts/<target>/. For long runs: `fuzz/run.sh 3600`, or one target by hand:
#   cd fuzz && cargo +nightly fuzz run -s none -a control_engine corpus/control_engine
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Uses the nightly toolchain where rustup has
# one; otherwise the stable one with RUSTC_BOOTSTRAP=1 (libFuzzer's coverage flags are the
# only unstable thing needed; targets are built without a sanitizer, since the code under
# test is safe Rust, but with debug assertions so integer overflow is a crash).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
targets=(data_rx control_message control_engine ppp api_request config radius)

if cargo +nightly --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
  run=(cargo +nightly)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
  run=(cargo)
fi

"${run[@]}" run -q --example seed-corpora
"${fuzz[@]}" build -s none -a
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "fuzz: $t for ${seconds}s"
  "${fuzz[@]}" run -s none -a "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|thread|Error|panicked)|DONE' || true
  # cargo fuzz run exits non-zero on a crash; pipefail is defeated by grep, so check artifacts.
  if compgen -G "artifacts/$t/crash-*" >/dev/null || compgen -G "artifacts/$t/oom-*" >/dev/null \
     || compgen -G "artifacts/$t/timeout-*" >/dev/null; then
    echo "fuzz: $t found a failing input:" artifacts/"$t"/* >&2
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a failure"
