#!/usr/bin/env bash
# The GPU check (random weights of the real architectures, bf16), one call that runs anywhere: the card's bf16 matmul
# rate and copy bandwidth (the roofline's two rates); per model (GLaMM-7B, Sa2VA-3B, UniPixel-3B, VideoGLaMM)
# validate's tables with the time by stage beside each stage's roofline (stages.csv) at the model's official
# attention and at the other kernel under the default prefill and image encoders (GLaMM-7B also under the eager
# prefill, once all official: eager attention, prefill and encoders, and once with --encoders fused), none against
# LiteLVLM and FastV at 576/192/64 (VideoGLaMM per frame 576/196/64 with --arrangement pool-min, so pruning shortens
# its prompt); the gpu-marked tests right after GLaMM-7B's runs and profile; the grounding throughput at batch
# sizes 1/8/32 and
# what eval-grounding's loader buys (bench_prepare_overlap.py);
# GLaMM-7B's decoder stack alone per attention kernel and prefill path (benchmarks/bench_fused_prefill.py, last:
# the deadline may skip it). The most important
# steps run first. Built to end inside 8 minutes on a fresh single-GPU machine with no network and no git.
# docs/validate.md ("The GPU check") says what it must show; env.txt and summary.md name the card (the CPU on a dry
# run) it ran on.
#
#   benchmarks/gpu_check.sh --prepare [DIR]          # HERE (PyPI reachable): one folder, default .gpu/, <= 40 MiB
#   bash .gpu/benchmarks/gpu_check.sh --out /tmp/gc  # THERE, from any directory: installs .whl/ in a scratch site
#   benchmarks/gpu_check.sh --dry-run --out /tmp/gc  # the whole flow on a CPU, tiny random presets
#   benchmarks/gpu_check.sh --print-steps [--dry-run]   # the steps' commands, nothing run
#
# --prepare DIR (or --prepare --out DIR) writes the project's code, the shared data its steps read, the entry points
# of the studies' commands and the wheels a bare GPU image lacks (MISSING; --no-wheels: none) into one folder
# (benchmarks/gpu_check_prepare.py); it exits 2 in one line where pip cannot download them. Every step writes into
# the one results folder (--out) and the folder is packed into <out>.tar.gz after each step, so a step that runs
# out of time loses nothing before it; each step has its own time limit (STEP_LIMIT_S, seconds), cut to what is
# left of the whole check's (DEADLINE_S, seconds from the start; a step with under 20 s left is skipped and
# logged); a step that runs no test fails ("<step> ran no test"); ONLY (a regular expression of step names) runs
# those alone, naming the others in steps.log (for a short lease); PACK names the archive (default <out>.tar.gz).
# steps.log has each step's seconds between a start and an end line. The summary runs last whatever the deadline
# (benchmarks/gpu_check.py summary): every target MET, MISSED or NOT MEASURED in summary.md / summary.csv, every
# run's rows in runs.csv.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
MODE=check
OUT=""
PREP=""
DRY=0
PRINT=0
WITH_WHEELS=1
STEP_LIMIT_S="${STEP_LIMIT_S:-120}"   # a model's first run builds its random checkpoint
DEADLINE_S="${DEADLINE_S:-470}"
WHEELS="$ROOT/.whl"
# the packages a fresh GPU image lacked (torch, numpy, pandas, pytest, ... were there); bitsandbytes (over 40 MiB)
# does not fit the folder: the quantization tests skip without it, named
MISSING=("transformers==5.24.0" "open_clip_torch" "captum" "pycocotools" "ftfy" "wcwidth")
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
# validate's choice of image encoders (--encoders auto|eager|graph|fused|compile|compile-eager|fused-eager; a dry
# run gives fused as fused-eager: no CUDA graph on a CPU). Set ENCODERS_OPT= (empty)
# to leave it out where validate does not have the option yet: the encoders' runs then take validate's default.
ENCODERS_OPT="${ENCODERS_OPT---encoders}"

