"""Checkpoints: round trip, weights-only loading, corruption detection."""

import json

import pytest
import torch

from spikeflow.errors import CheckpointError
from spikeflow.train import checkpoint as ckpt


def _state():
    g = torch.Generator().manual_seed(1)
    return {"model": {"w": torch.randn(4, 3, generator=g), "b": torch.zeros(3)},
            "optimizer": {"state": {0: {"step": torch.tensor(3.0)}},
                          "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99)}]}}


def test_round_trip_and_pruning(tmp_path):
    for step in (5, 10, 15):
        ckpt.write_checkpoint(tmp_path, step, _state(), {"epoch": 1, "note": "x"})
    state, meta = ckpt.read_checkpoint(tmp_path)
    assert meta["step"] == 15 and meta["epoch"] == 1 and meta["file"] == "ckpt-00000015.pt"
    assert torch.equal(state["model"]["w"], _state()["model"]["w"])
    assert state["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.99)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.pt")) == ["ckpt-00000010.pt", "ckpt-00000015.pt"]
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_corrupted_checkpoint_gives_checkpoint_error(tmp_path, damage):
    path = ckpt.write_checkpoint(tmp_path, 1, _state(), {})
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 3]
    else:
        data = b""
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.read_checkpoint(tmp_path)


def test_damaged_file_without_checksum_is_still_rejected(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"PK\x03\x04 not really a zip file")
    with pytest.raises(CheckpointError, match="x.pt"):
        ckpt.load_state(path)


class Evil:  # a pickled object would run code on load; weights_only refuses it
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_objects_are_never_unpickled(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError):
        ckpt.load_state(path)
    assert "pwned" not in capsys.readouterr().out


def test_pointer_problems(tmp_path):
    with pytest.raises(CheckpointError, match="latest.json is missing"):
        ckpt.read_checkpoint(tmp_path)
    (tmp_path / "latest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.read_checkpoint(tmp_path)
    (tmp_path / "latest.json").write_text(json.dumps({"file": "ckpt-1.pt"}))
    with pytest.raises(CheckpointError, match="sha256"):
        ckpt.read_checkpoint(tmp_path)


def test_model_file_round_trip(tmp_path):
    m = torch.nn.Linear(3, 2)
    ckpt.write_model(tmp_path / "m.pt", m, {"spec": {"arch": "mlp"}})
    state, meta = ckpt.read_model_file(tmp_path / "m.pt")
    assert meta["spec"] == {"arch": "mlp"}
    assert torch.equal(state["weight"], m.weight.detach())
