#!/usr/bin/env bash
# The `small` quality run (docs/REPRODUCTION.md) as one job of a chain on a GPU machine. Its
# stages (scripts/timed_job.py) resume where an earlier job stopped when the workspaces are
# still there (the next job started within the 30 s the machine stays warm).
#
#   A: pseudo4d, train_base (or the bundle's base), train_depth with DEPTH=1, then the 4D
#      variants of VARIANTS one after another (chains side by side on one GPU train no
#      faster than one: 2026-12-02, docs/REPRODUCTION.md)
#   C (with SAMPLE): sample_4d over the SAMPLE variants whose models exist, once those of them
#      that A trains are fine-tuned (or only SAMPLE_S seconds are left), then evaluate on them
#
# Run from the repository root:
#   PACKED="dir ..." END=570 VARIANTS="hard sequential" SAMPLE=soft,soft_free COLLECT_A="data/..." \
#     bash scripts/quality_run.sh
#
# PACKED: directories each holding packed data (`fourreal pack`) and an `unpack.txt` of
#   NAME=DEST lines (e.g. `clips=data/videos/clips`), unpacked once into $WORK/in.
# PARAMS: the params file (default docs/results/quality/params.yaml).
# END: seconds this job may take in all; COLLECT_A: workspace paths sent back in $OUT.
# VARIANTS: the 4D variants to train (default "soft hard sequential soft_all"; "" trains none).
# SAMPLE_S: the seconds sample_4d is given at least (default 300); SAMPLE_WS: the sampling
#   workspace's name (default wsc; another name samples another set of variants apart);
#   SIGMA_MAX: sample_4d.sigma_max for that sampling (default: the params file's).
# WORK: where the workspaces live (default /tmp).
# BUNDLE: a model bundle (default models/small): its base model is taken as train_base's
#   output and its 4D model as the soft variant's, instead of training them again; its
#   parts travel one job at a time (carry models/small/base in one job, .../model_4d in another),
#   and the job that carries a part must run this script: it copies the part into its workspace
#   under $WORK, the only place that outlives the job (a carried path is gone from the GPU
#   machine as soon as a later job does not carry it).
# BASE_LATER=1: no base model yet (it comes with a later job); this job runs only pseudo4d
#   and train_depth.
# EXTRA: stages run after sample_4d and before evaluate in the sampling workspace, e.g.
#   "baseline_4real reconstruct"; evaluate then tabulates 4Real and the reconstruction too.
# TO4D: video files that `fourreal to4d` turns into 4D scenes with the workspace's models
#   (base, soft 4D, the bundle's depth network), one after another once evaluate is done,
#   into $WC/to4d/<name> (collected: metrics, details, run.json, previews).
# A `.whl` directory in the checkout (gsplat's wheel; open3d and its needs packed by
#   scripts/pack_site.sh) is installed into $WORK/site first (scripts/install_wheels.sh);
#   gsplat builds its CUDA kernels into $WORK/torch_ext once, while the stages run.
#
# $OUT receives a.back.tar.NN (the collected paths, parts of 15.9 MiB: `cat a.back.tar.* | tar
# x`), c.back.tar.NN and meta.tgz (each job's status and logs); collect at most six parts.
set -u
T0=$(date +%s)
END=${END:-570}
PARAMS=$(realpath "${PARAMS:-docs/results/quality/params.yaml}")
BUNDLE=${BUNDLE:-models/small}
VARIANTS=${VARIANTS-soft hard sequential soft_all}  # set but empty: train none
WORK=${WORK:-/tmp}; IN=$WORK/in; WA=$WORK/wsa; WC=$WORK/${SAMPLE_WS:-wsc}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
bash scripts/install_wheels.sh $WORK
[ -d $WORK/site ] && export PYTHONPATH=$PWD:$WORK/site
[ -d $WORK/site/_syslibs ] && export LD_LIBRARY_PATH=$WORK/site/_syslibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export TORCH_EXTENSIONS_DIR=$WORK/torch_ext MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0
if [ -d $WORK/site/gsplat ] && [ ! -e $WORK/gsplat_built ]; then  # its CUDA kernels build once, beside the stages
  (python -c "from gsplat.cuda._backend import _C; assert _C is not None" > $WORK/gsplat_build.log 2>&1 \
    && touch $WORK/gsplat_built && echo "gsplat ready") &
fi
mkdir -p $IN $WA/data $WA/.done $OUT/a $OUT/c
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used --format=csv,noheader

