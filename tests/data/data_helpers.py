import numpy as np

from spikeflow.data.events import Events


def random_events(n=500, size=(34, 34, 2), t_max=300_000, seed=0, label=None):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_max, n))
    return Events.from_arrays(rng.integers(0, size[0], n), rng.integers(0, size[1], n), t,
                              rng.integers(0, size[2], n), size, label)
