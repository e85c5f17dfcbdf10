#!/bin/sh
# Regenerate the shipped models from scratch: train the `default` preset (seed 42, the
# trainer's default), export f32 and int8 (calibrated on 256 rendered samples, seed
# 2000003, min/max ranges), then check them. Run from the repository root.
set -eu
unveil() { cargo run --release -q -p unveil-host -- "$@"; }

unveil train all --preset default --seed 42
unveil export --stage2 runs/stage2 --out models/default-f32
unveil export --stage2 runs/stage2 --int8 --samples 256 --seed 2000003 --range minmax --out models/default
unveil inspect models/default
unveil eval stage2 --model runs/stage2
cargo test -q -p unveil-tests --test parity -- --include-ignored
