"""A self-contained HTML report: headings, tables and PNGs next to it."""

from __future__ import annotations

import html
from pathlib import Path


def html_report(path, title: str, sections: list[dict]) -> Path:
    """Write ``path``; each section has ``heading`` and any of ``text``, ``table`` (list of rows,
    first row the header) and ``images`` (file names relative to the report)."""
    from spikeflow.atomic import atomic_write_text

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:470px;margin:4px}</style>",
             f"</head><body><h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s['heading'])}</h2>")
        if s.get("text"):
            parts.append(f"<p>{html.escape(s['text'])}</p>")
        if s.get("table"):
            head, *rows = s["table"]
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in head) + "</tr>")
            for r in rows:
                parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>")
            parts.append("</table>")
        for img in s.get("images", []):
            parts.append(f"<img src='{html.escape(str(img))}' alt='{html.escape(str(img))}'>")
    parts.append("</body></html>")
    atomic_write_text(Path(path), "\n".join(parts))
    return Path(path)
