#!/usr/bin/env bash
# The float32 eigh route against the float64 one on the real ZsRE runs (SmolLM2-135M and
# Gemma-3-270M, the whole evaluation split, a seeded 150 evaluated), same code, same warm-up.
# Run from the repository root (~25 min on 2 idle cores); then: python results/route_table.py
# (results/width.md is generated from these runs by results/pages.py)
set -euo pipefail
R=${R:-results/runs}
Z="--dataset zsre --n 1487 --eval-n 150"
for M in smollm2-135m gemma3-270m; do
  python run_stream.py --overwrite --model $M $Z --eigh float64 --out $R/route_${M}_float64
  python run_stream.py --overwrite --model $M $Z --eigh float32 --out $R/route_${M}_float32
done
