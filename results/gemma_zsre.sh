#!/usr/bin/env bash
# Gemma-3-270M on real ZsRE (results/gemma.md). Run from the repository root (~60 min on 2 idle cores).
# 1. the preset re-checked on the calibration split at the length it is used for (733 edits, the
#    horizon rule's lr 1e-5 * 500 / 733 = 6.8e-6), against 2x / 0.5x that lr and the upper layers
set -euo pipefail
R=${R:-results/runs}
G="--model gemma3-270m"
C="--dataset zsre-calib --n 733 --eval-n 200"
python run_stream.py --overwrite $G $C                       --out $R/gemma_calib_default
python run_stream.py --overwrite $G $C --lr 1.4e-5           --out $R/gemma_calib_lr1.4e-5
python run_stream.py --overwrite $G $C --lr 3.4e-6           --out $R/gemma_calib_lr3.4e-6
python run_stream.py --overwrite $G $C --layers model.layers.{10..15}.mlp.down_proj --out $R/gemma_calib_layers10-15
# 2. the Table 4 ablation on the whole ZsRE evaluation split (1,487 edits, a seeded 150 evaluated),
#    the same five rows as SmolLM2's table (results/reproduce.sh part 2)
Z="--dataset zsre --n 1487 --eval-n 150"
python run_stream.py --overwrite $G $Z                               --out $R/gemma_zsre_full
python run_stream.py --overwrite $G $Z --warmup 0                    --out $R/gemma_zsre_no_warmup
python run_stream.py --overwrite $G $Z --method ultraedit            --out $R/gemma_zsre_no_whitening
python run_stream.py --overwrite $G $Z --method no_ln --warmup 0     --out $R/gemma_zsre_no_ln
python run_stream.py --overwrite $G $Z --method ultraedit --warmup 0 --out $R/gemma_zsre_ultraedit
