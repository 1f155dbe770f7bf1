"""Readers and writers: round trips, hand-made bytes from each format's spec, hostile input."""

import io
import struct
import zipfile

import h5py
import numpy as np
import pytest

from spikeflow.data import Events
from spikeflow.data.formats import (
    EventBundle,
    read_aedat2,
    read_events,
    read_evt2,
    read_nmnist_bin,
    read_npz,
    read_recordings,
    read_shd,
    write_aedat2,
    write_bundle,
    write_events,
    write_evt2,
    write_nmnist_bin,
    write_npz,
    write_shd,
)
from spikeflow.errors import DataFormatError
from tests.data.data_helpers import random_events

# ---------------------------------------------------------------- round trips (written files)


def test_nmnist_roundtrip_with_timestamp_overflow(tmp_path):
    e = random_events(3000, t_max=(1 << 23) * 3, seed=2)      # needs overflow markers
    write_nmnist_bin(tmp_path / "a.bin", e)
    assert (tmp_path / "a.bin").stat().st_size > 5 * len(e)  # markers were written
    assert read_nmnist_bin(tmp_path / "a.bin", sensor_size=(34, 34, 2)) == e


def test_evt2_roundtrip(tmp_path):
    e = random_events(3000, size=(640, 480, 2), t_max=5_000_000, seed=3)
    write_evt2(tmp_path / "a.raw", e)
    back = read_evt2(tmp_path / "a.raw")
    assert back == e and back.sensor_size == (640, 480, 2)


def test_aedat2_roundtrip(tmp_path):
    e = random_events(3000, size=(128, 128, 2), seed=4)
    write_aedat2(tmp_path / "a.aedat", e)
    assert read_aedat2(tmp_path / "a.aedat") == e


def test_npz_roundtrip(tmp_path):
    e = random_events(100, seed=5, label=7)
    write_npz(tmp_path / "a.npz", e)
    back = read_npz(tmp_path / "a.npz")
    assert back == e and back.label == 7


def test_shd_and_bundle_roundtrip(tmp_path):
    samples = [random_events(50 + i, size=(700, 1, 1), seed=i, label=i % 3) for i in range(5)]
    write_shd(tmp_path / "s.h5", samples)
    assert read_shd(tmp_path / "s.h5") == samples
    write_bundle(tmp_path / "b.h5", samples, (700, 1, 1))
    b = EventBundle(tmp_path / "b.h5")
    assert [b[i] for i in range(len(b))] == samples
    # dispatch tells the two HDF5 layouts apart
    assert read_events(tmp_path / "s.h5") == samples and read_events(tmp_path / "b.h5") == samples


def test_write_events_dispatch_and_atomic(tmp_path):
    e = random_events(10, size=(34, 34, 2), seed=6)
    for suffix in (".bin", ".raw", ".aedat", ".npz", ".h5"):
        write_events(tmp_path / f"x{suffix}", e)
        back = read_recordings(tmp_path / f"x{suffix}")[0]
        np.testing.assert_array_equal(back.array, e.array)
    assert not list(tmp_path.glob("*.tmp*"))   # no temp files left behind


# ---------------------------------------------------------------- hand-made bytes from the specs


def test_nmnist_spec_bytes():
    # x=5, y=7, ON, t=0x000123 µs; then an overflow marker (y=240); then x=1, y=2, OFF, raw t=10;
    # then x=3, y=4, ON, t=0x7FFFFF (all 23 bits).
    data = (bytes([5, 7, 0x80 | 0x00, 0x01, 0x23]) + bytes([0, 240, 0, 0, 0]) + bytes([1, 2, 0x00, 0x00, 0x0A])
            + bytes([3, 4, 0xFF, 0xFF, 0xFF]))
    e = read_nmnist_bin(data)
    assert e.x.tolist() == [5, 1, 3] and e.y.tolist() == [7, 2, 4] and e.p.tolist() == [1, 0, 1]
    assert e.t.tolist() == [0x0123, 8192 + 10, 8192 + 0x7FFFFF]


