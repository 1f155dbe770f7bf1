"""Screenshots of the built site in a real browser: ``python docs/tools/screenshots.py SITE_DIR OUT_DIR``.

Serves SITE_DIR on a free port of 127.0.0.1, opens it in Debian's Chromium (``/usr/bin/chromium``)
through Playwright, and saves ``home.png`` (the home page) and ``tutorial.png`` (the first tutorial,
with its executed output and a figure) in OUT_DIR.
"""

from __future__ import annotations

import functools
import http.server
import sys
import threading
from pathlib import Path

# file name -> (page, the heading to scroll to the top of the window, or None)
PAGES = {"home.png": ("index.html", None), "tutorial.png": ("tutorials/01_neuron.html", "Charging below threshold")}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main(site: str, out: str) -> int:
    """Takes the screenshots; returns the exit code."""
    from playwright.sync_api import sync_playwright

    site_dir, out_dir = Path(site).resolve(), Path(out)
    if not (site_dir / "index.html").is_file():
        print(f"screenshots: {site_dir}/index.html not found; run 'make docs' first", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1200})
            for name, (url, heading) in PAGES.items():
                page.goto(base + url, wait_until="networkidle")
                if heading:  # the code, its printed output and its figure
                    page.get_by_role("heading", name=heading).evaluate("e => e.scrollIntoView({block: 'start'})")
                    page.evaluate("window.scrollBy(0, -70)")
                    page.wait_for_timeout(300)
                page.screenshot(path=str(out_dir / name))
                print(f"wrote {out_dir / name}")
            browser.close()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
