#!/usr/bin/env bash
# SmolLM2-135M on MedCF (App. B.2, Table 10), the official codes' replicas there, and Table 5/11's
# warm-up-source question on our data. Run from the repository root (about an hour on 2 idle cores;
# the pre-edit passes and the synthetic warm-up are computed once, lab/cache.py). Page: results/medcf.md.
set -euo pipefail
R=${R:-results/runs}
# 1. the 544-record MedCF sample (data folder), 100 per step, all evaluated (MedCF takes ZsRE's layers, B.2)
M="--dataset medcf --n 544 --eval-n all"
python run_stream.py --overwrite $M --generate                        --out $R/medcf_default
python run_stream.py --overwrite $M --generate --method ultraedit --warmup 0 --out $R/medcf_ultraedit
python run_stream.py --overwrite $M --generate --method no_ln         --out $R/medcf_no_ln
python run_stream.py --overwrite $M --generate --method ft --lr 10    --out $R/medcf_ft
# ... and the official codes replicated (lab/official.py) at their measured lr 3e-4; MedCF has no
#     records beyond the 544 edited, so StableEdit's in-domain warm-up is the 733 ZsRE calibration records
python run_stream.py --overwrite --replicate ultraedit-official $M --lr 3e-4 --out $R/replicate_ultraedit_medcf
python run_stream.py --overwrite --replicate stableedit-official $M --lr 3e-4 --warmup 733 \
  --warmup-data zsre-calib --out $R/replicate_stableedit_medcf
# ... and the StableEdit replica at lr 1e-3, where the official code scored higher on the calibration split
python run_stream.py --overwrite --replicate stableedit-official $M --lr 1e-3 --warmup 733 \
  --warmup-data zsre-calib --out $R/replicate_stableedit_medcf_lr1e-3
# 2. the warm-up's source at a fixed size, on the ZsRE evaluation split (1,487 edits, 150 evaluated),
#    statistics only (our default mode); the in-domain source is zsre-calib
Z="--dataset zsre --n 1487 --eval-n 150"
for src in synthetic zsre-calib medcf; do
  python run_stream.py --overwrite $Z --warmup 544 --warmup-data $src                      --out $R/zsre_warm544_$src
done
# 3. ... and on MedCF split by record within each relation: even records edited, odd ones the in-domain
#    warm-up (results/medcf_split.py writes the data folder and prints it)
S=$(python results/medcf_split.py | cut -d' ' -f1)
H="--dataset medcf --n 272 --eval-n all --data-dir $S"
python run_stream.py --overwrite $H --warmup 0                                             --out $R/medcf_split_no_warmup
for src in medcf synthetic zsre-calib; do
  python run_stream.py --overwrite $H --warmup 272 --warmup-data $src                      --out $R/medcf_split_warm_$src
done
