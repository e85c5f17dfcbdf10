#!/bin/sh
# Regenerate the shipped models the way they were made: the `default` preset (128x128,
# seed 42, samples rendered on the fly), hole-aware G1 and G2 (Telea pre-fill + hole
# plane), every occlusion mode (`mixed`). The runs as shipped were stopped early and their
# checkpoints are committed in models/runs (continue them with models/continue.sh):
# S 300 of 600 steps, G1 500 of 1200, G2 exported at step 3525, checkpoint at 4850, of 30000.
# Training on this 2-core CPU takes hours; the exports take minutes.
set -eu
unveil() { cargo run --release -q -p unveil-host -- "$@"; }

unveil train silhouette --preset default --seed 42 --steps 600 --out runs/silhouette
unveil train stage1 --preset default --seed 42 --steps 1200 --lr 2e-3 --clip-norm 1 --hole telea \
    --checkpoint-every 50 --out runs/stage1
unveil train stage2 --preset default --seed 42 --steps 30000 --warmup 100 --hole telea \
    --condition texture --occlusion mixed --w-hidden 5 --checkpoint-every 25 \
    --stage1 runs/stage1 --silhouette runs/silhouette --out runs/stage2
unveil export --stage2 runs/stage2 --out models/default-f32
unveil export --stage2 runs/stage2 --int8 --samples 64 --seed 2000003 --range minmax --out models/default
unveil inspect models/default
unveil eval stage2 --model runs/stage2 --samples 128
cargo test -q -p unveil-tests --test parity -- --include-ignored