left() { echo $(( END - ($(date +%s) - T0) )); }
done_in() {  # done_in WS STAGE: has that stage finished in that workspace?
  python -c "import json,sys; s=json.load(open('$1/.done/status.json')); sys.exit(0 if s.get(sys.argv[1],{}).get('done') else 1)" "$2" 2>/dev/null
}
mark_done() {  # mark_done FROM STAGE...: these stages of chain A are done, their output taken from FROM
  python - "$WA/.done/status.json" "$@" <<'PY'
import json, os, sys
path, source, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
status = json.load(open(path)) if os.path.isfile(path) else {}
for s in steps:
    status[s] = {"done": True, "seconds": 0.0, "runs": [], "from": source}
json.dump(status, open(path, "w"), indent=1)
PY
  echo "taken from $1: ${*:2}"
}
link() { [ -L "$2" ] || [ -e "$2" ] || ln -s "$1" "$2"; }  # link TARGET NAME

unpack=()
for dir in ${PACKED:-}; do
  while IFS= read -r spec; do [ -n "$spec" ] && unpack+=(--unpack "$dir/${spec%%=*}=${spec#*=}"); done < $dir/unpack.txt
done
[ ${#unpack[@]} -gt 0 ] && python scripts/timed_job.py --workspace $IN --params "$PARAMS" --budget 300 \
  "${unpack[@]}" --out $WORK/unpack_out > /dev/null
echo "inputs after $(( $(date +%s) - T0 )) s: $(ls -d $IN/data/*/* 2>/dev/null | tr '\n' ' ')"
link $IN/data/videos $WA/data/videos; link $IN/data/render $WA/data/render

BASE="@bf16 data/train_base/model"
OB="data/train_base/model"
finetuned() { done_in $WA "@over-base data/finetune_4d/$1/model $OB"; }
base_ready() { done_in $WA pseudo4d && done_in $WA "$BASE"; }
if [ -f $BUNDLE/base/config.json ] && ! done_in $WA "$BASE"; then
  mkdir -p $WA/data/train_base && rm -rf $WA/data/train_base/model
  cp -r $BUNDLE/base $WA/data/train_base/model
  mark_done $BUNDLE/base train_base "$BASE"
fi
if [ -f $BUNDLE/model_4d/config.json ] && ! finetuned soft; then  # the bundle's 4D model is the soft variant
  mkdir -p $WA/data/finetune_4d/soft && rm -rf $WA/data/finetune_4d/soft/model
  cp -r $BUNDLE/model_4d $WA/data/finetune_4d/soft/model
  python - $WA/data/finetune_4d/soft/model/config.json <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["base"] = "../../../train_base/model"  # the workspace's base model, which the bundle's is
json.dump(spec, open(sys.argv[1], "w"), indent=1)
PY
  mark_done $BUNDLE/model_4d "train_4d --variant soft --phase pseudo" "train_4d --variant soft --phase render" \
    "@over-base data/finetune_4d/soft/model $OB"
fi

if [ -f $BUNDLE/depth/config.json ] && [ ! -d $WA/data/train_depth/model ] && [ -z "${DEPTH:-}" ]; then
  mkdir -p $WA/data/train_depth && cp -r $BUNDLE/depth $WA/data/train_depth/model
  mark_done $BUNDLE/depth train_depth
fi

stages_a=(pseudo4d)
[ -n "${DEPTH:-}" ] && [ -d $IN/data/render/grids/test ] && stages_a+=(train_depth)
if [ -z "${BASE_LATER:-}" ]; then
  stages_a+=(train_base "$BASE")
  for v in $VARIANTS; do
    stages_a+=("train_4d --variant $v --phase pseudo" "train_4d --variant $v --phase render")
    [ $v = soft ] && stages_a+=("@over-base data/train_4d/soft/model $OB")
    stages_a+=("@over-base data/finetune_4d/$v/model $OB")
  done
fi
args=(); for s in "${stages_a[@]}"; do args+=(--stage "$s"); done
for p in ${COLLECT_A:-}; do args+=(--collect "$p"); done
python scripts/timed_job.py --workspace $WA --params "$PARAMS" --budget $(left) --out $OUT/a --part-mb 15.9 \
  "${args[@]}" > $OUT/a/job.log 2>&1 &

if [ -n "${SAMPLE:-}" ]; then (
  mkdir -p $WC/data
  link $IN/data/videos $WC/data/videos; link $IN/data/render $WC/data/render
  for d in pseudo4d train_base train_depth train_4d finetune_4d; do link $WA/data/$d $WC/data/$d; done
  waiting() {  # is a SAMPLE variant that this job trains not fine-tuned yet?
    for v in ${SAMPLE//,/ }; do
      [[ " $VARIANTS " == *" $v "* ]] && ! finetuned $v && return 0
    done
    ! base_ready
  }
  while [ $(left) -gt ${SAMPLE_S:-300} ] && waiting; do sleep 5; done
  base_ready || exit 0
  python - "$PARAMS" "$WC/params_sample.yaml" "$SAMPLE" "${EXTRA:-}" <<'PY'
import os, sys, yaml
params = yaml.safe_load(open(sys.argv[1]))
keep, extra = sys.argv[3].split(","), sys.argv[4].split()
os.chdir(os.path.dirname(sys.argv[2]))  # trained variants are sampled only if their model is there
if os.environ.get("SIGMA_MAX"):  # the highest flow time the model is asked at (default 1)
    params["sample_4d"]["sigma_max"] = float(os.environ["SIGMA_MAX"])
params["sample_4d"]["variants"] = {k: v for k, v in params["sample_4d"]["variants"].items()
                                   if k in keep and (not v["model"] or os.path.isfile(os.path.join(v["model"], "config.json")))}
print("sampling", list(params["sample_4d"]["variants"]))
# evaluate tabulates 4Real and the reconstruction only where EXTRA runs them; structure from
# motion (pycolmap) would take most of the job
params["evaluate"].update(variants=list(params["sample_4d"]["variants"]), sfm=False,
                          baselines=params["evaluate"]["baselines"] if "baseline_4real" in extra else [],
                          reconstruction=params["evaluate"]["reconstruction"] if "reconstruct" in extra else "")
yaml.safe_dump(params, open(sys.argv[2], "w"), sort_keys=False)
PY
  extra=(); for e in ${EXTRA:-}; do extra+=(--stage $e --collect data/$e/metrics.json --collect data/$e/details.json \
    --collect data/$e/run.json --collect data/$e/scores.json --collect data/$e/previews); done
  python scripts/timed_job.py --workspace $WC --params $WC/params_sample.yaml --budget $(left) \
    --out $OUT/c --part-mb 15.9 --stage sample_4d "${extra[@]}" --stage evaluate --collect params_sample.yaml \
    --collect data/sample_4d/metrics.json --collect data/sample_4d/details.json --collect data/sample_4d/scores.json \
    --collect data/sample_4d/previews \
    --collect data/eval
  [ -n "${TO4D:-}" ] && done_in $WC evaluate || exit 0
  bundle=$WORK/bundle  # the workspace's models as a bundle: base, soft 4D, depth
  if [ ! -f $bundle/model_4d/config.json ]; then
    mkdir -p $bundle && link $WA/data/train_base/model $bundle/base && link $WA/data/train_depth/model $bundle/depth
    cp -r $WA/data/finetune_4d/soft/model $bundle/model_4d.tmp
    python -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['base']='../base'; json.dump(c, open(p,'w'), indent=1)" \
      $bundle/model_4d.tmp/config.json && mv $bundle/model_4d.tmp $bundle/model_4d
  fi
  for video in $TO4D; do
    name=$(basename "$video"); name=${name%.*}; dest=$WC/to4d/$name
    [ -f $dest/metrics.json ] && continue
    [ $(left) -gt 120 ] || break
    echo "to4d $video ($(left) s left)"
    timeout $(( $(left) - 30 )) python -m fourreal.running.cli to4d --models $bundle --params "$PARAMS" --out $dest \
      $video > $OUT/c/to4d_$name.log 2>&1; echo "to4d $name: exit $?"
  done
  (cd $WC && tar cf $OUT/to4d.tar --exclude='*.npz' --exclude='*.safetensors' to4d 2>/dev/null)
) > $OUT/c/job.log 2>&1 & fi
wait

for j in a c; do for f in $OUT/$j/back.tar.*; do [ -e "$f" ] && mv "$f" $OUT/$j.$(basename $f); done; done
[ -f $WA/.done/status.json ] && cp $WA/.done/status.json $OUT/a/status_workspace.json
[ -f $WC/.done/status.json ] && cp $WC/.done/status.json $OUT/c/status_workspace.json
tar czf $OUT/meta.tgz -C $OUT a c && rm -rf $OUT/a $OUT/c
for w in $WA $WC; do
  [ -f $w/.done/status.json ] && python -c "import json; [print(k, v['done'], v['seconds']) for k, v in json.load(open('$w/.done/status.json')).items()]"
done
ls -la $OUT; echo "job took $(( $(date +%s) - T0 )) s"
