#!/usr/bin/env bash
# spikeflow on an NVIDIA GPU, in one go (under 10 minutes once the venvs exist; creating them needs the
# package registry and comes on top):
#   1. a venv with the 'gpu' extra (triton) and a CUDA torch: $GPU_PYTHON if set, else benchmarks/.venv-gpu
#      (created when missing), and spyx with a CUDA JAX: $SPYX_GPU_PYTHON, else benchmarks/.venv-spyx-gpu
#      (created when missing; best effort);
#   2. the GPU kernel tests compiled for the GPU (no interpreter): tests/kernels/test_gpu*.py;
#   3. W1-W4 on the GPU for spikeflow (fused and unfused), SpikingJelly (its CUDA/triton kernels) and spyx:
#      benchmarks/gpu_bench.py, which writes benchmarks/results/gpu.json.
#
#   bash benchmarks/gpu_check.sh                          # everything
#   GPU_CHECK_SKIP_TESTS=1 bash benchmarks/gpu_check.sh   # the benchmark only
#
# Without a GPU it stops at once, installing nothing, with one line saying so.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=benchmarks/.venv-gpu
TORCH_PIN="torch==2.13.0"  # the CUDA build from the registry; it pins its own triton
PEER_PINS="spikingjelly==2.0.0"
SPYX_VENV=benchmarks/.venv-spyx-gpu
# the versions of the CPU benchmark's spyx venv (benchmarks/peer_venvs.py), JAX with its CUDA 12 plugin
SPYX_PINS="spyx==1.0.0 jax[cuda12]==0.10.2 flax==0.12.8 optax==0.2.8"

say() { echo "gpu_check: $*"; }

check_cuda() {  # the torch of python $1 sees a GPU, and triton is there
    "$1" -c '
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA GPU here; run this on a machine with an NVIDIA GPU")
import triton
print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, triton {triton.__version__}")
'
}

# 1. the venvs
if [ -n "${GPU_PYTHON:-}" ]; then
    PY=$GPU_PYTHON
    check_cuda "$PY"
else
    if ! nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
        say "nvidia-smi finds no NVIDIA GPU here; run this on a machine with one" >&2
        exit 1
    fi
    PY=$VENV/bin/python
    if [ ! -f "$VENV/.installed" ]; then
        say "creating $VENV (torch with CUDA, spikeflow[gpu,dev], $PEER_PINS)"
        python3 -m venv "$VENV"
        # no PIP_CONSTRAINT from the CPU venvs here: this torch is the CUDA build
        env -u PIP_CONSTRAINT timeout 900 "$PY" -m pip install -q "$TORCH_PIN" -e ".[gpu,dev]" $PEER_PINS
        touch "$VENV/.installed"
    fi
    check_cuda "$PY"
fi
SPYX_PY=${SPYX_GPU_PYTHON:-}
if [ -z "$SPYX_PY" ]; then
    if [ ! -f "$SPYX_VENV/.installed" ]; then
        say "creating $SPYX_VENV ($SPYX_PINS)"
        if python3 -m venv "$SPYX_VENV" && env -u PIP_CONSTRAINT timeout 600 "$SPYX_VENV/bin/python" -m pip \
                install -q $SPYX_PINS; then
            touch "$SPYX_VENV/.installed"
        else
            say "could not install spyx with a CUDA JAX: gpu.json records spyx as not run"
        fi
    fi
    if [ -f "$SPYX_VENV/.installed" ]; then SPYX_PY=$SPYX_VENV/bin/python; fi
fi

START=$SECONDS  # the 10-minute budget: tests and benchmark
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET  # the compiled kernels, not the interpreter

# 2. the GPU kernel tests, compiled for this GPU
if [ -z "${GPU_CHECK_SKIP_TESTS:-}" ]; then
    say "GPU kernel tests (compiled for the GPU)"
    timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m interop \
        tests/kernels/test_gpu.py tests/kernels/test_gpu_linear_lif.py tests/kernels/test_gpu_pool_lif.py
fi

# 3. W1-W4 on the GPU
LEFT=$(( 570 - (SECONDS - START) ))
if [ "$LEFT" -lt 60 ]; then LEFT=60; fi
say "W1-W4 on the GPU (${LEFT} s left)"
timeout $(( LEFT + 20 )) "$PY" benchmarks/gpu_bench.py --device cuda --budget-s "$LEFT" --spyx-python "$SPYX_PY" \
    --out benchmarks/results/gpu.json
say "done in $(( SECONDS - START )) s"
