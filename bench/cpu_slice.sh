#!/usr/bin/env bash
# Issue 10's CPU figures on the 4-layer slice of R1's shapes, every ratio measured in the same
# run (r1 bench --synthetic probes the bandwidth and the arithmetic peak itself): batch-1 decode,
# prefill of 512 tokens and batch-16 decode, in exact and fast numerics, then a 2048-token prompt
# (attention's share of the work grows with the context) and decode after it; then three pairs
# of 512-token prefills, exact and fast back to back (the machine's speed drifts from minute to
# minute here, so a ratio of two runs minutes apart can move by 15%; adjacent runs move less).
# One JSON line each.
#
#   bash bench/cpu_slice.sh [SLICE_DIR]      (default /tmp/r1-slice; written first if missing: 17 GB)
set -euo pipefail
r1=${R1:-build/r1}
slice=${1:-/tmp/r1-slice}
[ -f "$slice/config.json" ] || "$r1" gen-model --preset r1 --layers 4 --out "$slice"
# Same memory state for every run (root only): the page cache emptied and memory compacted,
# so that the model and the probe both get 2 MiB pages (a page cache full of the previous
# run's files leaves the next one 4 KiB pages and halves both figures).
settle() {
  if [ -w /proc/sys/vm/drop_caches ]; then sync; echo 3 >/proc/sys/vm/drop_caches; echo 1 >/proc/sys/vm/compact_memory; fi
}
for numerics in exact fast; do
  for shape in "--prompt-len 16 --gen-len 64 --batch 1" "--prompt-len 512 --gen-len 4 --batch 1" \
               "--prompt-len 16 --gen-len 32 --batch 16" "--prompt-len 2048 --gen-len 16 --batch 1"; do
    settle
    # shellcheck disable=SC2086
    "$r1" bench --synthetic --model "$slice" --device cpu --numerics "$numerics" $shape --json
  done
done
for pair in 1 2 3; do
  for numerics in exact fast; do
    settle
    "$r1" bench --synthetic --model "$slice" --device cpu --numerics "$numerics" --prompt-len 512 --gen-len 2 --batch 1 --json
  done
done
