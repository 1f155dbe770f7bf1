"""``spikeflow info``: versions, kernel backends, threads."""

from __future__ import annotations

import importlib
import platform


def register(sub) -> None:
    p = sub.add_parser("info", help="versions of spikeflow's dependencies, kernel backends, threads")
    p.set_defaults(func=run)


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("spikeflow", "torch", "numpy", "numba", "scipy", "nir", "tonic", "h5py", "sklearn", "triton"):
        try:
            out[name] = getattr(importlib.import_module(name), "__version__", "?")
        except ImportError:
            out[name] = "not installed"
    return out


def run(args) -> int:
    import torch

    from spikeflow import kernels

    for name, version in versions().items():
        print(f"{name:10s} {version}")
    backends = kernels.available_backends()
    print("backends   " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in backends.items()))
    print(f"threads    torch={torch.get_num_threads()}")
    print(f"cuda       {'yes: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'}")
    return 0
