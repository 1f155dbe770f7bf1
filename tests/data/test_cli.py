from spikeflow.cli import main
from spikeflow.data.formats import read_aedat2, write_nmnist_bin
from tests.data.data_helpers import random_events


def test_data_list_without_build(tmp_path, capsys):
    assert main(["data", "list", "--no-build", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "mnist5k", "nmnist5k", "fsdd", "spoken-digits"):
        assert name in out
    assert "no" in out


def test_data_convert_and_show(tmp_path, capsys):
    e = random_events(200, size=(34, 34, 2), seed=1)
    write_nmnist_bin(tmp_path / "a.bin", e)
    assert main(["data", "convert", str(tmp_path / "a.bin"), str(tmp_path / "a.aedat")]) == 0
    assert read_aedat2(tmp_path / "a.aedat", sensor_size=(34, 34, 2)) == e
    png = tmp_path / "a.png"
    assert main(["data", "show", str(tmp_path / "a.bin"), "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["data", "show", "digits", "--index", "3", "--out", str(tmp_path / "d.png"),
                 "--cache-dir", str(tmp_path / "c")]) == 0


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "bad.bin").write_bytes(bytes(3))
    assert main(["data", "convert", str(tmp_path / "bad.bin"), str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.bin: at byte offset 0" in err
