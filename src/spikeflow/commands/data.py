"""``spikeflow data list|show|convert``: datasets and event files."""

from __future__ import annotations

import time

from spikeflow.commands._common import add_progress, dataset, input_file, nonneg_int, output_dir, output_file
from spikeflow.errors import ConfigError, SpikeflowError


def register(sub) -> None:
    p = sub.add_parser("data", help="datasets and event files: list, show, convert")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    cache_help = "cache folder (default: $SPIKEFLOW_CACHE or the user cache dir)"

    pl = dsub.add_parser("list", help="the datasets (building any that are not cached yet)")
    pl.add_argument("--no-build", action="store_true", help="only report what is cached; build nothing")
    pl.add_argument("--cache-dir", default=None, type=output_dir, help=cache_help)
    add_progress(pl)
    pl.set_defaults(func=run_list)

    ps = dsub.add_parser("show", help="draw one sample (event frame, spike raster, image) as a PNG")
    ps.add_argument("name", type=dataset, help="dataset name or event file")
    ps.add_argument("--index", type=nonneg_int, default=0, help="which sample")
    ps.add_argument("--split", default="train", choices=["train", "test"], help="part of the dataset")
    ps.add_argument("--out", default=None, type=output_file, help="PNG file (default: <name>-<index>.png)")
    ps.add_argument("--cache-dir", default=None, type=output_dir, help=cache_help)
    ps.set_defaults(func=run_show)

    pc = dsub.add_parser("convert", help="convert event files between formats (by suffix: .bin .raw .aedat .npz .h5)")
    pc.add_argument("input", type=input_file, help="event file to read")
    pc.add_argument("output", type=output_file, help="event file to write")
    pc.add_argument("--to", default=None, choices=["nmnist", "evt2", "aedat2", "npz", "shd", "bundle"],
                    help="output format when the suffix is ambiguous (.h5: bundle or shd)")
    pc.set_defaults(func=run_convert)


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def run_list(args) -> int:
    from spikeflow.data import DATASETS, load_dataset
    from spikeflow.data.datasets.cache import cache_root, is_cached, verify

    root = cache_root(args.cache_dir)
    print(f"cache: {root}")
    print(f"{'name':14s} {'samples':>7s} {'classes':>7s} {'shape':16s} {'train/test':>11s} {'cached':6s} "
          f"{'size':>9s} {'build s':>8s}")
    for name, info in DATASETS.items():
        key = info["cache_key"]
        size = build = "-"
        cached = is_cached(key, args.cache_dir)
        if not args.no_build:
            t0 = time.perf_counter()
            try:
                load_dataset(name, "train", cache_dir=args.cache_dir)
                cached = True
            except SpikeflowError as err:  # one dataset that cannot be built does not hide the others
                print(f"{name:14s} unavailable: {err}")
                continue
            _ = time.perf_counter() - t0
        if cached:
            manifest = verify(root / key)
            if manifest:
                size, build = _human(manifest["bytes"]), f"{manifest['build_seconds']:.1f}"
        shape = "x".join(str(s) for s in info["shape"])
        split = "/".join(str(s) for s in info["splits"])
        print(f"{name:14s} {info['samples']:7d} {info['classes']:7d} {shape:16s} {split:>11s} "
              f"{'yes' if cached else 'no':6s} {size:>9s} {build:>8s}")
    return 0


def run_show(args) -> int:
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from spikeflow.atomic import atomic_output
    from spikeflow.data import DATASETS, Events, load_dataset

    if args.name in DATASETS:
        ds = load_dataset(args.name, args.split, cache_dir=args.cache_dir)
        if not 0 <= args.index < len(ds):
            raise ConfigError(f"--index must be in 0..{len(ds) - 1} for {args.name} {args.split}")
        x, y = ds[args.index]
        title = f"{args.name} {args.split}[{args.index}] label {y}"
    else:
        from spikeflow.data.formats import read_recordings

        recs = read_recordings(args.name)
        if not 0 <= args.index < len(recs):
            raise ConfigError(f"--index must be in 0..{len(recs) - 1} for {args.name}")
        x = recs[args.index]
        title = f"{os.path.basename(args.name)}[{args.index}] label {x.label}"
    out = args.out or f"{os.path.basename(str(args.name)).replace('.', '_')}-{args.index}.png"
    fig, ax = plt.subplots(figsize=(5, 4))
    if isinstance(x, Events):
        w, h, npol = x.sensor_size
        if h == 1 and npol == 1:   # audio: spike raster
            ax.scatter(x.t / 1e3, x.x, s=1, c="k")
            ax.set_xlabel("time (ms)")
            ax.set_ylabel("channel")
        else:                       # event frame: ON in red, OFF in blue, brightness = count
            f = x.to_frames(n_bins=1)[0]
            rgb = np.zeros((h, w, 3))
            scale = max(float(f.max()), 1.0)
            rgb[..., 0] = f[-1] / scale
            if npol > 1:
                rgb[..., 2] = f[0] / scale
            ax.imshow(rgb)
            ax.set_xlabel("x (red ON, blue OFF)")
        title += f", {len(x)} events"
    else:
        arr = np.asarray(x)
        if arr.ndim == 3:
            arr = arr[0]
        im = ax.imshow(arr.T if arr.shape[-1] == 13 else arr, aspect="auto", cmap="viridis", origin="lower")
        fig.colorbar(im, ax=ax)
    ax.set_title(title)
    fig.tight_layout()
    try:
        with atomic_output(out) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    print(out)
    return 0


def run_convert(args) -> int:
    from spikeflow.data.formats import read_recordings, write_events

    recs = read_recordings(args.input)
    fmt = args.to
    write_events(args.output, recs if (fmt in ("shd", "bundle") or len(recs) > 1) else recs[0], fmt)
    n = sum(len(r) for r in recs)
    print(f"{args.input} -> {args.output}: {len(recs)} recording(s), {n} events")
    return 0
