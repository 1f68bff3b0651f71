#!/usr/bin/env bash
# Issue 16.4: SmolLM2-135M on MedCF, and Table 5/11's warm-up-source question on our data.
# Run from the repository root (~45 min on 2 idle cores; the pre-edit passes and the synthetic
# warm-up are computed once, run_cache.py).
set -euo pipefail
R=${R:-results/runs}
# 1. all 544 MedCF test records, 100 per step, all evaluated (MedCF takes ZsRE's layers, B.2)
M="--dataset medcf --n 544 --eval-n all --generate"
python run_stream.py --overwrite $M                                   --out $R/medcf_default
python run_stream.py --overwrite $M --method ultraedit --warmup 0     --out $R/medcf_ultraedit
python run_stream.py --overwrite $M --method no_ln                    --out $R/medcf_no_ln
python run_stream.py --overwrite $M --method ft --lr 10               --out $R/medcf_ft
# 2. the warm-up's source at a fixed size, on the ZsRE evaluation split (1,487 edits, 150 evaluated):
#    statistics only (our default mode; Algorithm 1's applied warm-up, Table 11's Warmup-MedCF, adds
#    --warmup-mode paper to these lines: not yet run)
Z="--dataset zsre --n 1487 --eval-n 150"
for src in synthetic zsre-calib medcf; do
  python run_stream.py --overwrite $Z --warmup 544 --warmup-data $src                      --out $R/zsre_warm544_$src
done
# 3. ... and on MedCF: the first 272 records edited, MedCF's other 272 the in-domain warm-up
H="--dataset medcf --n 272 --eval-n all"
python run_stream.py --overwrite $H --warmup 0                                             --out $R/medcf272_no_warmup
for src in synthetic zsre-calib medcf; do
  python run_stream.py --overwrite $H --warmup 272 --warmup-data $src                      --out $R/medcf272_warm_$src
done
