"""The events carry the class: logistic regression on event counts (slow: builds the datasets)."""

import numpy as np
import pytest

from spikeflow.data import load_dataset


def _features(x):
    return np.log1p(x.reshape(len(x), -1).numpy().astype(np.float32))


def _fit_score(tr, te, C):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    (x, y), (xt, yt) = tr.as_tensors(), te.as_tensors()
    scaler = StandardScaler().fit(_features(x))
    with threadpool_limits(1):
        clf = LogisticRegression(max_iter=300, C=C).fit(scaler.transform(_features(x)), y.numpy())
    return clf.score(scaler.transform(_features(xt)), yt.numpy())


@pytest.mark.slow
def test_nmnist5k_logistic_regression_at_least_90_percent():
    acc = _fit_score(load_dataset("nmnist5k", "train", T=3), load_dataset("nmnist5k", "test", T=3), C=0.01)
    print(f"nmnist5k logistic regression (T=3 count frames) test accuracy: {acc:.4f}")
    assert acc >= 0.90


@pytest.mark.slow
def test_spoken_digits_unseen_voices_at_least_80_percent():
    tr, te = load_dataset("spoken-digits", "train", T=10), load_dataset("spoken-digits", "test", T=10)
    base_tr = {v.decode().split("+")[0] for v in tr.bundle.attrs["voices"].tolist()}
    base_te = {v.decode().split("+")[0] for v in te.bundle.attrs["voices"].tolist()}
    assert base_te and not base_tr & base_te         # test speakers (base voices, every variant) are unseen
    acc = _fit_score(tr, te, C=0.1)
    print(f"spoken-digits logistic regression (T=10 count bins, unseen speakers) test accuracy: {acc:.4f}")
    assert acc >= 0.80
