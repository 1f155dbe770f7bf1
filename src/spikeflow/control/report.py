"""The closed loop's HTML report: a GIF of one episode, returns, latency and spikes per decision."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_gif(frames, path, fps: int = 25, max_side: int = 320) -> Path | None:
    """An animated GIF of ``rgb_array`` frames (Pillow), scaled to at most ``max_side`` pixels, with the
    first frame's 32-colour palette for all (fast); None when there are no frames."""
    frames = [f for f in frames if f is not None]
    if not frames:
        return None
    import io

    from PIL import Image

    from spikeflow.atomic import atomic_write_bytes

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    scale = min(1.0, max_side / max(images[0].size))
    if scale < 1.0:
        size = (max(1, int(images[0].width * scale)), max(1, int(images[0].height * scale)))
        images = [im.resize(size, Image.Resampling.BILINEAR) for im in images]
    palette = images[0].quantize(colors=32, method=Image.Quantize.MEDIANCUT)
    images = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def _plots(result, out: Path) -> list:
    from spikeflow.viz.plots import _plt, _save

    plt = _plt()
    names = []
    if result.returns:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(np.arange(1, len(result.returns) + 1), result.returns, "o-")
        ax.set_xlabel("episode")
        ax.set_ylabel("return")
        ax.set_title("return per episode")
        _save(fig, out / "returns.png")
        names.append("returns.png")
    if result.steps:
        lat = np.maximum(result.latency_ns / 1e3, 1e-3)
        fig, ax = plt.subplots(figsize=(5, 3))
        period_us = result.period_s * 1e6
        lo, hi = lat.min(), max(lat.max(), period_us)
        ax.hist(lat, bins=np.geomspace(lo * 0.9, hi * 1.1, 60))
        ax.set_xscale("log")
        ax.set_yscale("log")
        for q, style in ((50, "--"), (99, ":")):
            v = np.percentile(lat, q)
            ax.axvline(v, color="k", linestyle=style, label=f"p{q} {v:.1f} µs")
        ax.axvline(period_us, color="r", label=f"deadline (period) {period_us:.0f} µs")
        ax.set_xlabel("decision latency (µs)")
        ax.set_ylabel("steps")
        ax.set_title("decision latency (encode + act)")
        ax.legend(fontsize=8)
        _save(fig, out / "latency.png")
        names.append("latency.png")
        n = min(result.steps, 2000)
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(5, 4), sharex=True)
        a1.plot(result.synops[:n], lw=0.8, color="tab:orange")
        a1.set_ylabel("synaptic ops")
        a1.set_title(f"activity per decision (first {n} steps)")
        a2.plot(result.spikes[:n], lw=0.8)
        a2.set_ylabel("spikes")
        a2.set_xlabel("control step")
        _save(fig, out / "activity.png")
        names.append("activity.png")
    if result.realtime and result.steps:
        t_s = np.arange(result.steps) * result.period_s
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(t_s, np.maximum(result.start_late_ns / 1e3, 0.1), lw=0.6, label="step start after its tick")
        ax.plot(t_s, np.maximum(result.latency_ns / 1e3, 0.1), lw=0.6, label="decision latency")
        miss = np.flatnonzero(result.missed)
        if len(miss):
            ax.plot(t_s[miss], np.full(len(miss), result.period_s * 1e6), "r|", ms=8,
                    label=f"deadline misses ({len(miss)})")
        ax.axhline(result.period_s * 1e6, color="r", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("control time (s): step x period")
        ax.set_ylabel("µs")
        ax.set_title("deadlines")
        ax.legend(fontsize=7)
        _save(fig, out / "deadlines.png")
        names.append("deadlines.png")
    return names


def _fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def write_report(out_dir, title: str, summary: dict, result, frames=(), compare: dict | None = None) -> Path:
    """``index.html`` in ``out_dir`` with the figures next to it; returns its path."""
    from spikeflow.viz.report import html_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lat, per = summary["latency_us"], summary["per_decision"]
    rows = [["quantity", "value"],
            ["mode", summary["mode"]], ["control rate (Hz)", _fmt(summary["rate_hz"])],
            ["steps", summary["steps"]], ["episodes", summary["episodes"]],
            ["return mean ± std", f"{_fmt(summary['return_mean'])} ± {_fmt(summary['return_std'])}"],
            ["latency p50 / p99 / max (µs)", f"{_fmt(lat['p50'])} / {_fmt(lat['p99'])} / {_fmt(lat['max'])}"],
            ["decision CPU time p50 / p99 (µs)",
             f"{_fmt(summary['decision_cpu_us']['p50'])} / {_fmt(summary['decision_cpu_us']['p99'])}"],
            ["deadline misses", _fmt(summary["deadline_misses"])],
            ["synaptic ops per decision", _fmt(per["synops"])], ["spikes per decision", _fmt(per["spikes"])],
            ["neuron updates per decision", _fmt(per["neuron_updates"])]]
    energy = summary.get("energy_per_decision")
    if energy:
        rows.append([f"energy per decision on {energy['chip']} (nJ)", _fmt(energy["total_j"] * 1e9)])
    sections = [{"heading": "Closed loop", "text": summary.get("description", ""), "table": rows}]
    gif = write_gif(frames, out / "episode.gif")
    if gif is not None:
        sections.append({"heading": "One episode", "images": [gif.name]})
    sections.append({"heading": "Figures", "images": _plots(result, out)})
    if compare:
        chip = (summary.get("energy_per_decision") or {}).get("chip", "")
        table = [["encoding", "run", "synaptic ops / decision", "spikes / decision",
                  f"energy / decision on {chip} (nJ)", "return mean"]]
        for name, c in compare.items():
            table.append([name, c["run"], _fmt(c["synops"]), _fmt(c["spikes"]),
                          _fmt(c.get("energy_per_decision_j", 0.0) * 1e9), _fmt(c["return_mean"])])
        sections.append({"heading": "Event vs dense input", "table": table,
                         "text": "Same task, same seeded episodes, simulated time."})
    return html_report(out / "index.html", title, sections)
