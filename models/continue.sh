#!/bin/sh
# Continue the long training of the hole-aware chain from the checkpoints committed in
# models/runs (bit-exact: the same weights an uninterrupted run would reach). Run from
# the repository root; it trains in runs/ (ignored by git), so copy runs/stage2-log back
# into models/runs/stage2-log-next to commit a later state.
#   STEPS  target step of the shipped G2 fine-tune (default 2000: it ran 1000 steps with
#          the per-image log term from G2's step 15000 and was exported there; the
#          default restarts it warm towards 2000; another STEPS moves the cosine's end)
set -eu
unveil() { cargo run --release -q -p unveil-host -- "$@"; }
mkdir -p runs
for r in silhouette stage1 stage2; do
  [ -d runs/$r ] || cp -r models/runs/$r runs/$r
done
# stage2-log is the state the shipped models were exported from; stage2-log-next, when
# present, is the cycle that continues it.
src=models/runs/stage2-log
[ -d models/runs/stage2-log-next ] && src=models/runs/stage2-log-next
[ -d runs/stage2-log ] || cp -r "$src" runs/stage2-log
nice unveil train stage2 --resume --steps "${STEPS:-2000}" --out runs/stage2-log
