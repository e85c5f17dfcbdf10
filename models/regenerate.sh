#!/bin/sh
# Regenerate the shipped models the way they were made, from scratch: the `default`
# preset (128x128, seed 42, samples rendered on the fly), hole-aware G1 and G2 (Telea
# pre-fill + hole plane), every occlusion mode (`mixed`). S and G1 stop before the end of
# their cosine (--horizon); G2 ran 4850 steps of a 30000-step cosine, was annealed to step
# 7500 (the resume moves the cosine's end), restarted warm to a cosine ending at 9500,
# then to one ending at 15000, then fine-tuned 1000 steps with the per-image log term on
# the hidden pixels (--w-hidden-log; the run aimed at 1200 steps and was retargeted to
# 1000 at step 325). G1 then went on in two fresh cosine cycles from its own weights
# (--init-from; stage1-long, stage1-xl), was moved to half resolution (--downscale 2,
# stage1-half: the U-Net on 2x2 block means, a quarter of the cost) and fine-tuned
# there, and G2 was fine-tuned 400 steps on that G1 (stage2-half), where the shipped
# models were exported. The occlusion
# detector of blind mode trains on its own (no other network needed): 2000 steps, a
# continuation to 3000, then a 400-step fine-tune with the hard-negative term on intact
# images (the shipped one); it travels in both folders as occlusion.onnx.
# The committed checkpoints in models/runs
# are these runs' last states (continue G2 with models/continue.sh). A test checks that
# these commands give the committed run.json files.
# --batch and --shards are spelled out: these runs predate the data-parallel default
# (--batch 16 in two parts), and the parts shape the arithmetic.
# Training on this 2-core CPU takes hours; the exports take minutes.
set -eu
unveil() { cargo run --release -q -p unveil-host -- "$@"; }

unveil train silhouette --preset default --seed 42 --batch 8 --steps 300 --horizon 600 --warmup 60 \
    --out runs/silhouette
unveil train stage1 --preset default --seed 42 --batch 8 --steps 500 --horizon 1200 --warmup 100 \
    --lr 2e-3 --clip-norm 1 --hole telea --checkpoint-every 50 --out runs/stage1
unveil train stage2 --preset default --seed 42 --batch 8 --steps 30000 --stop-at 4850 --warmup 100 \
    --hole telea --condition texture --occlusion mixed --w-hidden 5 --checkpoint-every 25 \
    --stage1 runs/stage1 --silhouette runs/silhouette --out runs/stage2
unveil train stage2 --resume --steps 7500 --out runs/stage2
unveil train stage2 --resume --steps 9500 --out runs/stage2
unveil train stage2 --resume --steps 15000 --out runs/stage2
unveil train stage2 --preset default --seed 42 --batch 8 --init-from runs/stage2 --steps 1200 --stop-at 325 \
    --warmup 50 --lr 3e-4 --hole telea --condition texture --occlusion mixed --w-hidden 5 \
    --w-hidden-log 1 --checkpoint-every 25 --stage1 runs/stage1 --silhouette runs/silhouette \
    --out runs/stage2-log
unveil train stage2 --resume --steps 1000 --out runs/stage2-log
unveil train stage1 --preset default --seed 42 --batch 8 --init-from runs/stage1 --steps 3000 \
    --stop-at 1350 --warmup 50 --lr 1e-3 --clip-norm 1 --hole telea --samples 65536 \
    --checkpoint-every 50 --out runs/stage1-long
unveil train stage1 --resume --steps 2000 --out runs/stage1-long
unveil train stage1 --preset default --seed 42 --batch 16 --shards 2 --init-from runs/stage1-long \
    --steps 4000 --stop-at 2400 --warmup 50 --lr 6e-4 --clip-norm 1 --hole telea --samples 262144 \
    --checkpoint-every 50 --out runs/stage1-xl
unveil train stage1 --preset default --seed 44 --batch 16 --shards 2 --init-from runs/stage1-xl \
    --downscale 2 --steps 3000 --stop-at 600 --warmup 50 --lr 6e-4 --clip-norm 1 --hole telea \
    --samples 262144 --checkpoint-every 50 --out runs/stage1-half
unveil train stage1 --resume --steps 1500 --out runs/stage1-half
unveil train stage2 --preset default --seed 45 --batch 16 --shards 2 --init-from runs/stage2-log \
    --steps 500 --stop-at 50 --warmup 50 --lr 3e-4 --hole telea --condition texture --occlusion mixed \
    --w-hidden 5 --w-hidden-log 1 --samples 65536 --checkpoint-every 25 --stage1 runs/stage1-half \
    --silhouette runs/silhouette --out runs/stage2-half
unveil train stage2 --resume --steps 400 --out runs/stage2-half
unveil train occlusion --preset default --seed 42 --steps 2400 --stop-at 200 --batch 16 \
    --shards 1 --samples 65536 --checkpoint-every 50 --out runs/occlusion
unveil train occlusion --resume --steps 2000 --out runs/occlusion
cp -r runs/occlusion runs/occlusion-next
unveil train occlusion --resume --steps 3000 --out runs/occlusion-next
unveil train occlusion --init-from runs/occlusion-next --hard-negatives 0.1 --lr 5e-4 \
    --batch 16 --shards 1 --steps 400 --samples 65536 --checkpoint-every 50 --out runs/occlusion-hard
unveil export --stage2 runs/stage2-half --occlusion runs/occlusion-hard --out models/default-f32
unveil export --stage2 runs/stage2-half --occlusion runs/occlusion-hard --int8 --samples 64 --seed 2000003 --range minmax --out models/default
unveil inspect models/default
unveil eval stage2 --model models/default --samples 128
unveil eval occlusion --model runs/occlusion-hard --samples 128
cargo test -q -p unveil-tests --test parity -- --include-ignored
