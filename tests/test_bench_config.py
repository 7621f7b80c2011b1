"""bench/throughput.py's throw-away relay starts beside a relay that holds the default ports.

The bench's config used to leave the review console on its default port 8025: with a relay already
serving there, the bench's `serve` failed to start. Here the default SMTP and console ports are held
(by this test, or by whatever already listens on them) while `serve` runs on the bench's config.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.throughput import write_relay_config
from relay.config import ConsoleConfig, SmtpConfig
from tests.support import REPO, free_port

START_TIMEOUT = 60.0


@contextlib.contextmanager
def held(port: int) -> Iterator[None]:
    """Listen on 127.0.0.1:port for the block; if something already listens there, it is held anyway."""
    with socket.socket() as sock:
        with contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            sock.listen()
        yield


def test_the_bench_relay_starts_while_the_default_ports_are_taken(tmp_path: Path) -> None:
    # The bench's defaults: the shipped adult-professional policy and an RSA-2048 key from `dkim keygen`.
    config = write_relay_config(tmp_path / "relay", sink_port=free_port(), dns_port=free_port(),
                                policy_name="adult-professional", dkim="rsa")
    log = tmp_path / "serve.log"
    default_smtp, default_console = SmtpConfig().port, ConsoleConfig().port
    with held(default_smtp), held(default_console), open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "relay", "--config", str(config), "serve"], stdout=out,
                                   stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            deadline = time.monotonic() + START_TIMEOUT
            serving = None
            while serving is None and time.monotonic() < deadline:
                serving = re.search(r"serving \S+ on 127\.0\.0\.1:(\d+)", log.read_text())
                if serving is None:
                    try:  # wait on the process itself between looks at its log: returns at once if it died
                        process.wait(timeout=0.05)
                        break
                    except subprocess.TimeoutExpired:
                        pass
            assert serving is not None, f"serve did not start ({process.poll()}):\n{log.read_text()}"
            assert int(serving.group(1)) not in (0, default_smtp)
            assert "review console" not in log.read_text()
        finally:
            process.terminate()
            assert process.wait(timeout=30) == 0, log.read_text()
