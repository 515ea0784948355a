#!/usr/bin/env bash
# Every GPU figure the project needs, in one run on one CUDA GPU, from a fresh clone:
#
#   bash benchmarks/gpu_suite.sh              # install (pip install -r requirements.txt), then measure
#   bash benchmarks/gpu_suite.sh --no-install # use the python on PATH as it is
#   bash benchmarks/gpu_suite.sh --dry-run    # the same steps at tiny sizes on the CPU (CI runs it; < 1 min)
#
# Steps, each timed, each printing its own figures with device and versions:
#   1. install           a venv that keeps the machine's own torch build, plus requirements.txt
#   2. bench_fit         fit vs a DataLoader loop, s/epoch on the GPU (goal: >= 30x)
#   3. protocol          the 400-epoch `full` protocol for vae-z10 and mog-z10-m1000 (goal: < 60 s each)
#   4. bench_mog_cost    the MoG/VAE epoch-time ratio on the GPU (goal: <= 1.15)
#   5. iw                IW k = 5000 on all 10,000 test images for both trained models (their test NLL)
#   6. bench_iw          batched IW throughput against a per-image loop (k = 5000, 1000 images)
#   7. chapter           one chapter executed in the `full` profile (default book/01_vae.ipynb),
#                        reusing the runs of step 3 (so of its models it trains vae-z2 only)
# It exits non-zero if CUDA is absent (except with --dry-run) or if any step fails. The whole
# output is also written to $OUT_DIR/gpu_suite.log (default: a new folder under /tmp), ready
# to be pasted into benchmarks/RESULTS.md. Budget: under 8 minutes on one H100-class GPU.
# Environment: CHAPTER=book/NN_name.ipynb picks the chapter; OUT_DIR the output folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DRY_RUN=0
INSTALL=1
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1; INSTALL=0 ;;
        --no-install) INSTALL=0 ;;
        --install) INSTALL=1 ;;
        -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done

OUT_DIR="${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/vaelib-gpu-suite.XXXXXX")}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_suite.log"
exec > >(tee "$LOG") 2>&1

if [ "$DRY_RUN" = 1 ]; then
    DEVICE=cpu
    PROFILE=smoke
    CHAPTER="${CHAPTER:-book/04_kl_approximation.ipynb}"
    FIT_ARGS=(--images 1000 --epochs 1 --rounds 1)
    MOG_ARGS=(--images 1000 --epochs 1 --rounds 1)
    IW_K=20; IW_IMAGES=50
    BENCH_IW_ARGS=(--k 20 --images 50 --loop-images 4 --rounds 1)
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
else
    DEVICE=cuda
    PROFILE=full
    CHAPTER="${CHAPTER:-book/01_vae.ipynb}"
    FIT_ARGS=(--images 50000 --epochs 3 --rounds 2)
    MOG_ARGS=(--images 50000 --epochs 2 --rounds 2)
    IW_K=5000; IW_IMAGES=10000
    BENCH_IW_ARGS=(--k 5000 --images 1000 --loop-images 20 --rounds 1)
    if ! command -v nvidia-smi >/dev/null 2>&1 && ! ls /dev/nvidia0 >/dev/null 2>&1; then
        echo "error: no NVIDIA GPU or driver is visible here (no nvidia-smi, no /dev/nvidia0); this suite needs one" \
             "CUDA GPU. Use --dry-run to check the script on a CPU." >&2
        exit 3
    fi
fi

RUNS="$OUT_DIR/cache"  # VAELIB_CACHE of every step: the chapter reuses what the protocol step trained
export VAELIB_CACHE="$RUNS"
export VAELIB_PROFILE="$PROFILE"
export VAELIB_DATA="${VAELIB_DATA:-$HOME/.cache/vaelib/data}"
export MPLBACKEND=Agg
export PYTHONUNBUFFERED=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

SUMMARY=()
suite_started=$SECONDS
step() {  # step NAME COMMAND...: run, time, record
    local name=$1
    shift
    echo
    echo "== $name =="
    local began=$SECONDS
    "$@" 2>&1 | tee "$OUT_DIR/step-$name.log"
    SUMMARY+=("$(printf '%-16s %5d s' "$name" $((SECONDS - began)))")
}

install() {
    python3 -m venv --system-site-packages "$OUT_DIR/venv"  # keeps a torch the machine already has
    "$OUT_DIR/venv/bin/python" -m pip install -q -r requirements.txt
}
PY=python
if [ "$INSTALL" = 1 ]; then
    step install install
    PY="$OUT_DIR/venv/bin/python"
    export PATH="$OUT_DIR/venv/bin:$PATH"
fi
export JUPYTER_DATA_DIR="$OUT_DIR/jupyter-data"  # no kernelspec left on the machine can shadow this python's

