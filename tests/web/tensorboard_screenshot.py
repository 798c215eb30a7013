"""Screenshot of TensorBoard on a run's logs, for the docs (docs/tensorboard.png).

    python tests/web/tensorboard_screenshot.py RUN docs/tensorboard.png

RUN is a run made with ``lotteryir prune --log tensorboard``. Needs the tensorboard extra and what the
browser test needs (node, Chromium, ``npm ci`` in tests/web).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

WEB = Path(__file__).resolve().parent
TAGS = "train/loss|eval/mean_psnr|eval/mean_input_psnr|density/overall"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    run, target = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
    port = _port()
    logdir = run / "logs"
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(1)
        else:
            raise SystemExit("tensorboard did not start")
        subprocess.run(["node", str(WEB / "tensorboard_shot.mjs"), url + "#timeseries", str(target), TAGS], check=True)
    finally:
        server.terminate()
        server.wait()
    print(target)


if __name__ == "__main__":
    main()
