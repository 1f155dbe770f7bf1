"""Counter-based random numbers: a value is a pure function of (seed, stream, i, j).

Every random draw in a simulation (connectivity, initial state, Poisson input) is keyed
by global neuron indices, so the same seed gives the same network and spike trains no
matter how many threads or processes share the work. The mixer is SplitMix64
(Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0

# Stream tags (keep distinct per use).
STREAM_CONNECT = 1
STREAM_INIT = 2
STREAM_POISSON = 3


@nb.njit(inline="always")
def mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@nb.njit(inline="always")
def key(seed, stream, i, j):
    """A 64-bit state for (seed, stream, i, j); all arguments are non-negative ints."""
    z = mix64(np.uint64(seed) * _GOLDEN + np.uint64(stream))
    z = mix64(z + np.uint64(i) * _GOLDEN)
    return mix64(z + np.uint64(j) * _GOLDEN)


@nb.njit(inline="always")
def uniform(k, counter):
    """Uniform in [0, 1) from key ``k`` and a counter (53 random bits)."""
    z = mix64(k + np.uint64(counter + 1) * _GOLDEN)
    return float(z >> _S11) * _INV53


@nb.njit(cache=True)
def uniform_array(seed, stream, start, n, j):
    """``n`` uniforms for indices ``start .. start+n-1`` (one draw each, column ``j``)."""
    out = np.empty(n, np.float64)
    for a in range(n):
        out[a] = uniform(key(seed, stream, start + a, j), 0)
    return out


@nb.njit(cache=True)
def uniform_at(seed, stream, i, j, counter=0):
    """The uniform draw ``counter`` of (seed, stream, i, j), callable from Python."""
    return uniform(key(seed, stream, i, j), counter)
