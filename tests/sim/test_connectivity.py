"""Connectivity rules: counts against their distributions, structure, and partitions."""

import numpy as np
import pytest

from spikeflow.sim import FixedInDegree, FixedOutDegree, FixedProbability, FromArrays, OneToOne


def pairs(indptr, indices, lo=0):
    src = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    return set(zip(src.tolist(), (indices.astype(np.int64) + lo).tolist()))


def test_fixed_probability_counts_follow_the_binomial():
    n_src, n_tgt, p = 2000, 1000, 0.05
    indptr, indices, _ = FixedProbability(p).build(n_src, n_tgt, 0, n_tgt, seed=7)
    assert indices.dtype == np.int32 and indptr.dtype == np.int64
    mean, sd = n_src * n_tgt * p, np.sqrt(n_src * n_tgt * p * (1 - p))
    assert abs(indices.size - mean) < 5 * sd
    rows = np.diff(indptr)  # out-degree ~ Binomial(n_tgt, p)
    assert abs(rows.var() - n_tgt * p * (1 - p)) < 0.15 * n_tgt * p
    indeg = np.bincount(indices, minlength=n_tgt)
    assert abs(indeg.mean() - n_src * p) < 1.0
    for i in range(0, n_src, 97):  # each row sorted and without repeats
        r = indices[indptr[i] : indptr[i + 1]]
        assert np.all(np.diff(r) > 0)


def test_fixed_probability_edges():
    ip, ix, _ = FixedProbability(1.0).build(5, 7, 0, 7, seed=1)
    assert ix.size == 35 and pairs(ip, ix) == {(i, j) for i in range(5) for j in range(7)}
    ip, ix, _ = FixedProbability(0.0).build(5, 7, 0, 7, seed=1)
    assert ix.size == 0 and ip.size == 6


@pytest.mark.parametrize("rule", [FixedProbability(0.1), FixedOutDegree(13), FixedInDegree(11)])
def test_partitioned_builds_equal_the_whole(rule):
    n_src, n_tgt = 300, 250
    whole = pairs(*rule.build(n_src, n_tgt, 0, n_tgt, seed=5)[:2])
    parts = set()
    for lo, hi in ((0, 90), (90, 91), (91, 250)):
        ip, ix, _ = rule.build(n_src, n_tgt, lo, hi, seed=5)
        parts |= pairs(ip, ix, lo)
    assert parts == whole
    assert whole != pairs(*rule.build(n_src, n_tgt, 0, n_tgt, seed=6)[:2])  # the seed matters


def test_fixed_degrees_are_exact_and_distinct():
    ip, ix, _ = FixedOutDegree(40).build(500, 60, 0, 60, seed=2)
    assert np.all(np.diff(ip) == 40)
    for i in range(500):
        assert np.unique(ix[ip[i] : ip[i + 1]]).size == 40
    ip, ix, _ = FixedInDegree(30).build(45, 200, 0, 200, seed=2)  # 2k > n: the Fisher-Yates branch
    src = np.repeat(np.arange(45), np.diff(ip))
    assert np.all(np.bincount(ix, minlength=200) == 30)
    for j in range(200):
        assert np.unique(src[ix == j]).size == 30


def test_one_to_one_and_from_arrays():
    ip, ix, _ = OneToOne().build(10, 10, 3, 8, seed=0)
    assert pairs(ip, ix, 3) == {(i, i) for i in range(3, 8)}
    s = np.array([4, 0, 4, 2, 0, 4])
    t = np.array([1, 2, 0, 2, 2, 3])
    ip, ix, perm = FromArrays(s, t).build(5, 4, 1, 4, seed=0)  # keep targets 1..3
    got = sorted(zip(np.repeat(np.arange(5), np.diff(ip)).tolist(), (ix + 1).tolist(), perm.tolist()))
    want = sorted((int(s[k]), int(t[k]), k) for k in range(6) if 1 <= t[k] < 4)
    assert got == want
