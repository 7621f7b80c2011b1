"""Every benchmark in bench/ still starts: its imports resolve against the current code and its
arguments parse (`--help`), so a rename in relay/ cannot leave a bench broken until someone runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO

SCRIPTS = sorted(path.name for path in (REPO / "bench").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert {"throughput.py", "stall.py", "scale.py", "fanout.py", "enrol_import.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_starts(script: str) -> None:
    result = subprocess.run([sys.executable, str(REPO / "bench" / script), "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
