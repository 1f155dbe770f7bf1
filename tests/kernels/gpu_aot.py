"""Compile spikeflow's triton kernels ahead of time for an NVIDIA target, with no GPU present (triton ships
its own ptxas): ``python tests/kernels/gpu_aot.py [ARCH]`` prints one JSON line, per kernel variant the
stages it reached and whether its PTX uses TF32. Run with ``TRITON_INTERPRET`` unset (the interpreter's
kernels cannot be compiled); tests/kernels/test_gpu_compile.py runs it."""

from __future__ import annotations

import json
import os
import sys

os.environ.pop("TRITON_INTERPRET", None)

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from spikeflow.kernels import gpu, gpu_linear_lif, gpu_pool_lif  # noqa: E402

INTS = {"n", "n_steps", "n_batch", "n_in", "n_out", "n_pooled", "height", "width_q", "rows_out", "cols_q", "q"}
BLOCKS = dict(BLOCK_B=16, BLOCK_O=64, BLOCK_K=32)
# one variant per kernel, every kind of constexpr branch somewhere (the interpreter tests cover them all)
VARIANTS = [
    ("linear_lif.forward", gpu_linear_lif._forward, dict(RESET=1, STORE_H=True, **BLOCKS)),
    ("linear_lif.backward", gpu_linear_lif._backward,
     dict(RESET=0, DETACH=False, SG=0, NEED_PARAMS=True, **BLOCKS)),
    ("pool_lif.forward", gpu_pool_lif._forward, dict(RESET=2, STORE_H=True, K=2, KP=4, BLOCK=64)),
    ("pool_lif.backward", gpu_pool_lif._backward, dict(RESET=1, DETACH=True, SG=1, K=3, KP=16, BLOCK=64)),
    ("lif.forward", gpu._forward, dict(RESET=0, TRACE=True, BLOCK_N=256)),
    ("lif.backward", gpu._backward, dict(RESET=1, DETACH=False, SG=3, HAS_G_TRACE=True, BLOCK_N=256)),
]


def compile_variant(fn, consts, arch: int) -> dict:
    sig = {}
    for name in fn.arg_names:
        sig[name] = "constexpr" if name in consts else ("*fp32" if name.endswith("_ptr") else
                                                        "i32" if name in INTS else "fp32")
    kernel = triton.compile(ASTSource(fn, sig, consts), target=GPUTarget("cuda", arch, 32))
    ptx = kernel.asm.get("ptx", "")
    return dict(stages=sorted(kernel.asm), tf32="tf32" in ptx, cubin_bytes=len(kernel.asm.get("cubin", b"")))


if __name__ == "__main__":
    arch = int(sys.argv[1]) if len(sys.argv) > 1 else 90
    print(json.dumps({name: compile_variant(fn, consts, arch) for name, fn, consts in VARIANTS}))