usage() { sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }
encoders() { [ -z "$ENCODERS_OPT" ] || printf '%s %s ' "$ENCODERS_OPT" "$1"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) MODE=prepare
      if [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then PREP="$2"; shift; fi ;;
    --dry-run) DRY=1 ;;
    --print-steps) PRINT=1 ;;
    --no-wheels) WITH_WHEELS=0 ;;
    --out) [ $# -gt 1 ] || { echo "gpu_check.sh: --out needs a folder" >&2; exit 2; }
      OUT="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# the shared data: $LITELVLM_SHARED_DATA, else a prepared folder's own copy, else the checkout's ../shared/data
if [ -n "${LITELVLM_SHARED_DATA:-}" ]; then DATA="$LITELVLM_SHARED_DATA"
elif [ -d "$ROOT/shared/data" ]; then DATA="$ROOT/shared/data"
else DATA="$(cd "$ROOT/.." && pwd)/shared/data"
fi
GPU_BATCHES=(1 8 32)

if [ "$MODE" = prepare ]; then
  DEST="${PREP:-${OUT:-$ROOT/.gpu}}"
  "$PY" "$ROOT/benchmarks/gpu_check_prepare.py" check "$DEST" || exit 2
  wheels=()
  if [ "$WITH_WHEELS" = 1 ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    if ! "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 "${PLATFORMS[@]}" \
        -d "$tmp/whl" "${MISSING[@]}" > "$tmp/pip.log" 2>&1; then
      echo "gpu_check.sh --prepare: pip could not download the wheels (offline, or no index reachable): \
$(grep -m1 '^ERROR' "$tmp/pip.log" || tail -n1 "$tmp/pip.log")" >&2
      exit 2
    fi
    wheels=(--wheels "$tmp/whl")
  fi
  "$PY" "$ROOT/benchmarks/gpu_check_prepare.py" folder "$DEST" --data "$DATA" --images "${GPU_BATCHES[-1]}" \
    ${wheels[@]+"${wheels[@]}"}
  exit $?
fi

if [ "$DRY" = 1 ]; then
  DEVICE=cpu
  MODELS=("tiny-random:0" "sa2va-tiny-random:0" "unipixel-tiny-random:0" "videoglamm-tiny-random:0")
  BUDGETS=(192)   # 192 (VideoGLaMM 196 per frame): the targets' budget, where the image has that many tokens
  VIDEO_BUDGETS=(196)
  REPEATS=1
  # traced and replayed by dynamo: no code generation on a CPU (the encoders too, where a run names none)
  FUSED=(--capture fused-eager)
  CAPTURED_ENCODERS=compile-eager
  THROUGHPUT=(--batch-sizes 1 2 --budgets 64 --repeats 1 --memory-limit-gib 1)
  BENCH=(--dry-run)
  WORKERS=1
else
  DEVICE=cuda
  MODELS=("glamm-7b-random" "sa2va-qwen2_5-vl-3b-random" "unipixel-3b-random" "videoglamm-random")
  # the targets' budget only (none runs at N): each budget's lengths compile and capture afresh, and the whole
  # check must end inside 8 minutes; the headline run (the first model's default) adds FastV and 64
  BUDGETS=(192)
  # per frame, counted on a frame's 576 CLIP tokens as the paper does; pool-min keeps min(sqrt(K), 12)^2 a frame,
  # so 196 keeps 144 as none does (pruning's cost alone) and 64 shortens the prompt
  VIDEO_BUDGETS=(196 64)
  REPEATS=3
  FUSED=()
  CAPTURED_ENCODERS=""
  THROUGHPUT=(--batch-sizes "${GPU_BATCHES[@]}" --budgets 192 --repeats 1 --memory-limit-gib 60)
  BENCH=(--device cuda --repeats 10)
  WORKERS=3
fi
OUT="${OUT:-$ROOT/results/gpu_check/$([ "$DRY" = 1 ] && echo dry-run || echo run)}"
CACHE="\${LITELVLM_CACHE:-\$HOME/.cache/litelvlm}"
first="${MODELS[0]%%:*}"
tok=""
[ "$first" = glamm-7b-random ] && tok="--tokenizer '$DATA/glamm_refseg_tokenizer' "

gpu_tests() {
  local files
  files="$(cd "$ROOT" && grep -rlE --include='test_*.py' '@pytest\.mark\.gpu' tests | sort | tr '\n' ' ')"
  if [ -n "$files" ]; then
    step gpu-tests "cd '$ROOT' && $PY -m pytest -p no:cacheprovider -m gpu -q -rA -n $WORKERS ${files% }"
  else
    step gpu-tests "echo 'no test file under $ROOT/tests holds a gpu-marked test'; exit 5"
  fi
}
# the steps: name, then the command (one string each; run with bash -c)
STEPS=()
step() { STEPS+=("$1" "$2"); }
# a full-size random model's cached checkpoint (7-16 GB) goes once its last step is done: the disk of a fresh GPU
# machine holds about two of them
drop() {
  [ "$DRY" = 1 ] || step "drop-$1" "rm -rf \"$CACHE/random-models/${1%%-*}-\"*-fast; df -h \"$CACHE\" | tail -1"
}
step env "(nvidia-smi || true; df -h / /tmp /dev/shm \"\${LITELVLM_CACHE:-\$HOME}\" || true; $PY '$ROOT/benchmarks/gpu_check.py' env) > '$OUT/env.txt' 2>&1; rc=\$?; \
cat '$OUT/env.txt'; exit \$rc"
step rates "$PY '$ROOT/benchmarks/gpu_check.py' matmul '$OUT' $DEVICE"
# per model: attention-prefill[-encoders] runs, its official attention first (Sa2VA and UniPixel: sdpa), under the
# default captured prefill and encoders; GLaMM-7B also with the encoders fused (this project's --encoders fused,
# not yet the default: measured here beside the headline run), under the official eager prefill, and all official
for model in "${MODELS[@]}"; do
  name="${model%%:*}"
  input="--refer-dir '$DATA/coco128_refer'"
  budgets="${BUDGETS[*]}"
  case "$name" in
    sa2va*|unipixel*) runs=("sdpa-captured" "eager-captured") ;;
    *) runs=("eager-captured" "sdpa-captured") ;;
  esac
  # a video model: validate's synthetic clip; pool-min (this project's reading) makes per-frame pruning
  # shorten the LLM's prompt (the official pool keeps 144 tokens a frame whatever K is)
  case "$name" in videoglamm*) input="--arrangement pool-min"; budgets="${VIDEO_BUDGETS[*]}" ;; esac
  # the tiny Sa2VA's image has 117 visual tokens: a dry run prunes it to 64
  [ "$DRY" = 1 ] && [[ "$name" == sa2va* ]] && budgets=64
  # the first model: the headline run with the encoders fused, then the official all-eager path (attention,
  # prefill, encoders) beside the default
  [ "$name" = "$first" ] && runs=("${runs[0]}" "eager-captured-fused" "eager-eager-eager" "${runs[@]:1}")
  for run in "${runs[@]}"; do
    IFS=- read -r attn prefill enc <<< "$run"
    extra=""
    [ "$prefill" = captured ] && extra="${FUSED[*]:-}"
    # a dry run: fused with dynamo's eager backend and no graph; a captured run naming no encoders: the default's
    [ "$DRY" = 1 ] && [ "$enc" = fused ] && enc=fused-eager
    [ "$prefill" = captured ] && [ -z "$enc" ] && [ -n "$CAPTURED_ENCODERS" ] \
      && extra="$extra $(encoders "$CAPTURED_ENCODERS")"
    extra="${extra:+${extra% } }"   # the options, each followed by one space
    methods="litelvlm" runs_budgets="$budgets"
    # the headline run: FastV (inside the LLM) and 64 beside LiteLVLM@192; the methods that prune inside the
    # vision tower (ViTCoP on GLaMM's CLIP, IPCV on every image family's tower) in each image model's first run
    [ "$name-$run" = "$first-${runs[0]}" ] && methods="litelvlm fastv vitcop ipcv" runs_budgets="$budgets 64"
    case "$name" in sa2va*|unipixel*) [ "$run" = "${runs[0]}" ] && methods="litelvlm ipcv" ;; esac
    step "validate-$name-$run" "$PY -m litelvlm.cli validate --model $model $([ "$name" = "$first" ] && echo "$tok")\
$input --device $DEVICE --attn $attn --methods $methods --budgets $runs_budgets --repeats $REPEATS \
${enc:+$(encoders "$enc")}--prefill $prefill $extra--matmul-tflops \$(cat '$OUT/rate.txt' 2>/dev/null || echo measure) \
--out '$OUT/validate/$name-$run'"
  done
  # where the first model's call spends its time: one warmed call profiled on the official and the default paths
  [ "$name" = "$first" ] && step "profile-$first" "$PY '$ROOT/benchmarks/profile_call.py' \
$([ "$DRY" = 1 ] && echo "--dry-run" || echo "--model $model $tok--device $DEVICE") \
--refer-dir '$DATA/coco128_refer' --out '$OUT/profile'"
  # then the gpu-marked tests (tiny models; on a CPU they skip, named), every test file that holds one: the
  # exactness proofs on CUDA, which a short lease must not lose to the later timings
  [ "$name" = "$first" ] && gpu_tests
  [ "$name" = "$first" ] || drop "$name"
