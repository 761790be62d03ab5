#!/usr/bin/env bash
# The training benchmarks of BENCHMARKS.md, one after another (about 3.5 hours on 2 quiet cores). Each step
# resumes or skips what a killed earlier run finished, so the script can simply be run again.
set -euo pipefail
cd "$(dirname "$0")/.."
# BCCD: ttt5_224_160 from its partial backbone, float / ternary per layer / ternary per channel
python bench/detector_bccd.py --max-batches 6000 --burn-in 200 --variants float,ternary,ternary_pc \
    --out runs/bench_detector --resume
# BCCD staged vs direct from the float detector, per-channel TWN, 6000 iterations each
python bench/staged_bccd.py --float-weights runs/bench_detector/backup_float/ttt5_bccd_float_final.weights \
    --stage-iters 600,1200,1800,2400 --stage-lr 0.001 --per-channel --out runs/bench/staged_bccd
# CIFAR-10: float fine-tuning vs TWN / TTN / STTN, all layers ternary, 20 epochs each
python bench/classify_methods.py --epochs 20 --lr 0.02 --methods float twn ttn sttn \
    --out bench/results/classify_methods.json --project runs/bench_classify
# CIFAR-10 staged (2+4+6+8 epochs) vs direct (the TWN run above) vs float fine-tuned (the float run above)
python bench/staged_cifar.py --stage-epochs 2,4,6,8 --train-per-class 5000 --valid-per-class 1000 \
    --batch-size 128 --lr 0.02 --reuse bench/results/classify_methods.json --out runs/bench/staged_cifar
