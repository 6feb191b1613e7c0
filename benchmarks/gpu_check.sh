#!/usr/bin/env bash
# The GPU check (random weights of the real architectures, bf16): the card's bf16 matmul rate and copy bandwidth
# (the roofline's two rates); the gpu-marked tests (their log: what the captured default rests on); per model
# (GLaMM-7B, Sa2VA-3B, UniPixel-3B, VideoGLaMM) validate's tables with the time by stage (stages.csv) at the
# official eager attention and at SDPA under the default fused captured prefill (and the official eager prefill
# for GLaMM-7B), none against LiteLVLM and FastV at 576/192/64 (VideoGLaMM per frame 576/196/64 with
# --arrangement pool-min, so pruning shortens its prompt), each row beside its roofline; GLaMM-7B's decoder stack
# alone per attention kernel (eager, sdpa, flash) and prefill path (benchmarks/bench_fused_prefill.py); the
# grounding throughput at batch sizes 1/8/32 at the default prefill. Every model's lm.config._attn_implementation
# is recorded in its config.json. Built to end inside 8 minutes on a fresh single-GPU machine with no network.
# docs/validate.md ("The GPU check") says what it must show; env.txt and summary.md name the card (the CPU on a dry
# run) it ran on.
#
#   benchmarks/gpu_check.sh --prepare            # HERE (PyPI reachable): the missing wheels into .whl/ (ignored)
#   benchmarks/gpu_check.sh --out results/gpu_check/<card>   # THERE: the check (installs .whl/ into a scratch site)
#   benchmarks/gpu_check.sh --dry-run --out /tmp/gc          # the whole flow on a CPU, tiny random presets
#   benchmarks/gpu_check.sh --print-steps [--dry-run]        # the steps' commands, nothing run
#
# Every step writes into the one results folder (--out) and the folder is packed into <out>.tar.gz after each step,
# so a step that runs out of time loses nothing before it; each step has its own time limit (STEP_LIMIT_S, seconds),
# cut to what is left of the whole check's (DEADLINE_S, seconds from the start; a step with under 20 s left is
# skipped and logged); ONLY (a regular expression of step names) runs those alone, naming the others in steps.log
# (for a short lease); PACK names the archive (default <out>.tar.gz). The last step writes summary.md / summary.csv
# (benchmarks/gpu_check.py summary): per model, attention and prefill the times, the roofline, the ratios to it,
# the speed-ups over none beside the roofline's, the stages' end-to-end ratio, and every target MET or MISSED.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
MODE=check
OUT=""
STEP_LIMIT_S="${STEP_LIMIT_S:-150}"
DEADLINE_S="${DEADLINE_S:-480}"
WHEELS="$ROOT/.whl"
# the packages a fresh GPU image lacked (/work notes: torch, numpy, pandas, ... were there); the project's own wheel
# is built without the toy model's weights (the full-size random presets do not need them)
MISSING=("transformers==5.24.0" "open_clip_torch" "captum" "pycocotools" "ftfy" "wcwidth" "bitsandbytes")
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)

usage() { sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) MODE=prepare ;;
    --dry-run) DRY=1 ;;
    --print-steps) PRINT=1 ;;
    --out) OUT="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
DRY="${DRY:-0}"
PRINT="${PRINT:-0}"

if [ "$MODE" = prepare ]; then
  set -e
  mkdir -p "$WHEELS"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  git -C "$ROOT" ls-files -z | grep -zv '^litelvlm/toy/weights/' | (cd "$ROOT" && xargs -0 cp --parents -t "$tmp")
  "$PY" -m pip wheel --no-deps --no-build-isolation -w "$WHEELS" "$tmp"
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 "${PLATFORMS[@]}" -d "$WHEELS" \
    "${MISSING[@]}"
  du -sh "$WHEELS"
  exit 0
fi

if [ "$DRY" = 1 ]; then
  DEVICE=cpu
  MODELS=("tiny-random:0" "unipixel-tiny-random:0" "sa2va-tiny-random:0" "videoglamm-tiny-random:0")
  BUDGETS=(64)
  VIDEO_BUDGETS=(64)
  REPEATS=1
  FUSED=(--capture fused-eager)   # traced and replayed by dynamo: no code generation on a CPU
  THROUGHPUT=(--batch-sizes 1 2 --budgets 64 --repeats 1 --memory-limit-gib 1)
  BENCH=(--dry-run)
  WORKERS=1
else
  DEVICE=cuda
  MODELS=("glamm-7b-random" "sa2va-qwen2_5-vl-3b-random" "unipixel-3b-random" "videoglamm-random")
  BUDGETS=(576 192 64)
  VIDEO_BUDGETS=(576 196 64)   # per frame, counted on a frame's 576 CLIP tokens as the paper does
  REPEATS=3
  FUSED=()
  THROUGHPUT=(--batch-sizes 1 8 32 --budgets 192 64 --repeats 1 --memory-limit-gib 60)
  BENCH=(--device cuda --repeats 10)
  WORKERS=3
fi
OUT="${OUT:-$ROOT/results/gpu_check/$([ "$DRY" = 1 ] && echo dry-run || echo run)}"
DATA="${LITELVLM_SHARED_DATA:-$ROOT/../shared/data}"
[ -d "$DATA" ] || DATA="$ROOT/shared/data"   # a device machine: shared/ travels inside the working tree

