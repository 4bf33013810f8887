"""Screenshots of `cimjax report --html` pages with headless Chromium (skipped when none is installed).

    python benchmarks/screenshot_report.py results/html results/shots

writes ``<page>.png`` for every ``*.html`` page of the report directory. The hover panel shows the first
front design, as a page does before the mouse moves.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    pages, shots = Path(argv[0]), Path(argv[1])
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        print(f"no headless browser found (looked for {', '.join(BROWSERS)}); nothing to do")
        return 0
    shots.mkdir(parents=True, exist_ok=True)
    for page in sorted(pages.glob("*.html")):
        target = shots / f"{page.stem}.png"
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1000",
             f"--screenshot={target.resolve()}", page.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
