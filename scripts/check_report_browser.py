"""Open the HTML report in headless Chromium: images decoded, tables rendered, a screenshot.

Not part of `make test` (Chromium comes from Debian: `apt-get install chromium`). Run:
    .venv/bin/python scripts/check_report_browser.py reports/report.html --screenshot /tmp/r.png

A copy of the report beside it (so the thumbnails' relative links resolve, and with lazy loading
off, so every image loads) gets a script that runs after load and writes what it found (images
that did not decode, tables and their rows, the page's height) into the DOM, which `--dump-dom`
prints. Exit 1 when an image did not decode or no table rendered."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0))
                  .map(i => i.alt || i.src.slice(0, 40));
  const tables = [...document.querySelectorAll("table")];
  const out = {images: imgs.length, broken: bad, tables: tables.length,
               rows: tables.map(t => t.rows.length),
               empty_tables: tables.filter(t => t.offsetHeight === 0).length,
               height: document.body.scrollHeight};
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    sys.exit("error: no Chromium found; install it with `apt-get install chromium`")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--screenshot", type=Path, default=Path("report-screenshot.png"))
    ap.add_argument("--width", type=int, default=1400)
    args = ap.parse_args()
    html = args.report.read_text()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    eager = html.replace(' loading="lazy"', "").replace("</body>", PROBE + "</body>")
    with tempfile.NamedTemporaryFile("w", suffix=".html", dir=args.report.resolve().parent,
                                     prefix=".probe-") as probe:  # fmt: skip
        probe.write(eager)
        probe.flush()
        dom = subprocess.run(
            [browser(), *flags, "--virtual-time-budget=5000", "--dump-dom",
             Path(probe.name).as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
        if not found:
            print(f"error: the page did not finish loading: {dom.stderr.strip()[-300:]}")
            return 1
        result = json.loads(found.group(1).replace("&quot;", '"'))
        height = min(int(result["height"]) + 20, 16000)
        shot = [f"--window-size={args.width},{height}", f"--screenshot={args.screenshot.resolve()}"]
        subprocess.run([browser(), *flags, *shot, args.report.resolve().as_uri()],
                       capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    print(json.dumps(result))
    print(f"screenshot: {args.screenshot} ({args.width} x {height})")
    ok = not result["broken"] and result["tables"] > 0 and not result["empty_tables"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
