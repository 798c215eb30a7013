"""Screenshot of the web page after a restoration, for the README (docs/web_page.png).

    python tests/web/screenshot.py TICKET IMAGE docs/web_page.png

Needs what the browser test needs (node, Chromium, `npm ci` in tests/web).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from lotteryir.cli import main as cli
from lotteryir.deploy import serve_site

WEB = Path(__file__).resolve().parent


def main() -> None:
    ticket, image, target = sys.argv[1], sys.argv[2], Path(sys.argv[3]).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        if cli(["web", ticket, "-o", str(site), "--runtime", str(WEB / "node_modules" / "onnxruntime-web" / "dist")]):
            raise SystemExit("lotteryir web failed")
        server = serve_site(site, port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        jobs = Path(tmp) / "jobs.json"
        jobs.write_text(
            json.dumps(
                [
                    {
                        "url": f"http://127.0.0.1:{server.server_address[1]}/",
                        "image": str(Path(image).resolve()),
                        "out": str(Path(tmp) / "out.json"),
                        "screenshot": str(target),
                    }
                ]
            )
        )
        try:
            subprocess.run(["node", str(WEB / "browser_check.mjs"), str(jobs)], cwd=WEB, check=True)
        finally:
            server.shutdown()
        page = json.loads((Path(tmp) / "out.json").read_text())
        print(f"{page['state']}: {page['timing']} {page['model']} -> {target}")


if __name__ == "__main__":
    main()
