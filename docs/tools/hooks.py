"""mkdocs hooks: add the generated pages (tutorials with their real output, CLI and API reference,
benchmark results) to the site at build time, so nothing generated is kept in the repository.

Executed tutorials are cached in ``build/docs-cache`` by a hash of their source, the renderer and the
setting, so
``mkdocs serve`` does not rerun unchanged ones; ``SPIKEFLOW_DOCS_NO_CACHE=1`` reruns everything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render  # noqa: E402

sys.path.insert(0, str(render.ROOT / "src"))

log = logging.getLogger("mkdocs.hooks.spikeflow")
CACHE = render.ROOT / "build" / "docs-cache"


def _rendered(path: Path, fast: bool) -> render.Rendered:
    renderer = Path(render.__file__).read_bytes()  # a change to how pages are made invalidates them too
    key = hashlib.sha256(path.read_bytes() + renderer + (b"fast" if fast else b"full")).hexdigest()[:16]
    folder = CACHE / f"{path.stem}-{key}"
    if folder.is_dir() and (folder / "page.json").is_file() and os.environ.get("SPIKEFLOW_DOCS_NO_CACHE") != "1":
        meta = json.loads((folder / "page.json").read_text())
        images = {n: (folder / n).read_bytes() for n in meta["images"]}
        return render.Rendered(meta["name"], meta["title"], meta["markdown"], images, meta["seconds"])
    log.info("running tutorial %s", path.name)
    r = render.run_tutorial(path, fast=fast)
    folder.mkdir(parents=True, exist_ok=True)
    for n, data in r.images.items():
        (folder / n).write_bytes(data)
    (folder / "page.json").write_text(json.dumps({"name": r.name, "title": r.title, "markdown": r.markdown,
                                                  "seconds": r.seconds, "images": list(r.images)}))
    log.info("tutorial %s: %.1f s, %d figures", path.name, r.seconds, len(r.images))
    return r


def _results_page() -> str:
    bench = render.ROOT / "benchmarks"
    parts = [(bench / "RESULTS.md").read_text(), "", "## Results files", "",
             "The measurements behind the tables, as committed in `benchmarks/results/`:", ""]
    for f in sorted((bench / "results").glob("*")):
        if f.suffix in (".json", ".csv", ".txt", ".md"):
            lang = "json" if f.suffix == ".json" else "text"
            parts += [f"### `benchmarks/results/{f.name}`", "", f"```{lang}", f.read_text().rstrip(), "```", ""]
    return "\n".join(parts)


def on_files(files, config):
    """Adds the generated pages and figures to the site's files."""
    fast = os.environ.get(render.FAST_ENV, "0") == "1"

    def add(uri: str, content):
        files.append(File.generated(config, uri, content=content))

    for path in render.tutorial_paths():
        r = _rendered(path, fast)
        add(f"tutorials/{path.stem}.md", r.markdown)
        for name, data in r.images.items():
            add(f"tutorials/img/{name}", data)
    add("reference/cli.md", render.cli_reference())
    for uri, _title, body in render.api_pages():
        add(uri, body)
    add("benchmarks.md", _results_page())
    return files


def _chip_energy_table() -> str:
    from spikeflow.hardware import PROFILES

    head = ("| chip | synaptic op (pJ) | active update (pJ) | idle update (pJ) | local packet (pJ) | hop (pJ) "
            "| static power (mW) |\n|---|---:|---:|---:|---:|---:|---:|\n")
    rows, sources = [], []
    for p in PROFILES.values():
        vals = [p.e_synop, p.e_update_active, p.e_update_inactive, p.e_spike_local, p.e_hop]
        cells = " | ".join(f"{v * 1e12:.3g}" for v in vals)
        rows.append(f"| {p.title} | {cells} | {p.static_power * 1e3:.3g} |")
        sources.append(f"- {p.title}: {'; '.join(p.sources)}")
    return head + "\n".join(rows) + "\n\nSources:\n\n" + "\n".join(sources) + "\n"


def _chip_cost_sources() -> str:
    """Every cost figure of every chip profile with its source or estimate note."""
    from spikeflow.hardware import PROFILES
    from spikeflow.hardware.profiles import COST_FIELDS

    unit = {"static_power": (1e3, "mW")}
    parts = []
    for p in PROFILES.values():
        cite = p.citations()
        rows = []
        for f in COST_FIELDS:
            scale, u = unit.get(f, (1e9, "ns") if f.startswith("t_") else (1e12, "pJ"))
            rows.append(f"| `{f}` | {getattr(p, f) * scale:.4g} {u} | {cite.get(f, '')} |")
        note = f"\n\n{p.notes}" if p.notes else ""
        parts.append(f"**{p.title}**{note}\n\n| figure | value | source |\n|---|---:|---|\n" + "\n".join(rows))
    return "\n\n".join(parts) + "\n"


def _hw_published_table() -> str:
    """The table of benchmarks/results/hw_published.json: modelled vs published, with ratios."""
    path = render.ROOT / "benchmarks" / "results" / "hw_published.json"
    doc = json.loads(path.read_text())
    rows = ["| case | chip | quantity | modelled | published | modelled / published |", "|---|---|---|---:|---:|---:|"]
    for r in doc["results"]:
        for row in r["rows"]:
            rows.append(f"| {r['case']} | {r['chip']} | {row['quantity']} | {row['modelled']:.3g} | "
                        f"{row['published']:.3g} | {row['ratio']:.3g} |")
    srcs = "\n".join(f"- `{r['case']}`: {r['source']}; network {' -> '.join(map(str, r['network']))} "
                     f"({r['shape_source']}); measured spiking-layer rates per step "
                     f"{', '.join(f'{x:.3f}' for x in r['activity']['spiking_layer_rates_per_step'])}; with every "
                     f"input and neuron spiking every step the dynamic energy would be "
                     f"{r['all_active_dynamic_j']:.3g} J "
                     f"({r['all_active_ratio']:.2g} of the published). {r['notes']}"
                     for r in doc["results"])
    return ("\n".join(rows) + f"\n\nFrom `{doc['command']}` at commit `{doc['commit'][:12]}` "
            f"(`benchmarks/results/hw_published.json`). Energies in J, powers in W, throughput in inferences/s; "
            f"dynamic energy is clock-independent; powers are at the published inference rate where one is "
            f"published (Loihi), else over the inference's real-time steps (Xylo).\n\n{srcs}\n")


def on_page_markdown(markdown, page, config, files):
    """Fills generated tables into hand-written pages."""
    if "<!-- chip-energy-table -->" in markdown:
        markdown = markdown.replace("<!-- chip-energy-table -->", _chip_energy_table())
    if "<!-- chip-cost-sources -->" in markdown:
        markdown = markdown.replace("<!-- chip-cost-sources -->", _chip_cost_sources())
    if "<!-- hw-published-table -->" in markdown:
        markdown = markdown.replace("<!-- hw-published-table -->", _hw_published_table())
    return markdown