done
# the grounding throughput per batch size at the default prefill (GLaMM-7B, whose checkpoint is still cached)
step "throughput-$first" "$PY '$ROOT/benchmarks/bench_throughput.py' --models ${MODELS[0]} $tok--device $DEVICE \
--methods none litelvlm ${THROUGHPUT[*]} --refer-dir '$DATA/coco128_refer' --out '$OUT/throughput/$first'"
# what eval-grounding's loader buys: each image's pixels made ahead on worker threads, against in turn
step "overlap-$first" "$PY '$ROOT/benchmarks/bench_prepare_overlap.py' \
$([ "$DRY" = 1 ] && echo "--dry-run" || echo "--model ${MODELS[0]} $tok--device $DEVICE --images 16") \
--refer-dir '$DATA/coco128_refer' --out '$OUT/overlap/$first'"
drop "$first"
# GLaMM-7B's decoder stack alone: attention kernel x prefill path at 713/329/201 tokens beside its roofline
step fused-prefill "$PY '$ROOT/benchmarks/bench_fused_prefill.py' ${BENCH[*]} --out '$OUT/fused_prefill'"
# the validate runs' tables: efficiency, and the time by stage with each run against Amdahl's bound (CPU, seconds)
step tables "$PY -m litelvlm.cli tables --results '$OUT/validate' --out '$OUT/tables'"
step summary "$PY '$ROOT/benchmarks/gpu_check.py' summary '$OUT'"

