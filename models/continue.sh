#!/bin/sh
# Continue the long training of the hole-aware chain from the checkpoints committed in
# models/runs (bit-exact: the same weights an uninterrupted run would reach). Run from
# the repository root; it trains in runs/ (ignored by git), so copy the folders back
# into models/runs to commit a later state.
#   STEPS  target step of G2 (default 9500: the run was annealed from step 4850 to 7500,
#          then restarted warm towards 9500; a larger STEPS moves the cosine's end again)
set -eu
unveil() { cargo run --release -q -p unveil-host -- "$@"; }
mkdir -p runs
for r in silhouette stage1 stage2; do
  [ -d runs/$r ] || cp -r models/runs/$r runs/$r
done
nice unveil train stage2 --resume --steps "${STEPS:-9500}" --out runs/stage2
