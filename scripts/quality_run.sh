#!/usr/bin/env bash
# The `small` quality run (docs/REPRODUCTION.md) as one job of a chain on a GPU machine:
# three chains of stages (scripts/timed_job.py) side by side on one GPU, each stage resumed
# where an earlier job of the chain stopped when the workspaces are still there.
#
#   A: pseudo4d, train_base, then the soft variants (soft, soft_all)
#   B: once the base model and the pseudo-4D grids are there, the hard variant
#   D: train_depth (when the held-out renders are there), then the sequential variant
#   C (with SAMPLE): sample_4d over the SAMPLE variants whose models exist, once soft, hard
#      and sequential are fine-tuned (or only SAMPLE_S seconds are left), then evaluate on them
#
# Run from the repository root:
#   PACKED="dir ..." END=570 COLLECT_A="data/..." COLLECT_B="data/..." bash scripts/quality_run.sh
#
# PACKED: directories each holding packed data (`fourreal pack`) and an `unpack.txt` of
#   NAME=DEST lines (e.g. `clips=data/videos/clips`), unpacked once into $WORK/in.
# PARAMS: the params file (default docs/results/quality/params.yaml).
# END: seconds this job may take in all; COLLECT_A/B/D: workspace paths sent back in $OUT.
# SAMPLE_S: the seconds sample_4d is given at least (default 300).
# WORK: where the workspaces live (default /tmp).
# The base model of a bundle, models/small/base (bf16, as the run exported it), is taken as
# train_base's output instead of training it again.
# BASE_LATER=1: that base model comes with a later job of the chain; this one runs only
# pseudo4d and train_depth.
#
# $OUT receives a.back.tar.NN, b.back.tar.NN, d.back.tar.NN (the collected paths, parts of
# 15.9 MiB: `cat a.back.tar.* | tar x`), c.back.tar.NN and meta.tgz (each job's status and
# logs); collect at most seven parts in all.
set -u
T0=$(date +%s)
END=${END:-570}
PARAMS=$(realpath "${PARAMS:-docs/results/quality/params.yaml}")
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
WORK=${WORK:-/tmp}; IN=$WORK/in; WA=$WORK/wsa; WB=$WORK/wsb; WC=$WORK/wsc; WD=$WORK/wsd
mkdir -p $IN $WA/data $WB/data $WD/data $WA/.done $OUT/a $OUT/b $OUT/c $OUT/d
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used --format=csv,noheader

left() { echo $(( END - ($(date +%s) - T0) )); }
done_in() {  # done_in WS STAGE: has that stage finished in that workspace?
  python -c "import json,sys; s=json.load(open('$1/.done/status.json')); sys.exit(0 if s.get(sys.argv[1],{}).get('done') else 1)" "$2" 2>/dev/null
}
job() {  # job WS OUTDIR COLLECT STAGE...
  local ws=$1 out=$2 col=$3; shift 3
  local args=(); for s in "$@"; do args+=(--stage "$s"); done
  for p in $col; do args+=(--collect "$p"); done
  python scripts/timed_job.py --workspace $ws --params "$PARAMS" --budget $(left) \
    --out $out --part-mb 15.9 "${args[@]}"
}
link() { [ -L "$2" ] || [ -e "$2" ] || ln -s "$1" "$2"; }  # link TARGET NAME

unpack=()
for dir in ${PACKED:-}; do
  while IFS= read -r spec; do [ -n "$spec" ] && unpack+=(--unpack "$dir/${spec%%=*}=${spec#*=}"); done < $dir/unpack.txt