echo
echo "== environment =="
echo "date:    $(date -u +%FT%TZ)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (with uncommitted changes)')"
echo "mode:    $([ "$DRY_RUN" = 1 ] && echo 'dry run: tiny sizes on the CPU, smoke profile; the figures mean nothing' || echo "full sizes on $DEVICE, $PROFILE profile")"
"$PY" - "$DEVICE" <<'EOF'
import os, platform, sys
import torch
import vaelib
device = sys.argv[1]
print(f"python:  {platform.python_version()} ({sys.executable})")
print(f"torch:   {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
print(f"vaelib:  {vaelib.__version__} from {os.path.dirname(vaelib.__file__)}")
print(f"cpu:     {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs")
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"gpu {i}:   {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}")
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("error: PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False); install a CUDA build of "
             "torch, or use --dry-run to check the script on a CPU")
EOF
if [ "$DRY_RUN" = 0 ] && command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader | sed 's/^/driver:  /'
fi

step bench_fit "$PY" benchmarks/bench_fit.py --device "$DEVICE" "${FIT_ARGS[@]}"

protocol() {
    local name
    for name in vae-z10 mog-z10-m1000; do
        echo "-- train $name ($PROFILE profile, $DEVICE)"
        "$PY" -m vaelib train "$name" --profile "$PROFILE" --device "$DEVICE" --out "$RUNS/$PROFILE" \
            > "$OUT_DIR/train-$name.json"
        "$PY" - "$OUT_DIR/train-$name.json" "$name" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}: {m['epochs']} epochs in {m['train_seconds']:.1f} s of training ({m['wall_seconds']:.1f} s wall, "
      f"{m['train_seconds'] / m['epochs'] * 1000:.0f} ms per epoch); test -ELBO during training "
      f"{m['test_neg_elbo_during_training']:.2f}; device {m['train']['device']}; goal < 60 s, aiming at 20 s")
EOF
    done
}
step protocol protocol

step bench_mog_cost "$PY" benchmarks/bench_mog_cost.py --device "$DEVICE" --skip-memory --skip-wall "${MOG_ARGS[@]}"

iw() {
    local name
    for name in vae-z10 mog-z10-m1000; do
        echo "-- evaluate $name: IW k = $IW_K on $IW_IMAGES test images"
        "$PY" -m vaelib evaluate "$name" --profile "$PROFILE" --device "$DEVICE" --out "$RUNS/$PROFILE" \
            --iw-samples "$IW_K" --images "$IW_IMAGES" --quiet > "$OUT_DIR/evaluate-$name.json"
        "$PY" - "$OUT_DIR/evaluate-$name.json" "$name" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
se = m["test_nll_stderr"]
print(f"{sys.argv[2]}: test NLL {m['test_nll']:.2f}" + (f" ± {se:.2f}" if se is not None else "")
      + f" nats (k = {m['iw_samples']}, {m['iw_images']} images), test -ELBO {m['test_neg_elbo']:.2f}, "
      f"active units {m['active_units']}; evaluation {m['evaluate_seconds']:.1f} s on {m['evaluate']['device']}")
EOF
    done
}
step iw iw

step bench_iw "$PY" benchmarks/bench_iw.py --device "$DEVICE" "${BENCH_IW_ARGS[@]}"

chapter() {
    echo "-- $CHAPTER in the $PROFILE profile on $DEVICE (VAELIB_CACHE=$RUNS: runs of the protocol step are reused)"
    "$PY" - "$CHAPTER" <<'EOF'
import sys, time
import nbformat
from nbclient import NotebookClient
sys.path.insert(0, "book/_ext")
from kernel_encryption import enable_transport_encryption  # the book build's setting: no TCP warning
enable_transport_encryption()
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
began = time.perf_counter()
NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": "book"}}).execute()
print(f"{path}: executed in {time.perf_counter() - began:.1f} s wall ({len(nb.cells)} cells)")
EOF
}
step chapter chapter

echo
echo "== summary ($([ "$DRY_RUN" = 1 ] && echo 'dry run' || echo "$DEVICE, $PROFILE profile")) =="
for line in "${SUMMARY[@]}"; do
    echo "  $line"
done
echo "  total            $((SECONDS - suite_started)) s"
figures() {  # figures STEP PATTERN: the lines of a step's output that carry its result
    grep -h -E "$2" "$OUT_DIR/step-$1.log" | sed "s/^/  $1: /" || true
}
figures bench_fit "epoch time = "
figures protocol " epochs in "
figures bench_mog_cost "^(cpu|cuda) +[0-9]"
figures iw "test NLL"
figures bench_iw "^(cpu|cuda) .*loop\)$"
figures chapter "executed in"
echo "log: $LOG"
