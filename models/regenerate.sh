#!/bin/sh
# Regenerate the shipped models exactly as they were made: the `default` preset (128x128,
# seed 42, samples rendered on the fly), S for 2000 steps, G1 for 3000, G2 (texture
# condition, trained on the method's occlusion) for 600; then f32 and int8 exports
# (int8 calibrated on 256 rendered samples, seed 2000003, min/max ranges, per-tensor
# weight scales) and checks. All three at a constant learning rate (`--schedule constant`).
# Run from the repository root. About 90 minutes on a 2-core CPU.
set -eu
unveil() { cargo run --release -q -p unveil-host -- "$@"; }

unveil train silhouette --preset default --seed 42 --steps 2000 --schedule constant --out runs/silhouette
unveil train stage1 --preset default --seed 42 --steps 3000 --schedule constant --out runs/stage1
unveil train stage2 --preset default --seed 42 --steps 600 --schedule constant --condition texture \
    --occlusion subject-noise --stage1 runs/stage1 --silhouette runs/silhouette --out runs/stage2-texture
unveil export --stage2 runs/stage2-texture --out models/default-f32
unveil export --stage2 runs/stage2-texture --int8 --samples 256 --seed 2000003 --range minmax --out models/default
unveil inspect models/default
unveil eval stage2 --model runs/stage2-texture
cargo test -q -p unveil-tests --test parity -- --include-ignored