def test_evt2_spec_bytes():
    header = b"% evt 2.0\n% format EVT2;height=480;width=640\n% end\n"
    time_high = struct.pack("<I", (0x8 << 28) | 3)                          # timestamp bits 33..6 = 3
    cd_on = struct.pack("<I", (0x1 << 28) | (5 << 22) | (100 << 11) | 200)  # lsb 5, x 100, y 200
    trigger = struct.pack("<I", (0xA << 28) | 1)                            # skipped
    cd_off = struct.pack("<I", (0x0 << 28) | (9 << 22) | (639 << 11) | 479)
    e = read_evt2(header + time_high + cd_on + trigger + cd_off)
    assert e.sensor_size == (640, 480, 2)
    assert e.t.tolist() == [3 * 64 + 5, 3 * 64 + 9]
    assert e.x.tolist() == [100, 639] and e.y.tolist() == [200, 479] and e.p.tolist() == [1, 0]


def test_aedat2_spec_bytes():
    header = b"#!AER-DAT2.0\r\n# made by hand\r\n"
    rec1 = struct.pack(">II", (3 << 8) | (4 << 1) | 1, 1000)    # y=3, x=4, ON, 1000 µs
    rec2 = struct.pack(">II", 0x8000, 1500)                    # external event: skipped
    rec3 = struct.pack(">II", (127 << 8) | (127 << 1) | 0, 2000)
    e = read_aedat2(header + rec1 + rec2 + rec3)
    assert e.x.tolist() == [4, 127] and e.y.tolist() == [3, 127] and e.p.tolist() == [1, 0]
    assert e.t.tolist() == [1000, 2000]
    assert read_aedat2(header + rec1, flip_x=True).x.tolist() == [123]


def test_shd_spec_layout(tmp_path):
    path = tmp_path / "shd.h5"
    with h5py.File(path, "w") as f:   # the layout of Cramer et al.'s files, made by hand
        times = f.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.float16))
        units = f.create_dataset("spikes/units", (2,), dtype=h5py.vlen_dtype(np.uint16))
        times[0], units[0] = np.array([0.5, 0.001], np.float16), np.array([699, 3], np.uint16)
        times[1], units[1] = np.array([], np.float16), np.array([], np.uint16)
        f.create_dataset("labels", data=np.array([19, 0], np.uint16))
    a, b = read_shd(path)
    assert a.sensor_size == (700, 1, 1) and a.label == 19 and b.label == 0 and len(b) == 0
    assert a.x.tolist() == [3, 699]                       # sorted by time
    assert a.t.tolist() == [1000, 500000]                 # float16 0.001 s = 1000.1 µs rounds to 1000


def test_npz_spec_layout():
    buf = io.BytesIO()
    np.savez(buf, x=np.array([1, 2], np.int16), y=np.array([3, 4], np.int16), t=np.array([5, 6]),
             p=np.array([0, 1], np.int8), sensor_size=np.array([10, 10, 2]), label=np.array(4))
    e = read_npz(buf.getvalue())
    assert e.x.tolist() == [1, 2] and e.t.tolist() == [5, 6] and e.label == 4 and e.sensor_size == (10, 10, 2)


# ---------------------------------------------------------------- hostile input


@pytest.mark.parametrize("reader,data,match", [
    (read_nmnist_bin, bytes(7), "offset 5: truncated"),
    (read_nmnist_bin, bytes([0, 0, 0, 0, 9]) + bytes([0, 0, 0, 0, 1]), "offset 5: timestamp decreases"),
    (read_evt2, b"% evt 2.0\n% end\n" + bytes(6), "offset 20: truncated"),
    (read_evt2, b"% evt 2.0\n% end\n" + struct.pack("<I", 0x3 << 28), "offset 16: unknown EVT 2.0 event type 0x3"),
    (read_evt2, b"% geometry 10x10\n% end\n" + struct.pack("<I", (1 << 28) | (11 << 11)), "x=11 outside"),
    (read_evt2, b"% no newline" + b"a" * 100, "truncated header"),
    (read_aedat2, b"#!AER-DAT1.0\r\n", "not an AEDAT 2.0 file"),
    (read_aedat2, b"#!AER-DAT2.0\r\n" + bytes(12), "offset 22: truncated"),
    (read_aedat2, b"#!AER-DAT2.0\r\n" + struct.pack(">II", 0, 0) + struct.pack(">II", 0x7F << 8 | 0xFF, 0), None),
    (read_npz, b"PK\x03\x04garbage", "not a readable .npz"),
    (read_npz, b"\x93NUMPY\x01\x00" + b"x" * 30, "not a readable .npz|single .npy"),
    (read_shd, b"\x89HDF\r\n\x1a\n" + bytes(100), "not a readable HDF5"),
    (read_shd, b"hello", "not a readable HDF5"),
])
def test_hostile_bytes_raise_data_format_error_with_offset(reader, data, match):
    if match is None:   # a valid file: x=127 fits the DVS128
        assert len(reader(data)) == 2
        return
    with pytest.raises(DataFormatError, match=match) as info:
        reader(data)
    assert "<bytes>" in str(info.value)