# the steps: name, then the command (one string each; run with bash -c)
STEPS=()
step() { STEPS+=("$1" "$2"); }
step env "(nvidia-smi || true; df -h / /tmp /dev/shm \"\${LITELVLM_CACHE:-\$HOME}\" || true; $PY '$ROOT/benchmarks/gpu_check.py' env) > '$OUT/env.txt' 2>&1; rc=\$?; \
cat '$OUT/env.txt'; exit \$rc"
step rates "$PY '$ROOT/benchmarks/gpu_check.py' matmul '$OUT' $DEVICE"
# the gpu-marked tests (tiny models; on a CPU they skip, named): their log is the record the captured default
# rests on
step gpu-tests "cd '$ROOT' && $PY -m pytest -p no:cacheprovider -m gpu -q -rA -n $WORKERS \
tests/litelvlm/llm/test_compiled_prefill.py tests/analysis/test_validate.py tests/analysis/test_validate_prefill.py \
tests/litelvlm/test_quantize.py"
# per model: (attention kernel, prefill) pairs; the official eager/eager beside the default fused capture at
# the official eager attention and at SDPA
for model in "${MODELS[@]}"; do
  name="${model%%:*}"
  tok=""
  input="--refer-dir '$DATA/coco128_refer'"
  budgets="${BUDGETS[*]}"
  case "$model" in
    glamm-7b-random) tok="--tokenizer '$DATA/glamm_refseg_tokenizer'" ;;
    # a video model: validate's synthetic clip; pool-min (this project's reading) makes per-frame pruning
    # shorten the LLM's prompt (the official pool keeps 144 tokens a frame whatever K is)
    videoglamm*) input="--arrangement pool-min"; budgets="${VIDEO_BUDGETS[*]}" ;;
  esac
  runs=("eager-captured" "sdpa-captured")
  # the official eager prefill beside them for GLaMM-7B (the other models' eager rows: the earlier check)
  [ "$model" = "${MODELS[0]}" ] && runs=("eager-eager" "${runs[@]}")
  for run in "${runs[@]}"; do
    attn="${run%%-*}"
    prefill="${run#*-}"
    extra=""
    [ "$prefill" = captured ] && extra="${FUSED[*]:-}"
    step "validate-$name-$run" "$PY -m litelvlm.cli validate --model $model $tok $input \
--device $DEVICE --attn $attn --methods litelvlm fastv --budgets $budgets --repeats $REPEATS --prefill $prefill \
$extra --matmul-tflops \$(cat '$OUT/rate.txt' 2>/dev/null || echo measure) --out '$OUT/validate/$name-$run'"
  done
  # a full-size random model's cached checkpoint (7-16 GB) goes once its last step is done: the disk of a fresh
  # GPU machine holds about two of them
  [ "$DRY" = 1 ] || step "drop-$name" "rm -rf \"\${LITELVLM_CACHE:-\$HOME/.cache/litelvlm}/random-models/\
${name%%-*}-\"*-fast; df -h \"\${LITELVLM_CACHE:-\$HOME/.cache/litelvlm}\" | tail -1"
done
# GLaMM-7B's decoder stack alone: attention kernel x prefill path at 713/329/201 tokens beside its roofline
step fused-prefill "$PY '$ROOT/benchmarks/bench_fused_prefill.py' ${BENCH[*]} --out '$OUT/fused_prefill'"
# the grounding throughput per batch size at the default prefill (the first model only: the time is short)
model="${MODELS[0]}"
name="${model%%:*}"
tok=""
[ "$model" = glamm-7b-random ] && tok="--tokenizer '$DATA/glamm_refseg_tokenizer'"
step "throughput-$name" "$PY '$ROOT/benchmarks/bench_throughput.py' --models $model $tok --device $DEVICE \
--methods none litelvlm fastv ${THROUGHPUT[*]} --refer-dir '$DATA/coco128_refer' --out '$OUT/throughput/$name'"
step summary "$PY '$ROOT/benchmarks/gpu_check.py' summary '$OUT'"

if [ "$PRINT" = 1 ]; then
  for ((i = 0; i < ${#STEPS[@]}; i += 2)); do printf '%s: %s\n' "${STEPS[i]}" "${STEPS[i+1]}"; done
  exit 0
fi

mkdir -p "$OUT"
if [ -d "$WHEELS" ] && [ "$DRY" != 1 ]; then   # THERE: the carried wheels into a scratch site
  SITE="$(mktemp -d)"
  "$PY" -m pip install --no-index --no-deps --quiet --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg LITELVLM_SHARED_DATA="$DATA"
cmdline="benchmarks/gpu_check.sh $([ "$DRY" = 1 ] && echo '--dry-run ')--out $OUT"
echo "$cmdline" > "$OUT/command.txt"
PACK="${PACK:-$OUT.tar.gz}"
pack() { tar czf "$PACK.part" -C "$(dirname "$OUT")" "$(basename "$OUT")" 2>/dev/null && mv "$PACK.part" "$PACK"; }
start=$(date +%s)
failed=0
for ((i = 0; i < ${#STEPS[@]}; i += 2)); do
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
  [ $rc -eq 0 ] || failed=$((failed + 1))
  tail -n 3 "$OUT/$name.log"
  pack
done
pack
echo "$failed step(s) failed or skipped; results in $OUT (packed: $PACK)"
[ $failed -eq 0 ]
