#!/usr/bin/env bash
# The training benchmarks of BENCHMARKS.md, one after another (on 2 quiet CPU cores: about 1.5 h for the BCCD
# float detector, 4-5 h a seed for the BCCD staged/direct rows, 1 h for the CIFAR methods a row, 1.5 h for the
# CIFAR staged/transfer rows). Each step resumes or skips what a killed earlier run finished, so the script can
# simply be run again. Result files go to bench/results/ (the tables cite them); run folders to runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
# 1. BCCD: ttt5_224_160 from its partial backbone, float / ternary per layer / ternary per channel
python bench/detector_bccd.py --max-batches 6000 --burn-in 200 --variants float,ternary,ternary_pc \
    --out runs/bench_detector --resume
# 2 and 9. BCCD from the float detector: direct, direct + transfer, staged (equal budget and the seeds' protocol),
# staged + transfer; per-channel TWN, 6000 iterations a direct run, two seeds
python bench/staged_bccd.py --float-weights runs/bench_detector/backup_float/ttt5_bccd_float_final.weights \
    --iters 6000 --per-channel --seeds 0,1 --runs runs/bench/staged_bccd_kt --out bench/results/staged_bccd_kt.json
# 3. CIFAR-10: float fine-tuning vs TWN / TTN / STTN / per-channel TWN, all layers ternary, 20 epochs each
python bench/classify_methods.py --epochs 20 --lr 0.02 --methods float twn ttn sttn twn-pc \
    --out bench/results/classify_methods.json --project runs/bench_classify
# 9. CIFAR-10: float fine-tuned, direct, staged, with and without transfer (from the float start or from the float
# fine-tuned network), 8 epochs of 10,000 images, three seeds
python bench/staged_cifar.py --epochs 8 --train-per-class 1000 --valid-per-class 1000 --batch-size 128 --lr 0.02 \
    --seeds 0,1,2 --rows float_finetuned,direct,direct_kt,staged,staged_kt,direct_kt_ft,staged_kt_ft \
    --runs runs/bench/staged_cifar_kt --out bench/results/staged_cifar_kt.json
