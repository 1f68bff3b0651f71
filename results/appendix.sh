#!/usr/bin/env bash
# The paper's appendix experiments on SmolLM2-135M and the ZsRE evaluation split.
# Run from the repository root; in priority order (~90 min on 2 idle cores).
set -euo pipefail
R=${R:-results/runs}
Z="--dataset zsre --n 1487 --eval-n 150"
# B.5 hidden-state drift of 1,000 GLUE sentences, four editors (the default run is also B.6.5's baseline
# and B.3.3's spectrum)
python run_stream.py --overwrite $Z --hidden-shift                              --out $R/app_default
python run_stream.py --overwrite $Z --hidden-shift --method ultraedit --warmup 0 --out $R/app_ultraedit
python run_stream.py --overwrite $Z --hidden-shift --method no_ln               --out $R/app_no_ln
python run_stream.py --overwrite $Z --hidden-shift --method ft --lr 10          --out $R/app_ft
# B.6.5 without the |k_hat|^2 factor (V = -lr d_in g_hat: the same lr keeps the update size)
python run_stream.py --overwrite $Z --no-key-scale                              --out $R/app_no_key_scale
# B.6.4 / Table 14's design: warm-up on ZsRE (calibration split), a long MedCF segment, an abrupt
# switch to 400 ZsRE evaluation edits; evaluated at the switch and at the end
S="--dataset medcf:544,zsre:400 --warmup-data zsre-calib --warmup 733 --eval-n 300 --eval-every 544 --lr 2.5e-4"
python run_stream.py --overwrite $S                                             --out $R/app_shift_stableedit
python run_stream.py --overwrite $S --method ultraedit                          --out $R/app_shift_ultraedit
# Figure 1b: the last 487 edits after the full stream vs after a stream that skips the first 1,000,
# three stream orders, no warm-up in either arm, fixed lr (results/cumulative.py pairs them)
for seed in 0 1 2; do
  F="--dataset zsre --n 1487 --shuffle --seed $seed --eval-n 600 --warmup 0 --lr 2.5e-4"
  python run_stream.py --overwrite $F                                           --out $R/app_cum_full_s$seed
  python run_stream.py --overwrite $F --skip 1000                               --out $R/app_cum_skip_s$seed
done
# Figure 10: Algorithm 1's applied in-domain warm-up (zsre-calib: 733 records, so sizes stop there),
# by size at the start (0: none, paired against) and by placement at the full size
python run_stream.py --overwrite $Z --warmup 0                                  --out $R/app_warm_size0
for w in 250 500 733; do
  python run_stream.py --overwrite $Z --warmup-mode paper --warmup $w           --out $R/app_warm_size$w
done
for at in q1 middle q3 end; do
  python run_stream.py --overwrite $Z --warmup-mode paper --warmup 733 --warmup-placement $at --out $R/app_warm_at_$at
done
