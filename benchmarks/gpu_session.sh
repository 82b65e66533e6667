#!/usr/bin/env bash
# Every GPU measurement the open performance targets need, in one run that fits a short device lease
# (at most 580 s of commands on an H100/H200, under the device tool's 600 s a command; each step has its
# own time limit, so a slow step cannot eat the others). What it measures:
#   1. the CUDA-only unit tests;
#   2. kernels, the weight-free latent at 1024² (target: 0.1 s) and seconds per step against N, with the
#      top-k step at N = 65k beside the exact attention step at N = 4k (target: within 3×);
#   3. the Table-1 setting: exact attention (2 samples per image, the quality reference), then top-k with
#      16 samples through each step together (target: 20 samples per second);
#   4. outputs from 8192² toward a gigapixel under a memory budget, last, each size saved as it finishes
#      (a later command, benchmarks/run.py --device cuda --only scale, can go on to the larger sizes).
# Results go to benchmarks/results/<tag>.{json,md} and the log to gpu_session.log; all are copied into
# $OUT when it is set (the device tool brings back what is there).
#
# ../shared does not travel to a device machine. Copy the images the sections read into an ignored folder
# of the checkout first, carry it, and name it:
#   echo /.device-data/ >> .git/info/exclude
#   mkdir -p .device-data/analogy/style && cp -r ../shared/data/sinddm15 .device-data/ &&
#   cp ../shared/data/analogy/style/furr2_fliped.jpeg .device-data/analogy/style/
#   then, on the device:  bash benchmarks/gpu_session.sh .device-data      (carry: [".device-data"])
# On a CPU, DEVICE=cpu SMOKE=1 bash benchmarks/gpu_session.sh runs the same steps at toy sizes to check it.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=$(realpath "${1:-../shared/data}")
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
RESULTS=benchmarks/results
LOG=${OUT:-$RESULTS}/gpu_session.log
TAG=${TAG:-$( [ "$DEVICE" = cuda ] && echo gpu || echo smoke )}
if [ -n "${SMOKE:-}" ]; then  # toy sizes: one image, few samples, top-k for the reference, no scale section
  IMAGES=1; EXACT=1; BATCH=2; REFERENCE=topk; SECTIONS=kernels,latent; SCALE=""
else
  IMAGES=0; EXACT=2; BATCH=16; REFERENCE=attention; SECTIONS=kernels,latent,scaling; SCALE=1
fi
export PYTHONUNBUFFERED=1

step() {  # step LIMIT_SECONDS COMMAND...: run it under a time limit, log it, go on whatever it returns
  local limit=$1
  shift
  echo "== $(date +%T) $* (limit ${limit} s)" | tee -a "$LOG"
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  echo "== exit ${PIPESTATUS[0]}" | tee -a "$LOG"
}

step 90 "$PY" -m pytest tests -q -p no:cacheprovider -k cuda
step 120 "$PY" benchmarks/run.py --device "$DEVICE" --only "$SECTIONS" --data "$DATA" --tag "$TAG"
step 100 "$PY" benchmarks/run.py --device "$DEVICE" --only table1 --backends "$REFERENCE" --images "$IMAGES" \
  --samples "$EXACT" --batch "$EXACT" --data "$DATA" --tag "${TAG}_table1_exact"
step 120 "$PY" benchmarks/run.py --device "$DEVICE" --only table1 --backends topk --images "$IMAGES" \
  --samples "$BATCH" --batch "$BATCH" --copy-samples 2 --data "$DATA" --tag "${TAG}_table1_batched"
if [ -n "$SCALE" ]; then
  step 150 "$PY" benchmarks/run.py --device "$DEVICE" --only scale --data "$DATA" --tag "${TAG}_scale"
fi
if [ -n "${OUT:-}" ]; then
  cp "$RESULTS/$TAG"*.json "$RESULTS/$TAG"*.md "$OUT"/ 2>/dev/null
fi
echo "results: $(ls "$RESULTS/$TAG"*.md 2>/dev/null | tr '\n' ' ')" | tee -a "$LOG"
