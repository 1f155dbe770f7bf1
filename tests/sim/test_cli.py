"""``spikeflow sim cuba``: output and its agreement with the library."""

import json

from spikeflow import cli
from spikeflow.sim import cuba


def test_cli_cuba_json_matches_library(capsys, tmp_path):
    out = tmp_path / "spikes.npz"
    rc = cli.main(["sim", "cuba", "--neurons", "800", "--duration", "0.1", "--seed", "4", "--json", "--no-progress",
                   "--out", str(out)])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    lib = cuba.run(800, seed=4, duration=0.1)
    assert res["spikes"] == lib["spikes"] and res["synapses_rank0"] == lib["synapses"]
    assert res["peak_rss_gb"] > 0 and res["loop_s"] >= 0
    import numpy as np

    z = np.load(out)
    assert z["indices"].size == lib["spikes"]
