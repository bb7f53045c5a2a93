#!/usr/bin/env bash
# Instructions per REGISTER, counted by callgrind: a figure that does not depend on the
# machine's load, so that a regression in the message layer or the registrar shows.
#
#   Benchmarks/instructions.sh        prints: instructions per REGISTER (parse -> registrar -> 200 serialized)
#
# Runs `SIPBenchmarks register-count N` (N REGISTERs, each for a new address of record, the
# same baresip REGISTER as `SIPBenchmarks registrar`) under valgrind's callgrind for two N
# and divides the difference by the difference in N, so start-up and teardown cancel out.
# The binary is run from a copy without debug information: valgrind 3.19 (Debian 12) cannot
# read the DWARF 5 the Swift compiler writes. Release build in SCRATCH (default
# .build-release). Needs valgrind. Not part of CI; about 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=${SCRATCH:-.build-release}
small=${SMALL:-2000}
large=${LARGE:-12000}
swift build -c release --product SIPBenchmarks --scratch-path "$scratch" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$scratch/release/SIPBenchmarks" "$work/bench"
strip -g "$work/bench"
count() {  # N -> instructions of the whole run
  valgrind --tool=callgrind --callgrind-out-file="$work/out.$1" "$work/bench" register-count "$1" 2>"$work/log.$1" >/dev/null
  awk '/^summary:/ {print $2}' "$work/out.$1"
}
a=$(count "$small")
b=$(count "$large")
echo "instructions per REGISTER (parse -> registrar -> serialize, new AOR): $(( (b - a) / (large - small) )) (callgrind; N=$small and N=$large)"
