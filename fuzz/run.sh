#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, one after the other, at low
# priority: `fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]` (default 60 s,
# all targets). New inputs go to fuzz/corpus/TARGET (not committed); the
# committed seeds in fuzz/seeds/TARGET are read too. A crash stops the run
# with a non-zero status and leaves its input in fuzz/artifacts/TARGET.
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer) to rustc. On a stable
# toolchain RUSTC_BOOTSTRAP=1 lets rustc accept them; with a nightly
# toolchain installed, `cargo +nightly fuzz` works as well.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(compile domain step)
fi
command -v cargo-fuzz >/dev/null || {
  echo "cargo-fuzz is not installed; run: cargo install cargo-fuzz" >&2
  exit 2
}
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "== fuzz target $t for ${secs}s"
  # -rss_limit_mb guards against inputs that make the compiler allocate
  # without bound; -max_len keeps inputs the size of real scripts.
  nice -n 19 cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=20
done
