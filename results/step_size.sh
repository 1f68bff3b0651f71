#!/usr/bin/env bash
# Does --step-size (lab.models.STEP_SIZE, derived from SmolLM2's preset) give Gemma-3-270M
# a working lr without its preset lr? The calibration protocol (zsre-calib, 300 edits, all evaluated).
set -euo pipefail
R=${R:-results/runs}
C="--dataset zsre-calib --n 300 --eval-n all"
python run_stream.py --overwrite --model gemma3-270m $C                   --out $R/gemma_calib300_preset
python run_stream.py --overwrite --model gemma3-270m $C --step-size 0.13  --out $R/gemma_calib300_step0.13
