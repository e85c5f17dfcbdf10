#!/bin/sh
# Continue the long training of the hole-aware chain from the checkpoints committed in
# models/runs (bit-exact: the same weights an uninterrupted run would reach). Run from
# the repository root; it trains in runs/ (ignored by git), so copy runs/stage2-half back
# into models/runs/ to commit a later state.
#   STEPS  target step of the shipped G2 fine-tune (default 800: it ran 400 steps on the
#          half-resolution G1 and was exported there; the default restarts it warm
#          towards 800; another STEPS moves the cosine's end)
set -eu
unveil() { cargo run --release -q -p unveil-host -- "$@"; }
mkdir -p runs
for r in silhouette stage1 stage1-long stage1-xl stage1-half stage2 stage2-log stage2-half; do
  [ -d runs/$r ] || cp -r models/runs/$r runs/$r
done
nice unveil train stage2 --resume --steps "${STEPS:-800}" --out runs/stage2-half