done
[ ${#unpack[@]} -gt 0 ] && python scripts/timed_job.py --workspace $IN --params "$PARAMS" --budget 300 \
  "${unpack[@]}" --out $WORK/unpack_out > /dev/null
echo "inputs after $(( $(date +%s) - T0 )) s: $(ls -d $IN/data/*/* 2>/dev/null | tr '\n' ' ')"
for w in $WA $WB $WD; do link $IN/data/videos $w/data/videos; link $IN/data/render $w/data/render; done
for w in $WB $WD; do link $WA/data/pseudo4d $w/data/pseudo4d; link $WA/data/train_base $w/data/train_base; done

BASE="@bf16 data/train_base/model"
OB="data/train_base/model"
if [ -f models/small/base/config.json ] && ! done_in $WA "$BASE"; then
  mkdir -p $WA/data/train_base && rm -rf $WA/data/train_base/model
  cp -r models/small/base $WA/data/train_base/model
  python - "$WA/.done/status.json" "$BASE" <<'PY'
import json, os, sys
path, steps = sys.argv[1], ["train_base", sys.argv[2]]
status = json.load(open(path)) if os.path.isfile(path) else {}
for s in steps:
    status[s] = {"done": True, "seconds": 0.0, "runs": [], "from": "models/small/base"}
json.dump(status, open(path, "w"), indent=1)
PY
  echo "base model taken from models/small/base"
fi

stages_a=(pseudo4d train_base "$BASE"
  "train_4d --variant soft --phase pseudo" "train_4d --variant soft --phase render"
  "@over-base data/train_4d/soft/model $OB" "@over-base data/finetune_4d/soft/model $OB"
  "train_4d --variant soft_all --phase pseudo" "train_4d --variant soft_all --phase render"
  "@over-base data/finetune_4d/soft_all/model $OB")
[ -n "${BASE_LATER:-}" ] && stages_a=(pseudo4d)
job $WA $OUT/a "${COLLECT_A:-}" "${stages_a[@]}" > $OUT/a/job.log 2>&1 &
base_ready() {  # wait until the base model and the pseudo-4D grids are there (or never)
  while [ $(left) -gt 60 ] && [ -z "${BASE_LATER:-}" ] && ! { done_in $WA pseudo4d && done_in $WA "$BASE"; }; do
    sleep 5
  done
  done_in $WA pseudo4d && done_in $WA "$BASE"
}
(
  base_ready || exit 0
  job $WB $OUT/b "${COLLECT_B:-}" \
    "train_4d --variant hard --phase pseudo" "train_4d --variant hard --phase render" \
    "@over-base data/finetune_4d/hard/model $OB"
) > $OUT/b/job.log 2>&1 &
(
  [ -d $IN/data/render/grids/test ] && job $WD $OUT/d "" train_depth
  base_ready || exit 0
  job $WD $OUT/d "${COLLECT_D:-}" \
    "train_4d --variant sequential --phase pseudo" "train_4d --variant sequential --phase render" \
    "@over-base data/finetune_4d/sequential/model $OB"
) > $OUT/d/job.log 2>&1 &
if [ -n "${SAMPLE:-}" ]; then (
  finetuned() { done_in $1 "@over-base data/finetune_4d/$2/model $OB"; }
  mkdir -p $WC/data/train_4d $WC/data/finetune_4d
  link $IN/data/videos $WC/data/videos; link $IN/data/render $WC/data/render
  for d in pseudo4d train_base; do link $WA/data/$d $WC/data/$d; done
  while [ $(left) -gt ${SAMPLE_S:-300} ] && ! { finetuned $WA soft && finetuned $WB hard && finetuned $WD sequential; }; do
    sleep 5
  done
  finetuned $WA soft || exit 0
  [ -d $WA/data/train_4d/soft/model ] && link $WA/data/train_4d/soft $WC/data/train_4d/soft
  for wv in $WA:soft $WA:soft_all $WB:hard $WD:sequential; do
    finetuned ${wv%%:*} ${wv#*:} && link ${wv%%:*}/data/finetune_4d/${wv#*:} $WC/data/finetune_4d/${wv#*:}
  done
  python - "$PARAMS" "$WC/params_sample.yaml" "$SAMPLE" <<'PY'
import os, sys, yaml
params = yaml.safe_load(open(sys.argv[1]))
keep = sys.argv[3].split(",")
os.chdir(os.path.dirname(sys.argv[2]))  # trained variants are sampled only if their model is there
params["sample_4d"]["variants"] = {k: v for k, v in params["sample_4d"]["variants"].items()
                                   if k in keep and (not v["model"] or os.path.isdir(v["model"]))}
print("sampling", list(params["sample_4d"]["variants"]))
# evaluate tabulates them alone: 4Real and the reconstruction run in later jobs, and
# structure from motion (pycolmap) would take most of the job
params["evaluate"].update(variants=list(params["sample_4d"]["variants"]), baselines=[], reconstruction="", sfm=False)
yaml.safe_dump(params, open(sys.argv[2], "w"), sort_keys=False)
PY
  python scripts/timed_job.py --workspace $WC --params $WC/params_sample.yaml --budget $(left) \
    --out $OUT/c --part-mb 15.9 --stage sample_4d --stage evaluate --collect params_sample.yaml \
    --collect data/sample_4d/metrics.json --collect data/sample_4d/scores.json --collect data/sample_4d/previews \
    --collect data/eval
) > $OUT/c/job.log 2>&1 & fi
wait

for j in a b c d; do for f in $OUT/$j/back.tar.*; do [ -e "$f" ] && mv "$f" $OUT/$j.$(basename $f); done; done
for j in a b c d; do [ -f $WORK/ws$j/.done/status.json ] && cp $WORK/ws$j/.done/status.json $OUT/$j/status_workspace.json; done
tar czf $OUT/meta.tgz -C $OUT a b c d && rm -rf $OUT/a $OUT/b $OUT/c $OUT/d
for w in $WA $WB $WC $WD; do
  [ -f $w/.done/status.json ] && python -c "import json; [print(k, v['done'], v['seconds']) for k, v in json.load(open('$w/.done/status.json')).items()]"
done
ls -la $OUT; echo "job took $(( $(date +%s) - T0 )) s"
