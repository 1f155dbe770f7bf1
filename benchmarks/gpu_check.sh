#!/usr/bin/env bash
# spikeflow on an NVIDIA GPU, in one go (about 10 minutes at most):
#   1. a venv with the 'gpu' extra (triton) and a CUDA torch: $GPU_PYTHON if set, else benchmarks/.venv-gpu
#      (created here when missing: that needs the package registry);
#   2. the GPU kernel tests compiled for the GPU (no interpreter): tests/kernels/test_gpu*.py;
#   3. W1-W4 on the GPU for spikeflow (fused and unfused), SpikingJelly (its CUDA/triton kernels) and, where
#      $SPYX_GPU_PYTHON names a venv with spyx and a CUDA JAX, spyx: benchmarks/gpu_bench.py, which writes
#      benchmarks/results/gpu.json.
#
#   bash benchmarks/gpu_check.sh            # everything
#   GPU_CHECK_SKIP_TESTS=1 bash benchmarks/gpu_check.sh   # the benchmark only
#
# Without a GPU it stops at once with one line saying so.
set -euo pipefail

cd "$(dirname "$0")/.."
START=$SECONDS
VENV=benchmarks/.venv-gpu
TORCH_PIN="torch==2.13.0"            # the CUDA build from the registry; it pins its own triton
PEER_PINS="spikingjelly==2.0.0"

say() { echo "gpu_check: $*"; }

if [ -n "${GPU_PYTHON:-}" ]; then
    PY=$GPU_PYTHON
elif [ -x "$VENV/bin/python" ] && [ -f "$VENV/.installed" ]; then
    PY=$VENV/bin/python
else
    say "creating $VENV (torch with CUDA, spikeflow[gpu,dev], $PEER_PINS)"
    python3 -m venv "$VENV"
    # no PIP_CONSTRAINT from the CPU venvs here: this torch is the CUDA build
    env -u PIP_CONSTRAINT timeout 420 "$VENV/bin/python" -m pip install -q "$TORCH_PIN" -e ".[gpu,dev]" $PEER_PINS
    touch "$VENV/.installed"
    PY=$VENV/bin/python
fi

"$PY" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA GPU here; run this on a machine with an NVIDIA GPU")
import triton
print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, triton {triton.__version__}")
EOF

export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET  # the compiled kernels, not the interpreter

if [ -z "${GPU_CHECK_SKIP_TESTS:-}" ]; then
    say "GPU kernel tests (compiled for the GPU)"
    timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m interop \
        tests/kernels/test_gpu.py tests/kernels/test_gpu_linear_lif.py tests/kernels/test_gpu_pool_lif.py
fi

LEFT=$(( 570 - (SECONDS - START) ))
if [ "$LEFT" -lt 60 ]; then LEFT=60; fi
say "W1-W4 on the GPU (${LEFT} s left)"
SPYX_ARGS=()
if [ -n "${SPYX_GPU_PYTHON:-}" ]; then
    SPYX_ARGS=(--spyx-python "$SPYX_GPU_PYTHON")
fi
timeout $(( LEFT + 20 )) "$PY" benchmarks/gpu_bench.py --device cuda --budget-s "$LEFT" ${SPYX_ARGS[@]+"${SPYX_ARGS[@]}"} \
    --out benchmarks/results/gpu.json
say "done in $(( SECONDS - START )) s"