def test_error_names_the_file(tmp_path):
    p = tmp_path / "broken.bin"
    p.write_bytes(bytes(11))
    with pytest.raises(DataFormatError, match=r"broken\.bin: at byte offset 10"):
        read_nmnist_bin(p)
    with pytest.raises(DataFormatError, match="missing.raw: cannot open"):
        read_evt2(tmp_path / "missing.raw")


def test_caps_refuse_before_allocating(tmp_path):
    e = random_events(100, seed=7)
    data = (tmp_path / "a.bin")
    write_nmnist_bin(data, e)
    with pytest.raises(DataFormatError, match="over the cap"):
        read_nmnist_bin(data, max_events=10)
    # An .npy header that claims 10**12 events is refused from the header alone.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k in ("x", "y", "t", "p"):
            hdr = io.BytesIO()
            np.lib.format.write_array_header_1_0(hdr, {"descr": "<i8", "fortran_order": False, "shape": (10**12,)})
            z.writestr(k + ".npy", hdr.getvalue())
        z.writestr("sensor_size.npy", _npy(np.array([1, 1, 1])))
    with pytest.raises(DataFormatError, match="claims 1000000000000 entries, over the cap"):
        read_npz(buf.getvalue())
    # Object arrays (would need pickle) are refused.
    buf = io.BytesIO()
    np.savez(buf, x=np.array([1], np.int16), y=np.array([1], np.int16), t=np.array([1]), p=np.array([0], np.int8),
             sensor_size=np.array([2, 2, 2]))
    raw = buf.getvalue()
    buf2 = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(buf2, "w") as zout:
        for item in zin.namelist():
            zout.writestr(item, zin.read(item) if item != "label.npy" else b"")
        zout.writestr("label.npy", _npy_object())
    with pytest.raises(DataFormatError, match="only plain numbers"):
        read_npz(buf2.getvalue())


def _npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def _npy_object():
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    return b.getvalue() + b"\x80\x04N."


def test_shd_inconsistent_lengths(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.float32))
        f.create_dataset("spikes/units", (3,), dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset("labels", data=np.zeros(2, np.uint16))
    with pytest.raises(DataFormatError, match="bad.h5.*must both have shape"):
        read_shd(path)


def test_bundle_rejects_bad_offsets(tmp_path):
    e = random_events(10, seed=8, label=1)
    write_bundle(tmp_path / "b.h5", [e], e.sensor_size)
    with h5py.File(tmp_path / "b.h5", "r+") as f:
        f["offsets"][1] = 999
    with pytest.raises(DataFormatError, match="offsets"):
        EventBundle(tmp_path / "b.h5")


def test_events_equality_sanity():
    a = random_events(5, seed=1)
    assert a != random_events(5, seed=2) and a == Events(a.array.copy(), a.sensor_size)


def test_isolated_reader_turns_a_crash_into_data_format_error():
    import os
    import signal

    from spikeflow.data.formats._h5 import run_isolated

    def crash():
        os.kill(os.getpid(), signal.SIGSEGV)

    with pytest.raises(DataFormatError, match="crashed reading this file"):
        run_isolated(crash, name="x.h5")
    out = run_isolated(lambda: {"a": np.arange(3)}, name="x.h5")
    assert out["a"].tolist() == [0, 1, 2]