if [ "$PRINT" = 1 ]; then
  for ((i = 0; i < ${#STEPS[@]}; i += 2)); do printf '%s: %s\n' "${STEPS[i]}" "${STEPS[i+1]}"; done
  exit 0
fi

mkdir -p "$OUT"
SITE="$(mktemp -d)"
trap 'rm -rf "$SITE"' EXIT
if [ "$DRY" != 1 ] && compgen -G "$WHEELS/*.whl" > /dev/null; then   # THERE: the carried wheels, one by one
  for whl in "$WHEELS"/*.whl; do
    "$PY" -m pip install --no-index --no-deps --quiet --target "$SITE" "$whl" >> "$OUT/wheels.log" 2>&1 \
      || echo "wheel not installed: $(basename "$whl") (wheels.log)" | tee -a "$OUT/steps.log"
  done
fi
# the studies' commands are entry points: a folder without litelvlm's dist-info (a checkout) gets one in the site
compgen -G "$ROOT/litelvlm-*.dist-info" > /dev/null \
  || "$PY" "$ROOT/benchmarks/gpu_check_prepare.py" dist-info "$SITE" >> "$OUT/wheels.log" 2>&1
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
# PYTHONSAFEPATH: `python -m` runs this folder's code (on PYTHONPATH), never a litelvlm in the working directory
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg LITELVLM_SHARED_DATA="$DATA" PYTHONSAFEPATH=1
echo "benchmarks/gpu_check.sh $([ "$DRY" = 1 ] && echo '--dry-run ')--out $OUT" > "$OUT/command.txt"
PACK="${PACK:-$OUT.tar.gz}"
pack() { tar czf "$PACK.part" -C "$(dirname "$OUT")" "$(basename "$OUT")" 2>/dev/null && mv "$PACK.part" "$PACK"; }
start=$(date +%s)
echo "start $start $(date -u +%FT%TZ)" >> "$OUT/steps.log"
failed=0
last=$((${#STEPS[@]} - 2))   # the summary, run after the others whatever the deadline
for ((i = 0; i < last; i += 2)); do
  name="${STEPS[i]}"
  # ONLY (an extended regular expression): the steps to run when device time is short; the rest are named
  if [ -n "${ONLY:-}" ] && ! [[ "$name" =~ $ONLY ]]; then
    echo "$name not run: not in ONLY=$ONLY" | tee -a "$OUT/steps.log"
    continue
  fi
  t0=$(date +%s)
  left=$((DEADLINE_S - (t0 - start)))
  limit=$((left < STEP_LIMIT_S ? left : STEP_LIMIT_S))
  if [ "$limit" -lt 20 ]; then
    echo "$name skipped: ${left} s left of DEADLINE_S=$DEADLINE_S" | tee -a "$OUT/steps.log"
    failed=$((failed + 1))
    continue
  fi
  echo "== $name (limit $limit s)" | tee -a "$OUT/steps.log"
  timeout "$limit" bash -c "${STEPS[i+1]}" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "$name rc=$rc $(( $(date +%s) - t0 )) s" | tee -a "$OUT/steps.log"
  # pytest's exit 5, or its "no tests ran": a test step that tested nothing fails
  if [[ "${STEPS[i+1]}" == *pytest* ]] && { [ $rc -eq 5 ] || grep -q "no tests ran" "$OUT/$name.log"; }; then
    echo "$name ran no test" | tee -a "$OUT/steps.log"
    rc=5
  fi
  [ $rc -eq 0 ] || failed=$((failed + 1))
  tail -n 3 "$OUT/$name.log"
  pack
done
t0=$(date +%s)
timeout 60 bash -c "${STEPS[last+1]}" > "$OUT/summary.log" 2>&1
rc=$?
echo "summary rc=$rc $(( $(date +%s) - t0 )) s" | tee -a "$OUT/steps.log"
[ $rc -eq 0 ] || failed=$((failed + 1))
end=$(date +%s)
echo "end $end $(date -u +%FT%TZ): $((end - start)) s" | tee -a "$OUT/steps.log"
cat "$OUT/summary.md" 2>/dev/null || tail -n 3 "$OUT/summary.log"
pack
echo "$failed step(s) failed or skipped; results in $OUT (packed: $PACK)"
[ $failed -eq 0 ]
