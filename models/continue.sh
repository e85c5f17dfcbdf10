#!/bin/sh
# Continue the long training of the hole-aware chain from the checkpoints committed in
# models/runs (bit-exact: the same weights an uninterrupted run would reach). Run from
# the repository root; it trains in runs/ (ignored by git), so copy runs/stage2 back
# into models/runs/stage2-next to commit a later state.
#   STEPS  target step of G2 (default 20000: the shipped G2 was annealed from step 4850
#          to 7500, restarted warm to 9500, then to 15000 (shipped); the default restarts
#          it warm once more, towards 20000; another STEPS moves the cosine's end again)
set -eu
unveil() { cargo run --release -q -p unveil-host -- "$@"; }
mkdir -p runs
for r in silhouette stage1; do
  [ -d runs/$r ] || cp -r models/runs/$r runs/$r
done
# stage2 is the state the shipped models were exported from; stage2-next, when present,
# is the cycle that continues it.
src=models/runs/stage2
[ -d models/runs/stage2-next ] && src=models/runs/stage2-next
[ -d runs/stage2 ] || cp -r "$src" runs/stage2
nice unveil train stage2 --resume --steps "${STEPS:-20000}" --out runs/stage2
