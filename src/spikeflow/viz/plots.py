"""Figures for reports: spike raster, event frame, accuracy curves, bar charts (PNG files)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from spikeflow.atomic import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def raster(spikes, path, *, dt: float = 1e-3, title: str = "spike raster", max_neurons: int = 200) -> Path:
    """Raster of ``spikes [T, N]`` (one sample): a dot per spike, neuron index against time."""
    s = np.asarray(spikes, dtype=float).reshape(len(spikes), -1)[:, :max_neurons]
    t, n = np.nonzero(s)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.scatter(t * dt * 1e3, n, s=4, c="k", marker="|")
    ax.set(xlabel="time (ms)", ylabel="neuron", title=title, xlim=(-dt * 1e3, len(s) * dt * 1e3), ylim=(-1, s.shape[1]))
    return _save(fig, path)


def event_frame(frame, path, *, title: str = "input events") -> Path:
    """An event frame ``[2, H, W]`` (OFF, ON counts) as red/blue, or a ``[H, W]`` image in grey."""
    f = np.asarray(frame, dtype=float)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    if f.ndim == 3 and f.shape[0] == 2:
        rgb = np.zeros(f.shape[1:] + (3,))
        scale = max(f.max(), 1e-9)
        rgb[..., 0] = f[1] / scale  # ON in red
        rgb[..., 2] = f[0] / scale  # OFF in blue
        ax.imshow(rgb, interpolation="nearest")
    else:
        ax.imshow(f.reshape(f.shape[-2:]), cmap="gray", interpolation="nearest")
    ax.set(title=title, xticks=[], yticks=[])
    return _save(fig, path)


def accuracy_curve(x, curves: dict, path, *, xlabel: str, title: str) -> Path:
    """Plots accuracy curves (fractions, shown in %) against ``x`` (fractions) to the PNG ``path``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, ys in curves.items():
        ax.plot(np.asarray(x) * 100, np.asarray(ys) * 100, marker="o", ms=3, label=label)
    ax.set(xlabel=xlabel, ylabel="test accuracy (%)", title=title, ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def bar_chart(values: dict, path, *, ylabel: str, title: str, log: bool = False) -> Path:
    """A bar chart of ``values`` (name -> number, optionally log scale) written to the PNG ``path``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    names = list(values)
    ax.bar(names, [values[k] for k in names], color=["tab:blue", "tab:orange", "tab:green", "tab:red"][: len(names)])
    if log:
        ax.set_yscale("log")
    ax.set(ylabel=ylabel, title=title)
    for i, k in enumerate(names):
        ax.annotate(f"{values[k]:.3g}", (i, values[k]), ha="center", va="bottom", fontsize=8)
    return _save(fig, path)


def pareto_plot(points: list, path, *, title: str, key: str = "energy_j", xlabel: str = "energy per inference (J)",
                frontier: list | None = None, target: tuple | None = None) -> Path:
    """Accuracy (%) against ``key`` (log scale) for each point (``name``, ``kind``, ``accuracy``, ``key``);
    the points flagged in ``frontier`` are joined by the Pareto line; ``target = (min accuracy, max key)``
    shades the region a point must reach."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    style = {"ann": ("s", "tab:orange"), "snn": ("o", "tab:blue"), "snn-early-exit": ("^", "tab:green")}
    for kind, (marker, color) in style.items():
        sel = [p for p in points if p["kind"] == kind]
        if sel:
            ax.scatter([p[key] for p in sel], [100 * p["accuracy"] for p in sel], marker=marker, c=color,
                       label={"ann": "ANN", "snn": "SNN", "snn-early-exit": "SNN, early exit"}[kind], zorder=3)
    for i, p in enumerate(points):  # labels staggered so that points at one accuracy stay readable
        ax.annotate(p["name"], (p[key], 100 * p["accuracy"]), fontsize=6, xytext=(4, 4 - 8 * (i % 3)),
                    textcoords="offset points")
    if frontier:
        front = sorted((p for p, f in zip(points, frontier) if f), key=lambda p: p[key])
        ax.plot([p[key] for p in front], [100 * p["accuracy"] for p in front], "k--", lw=0.8, label="Pareto front")
    ax.set_xscale("log")
    if target is not None:
        lo = min(min(p[key] for p in points), target[1]) / 2
        top = max(100 * p["accuracy"] for p in points) + 0.5
        ax.fill_between([lo, target[1]], 100 * target[0], top, color="tab:green", alpha=0.12, label="target")
    ax.set(xlabel=xlabel, ylabel="test accuracy (%)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, path)
