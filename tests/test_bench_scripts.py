"""Every benchmark in bench/ still starts: its imports resolve against the current code and its
arguments parse (`--help`), so a rename in relay/ cannot leave a bench broken until someone runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_the_scale_bench_says_what_is_missing_to_measure_a_kept_store(tmp_path: Path) -> None:
    """`--reuse DIR` measures a store that `--only build` or `--keep` kept: without one, or with options that do
    not go together, exit 2 with text."""
    for args, said in ((["--reuse", str(tmp_path), "--only", "sweep"], "holds no kept store"),
                       (["--copy", "--only", "sweep"], "--copy needs --reuse DIR"),
                       (["--only", "build", "--reuse", str(tmp_path)], "does not go with --reuse"),
                       (["--only", "nothing"], "--only takes some of")):
        result = subprocess.run([sys.executable, str(REPO / "bench" / "scale.py"), *args], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr[-2000:]
        assert said in result.stderr
        assert "Traceback" not in result.stderr


def test_a_relays_tree_cpu_keeps_a_child_that_ended_in_between(tmp_path: Path) -> None:
    """The benches' CPU of a process tree (throughput.py, fanout.py) counts a descendant that ended and was waited
    for, such as `serve`'s start-up sweep process: without it, fanout.py printed a negative CPU per message."""
    from bench.throughput import Child, read_text, wait_until

    worker = "total = 0\nfor number in range(20_000_000):\n    total += number\n"
    # the parent stays until the test stops it (SIGTERM), at most 120 s
    parent = (f"import signal, subprocess, sys\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\n"
              f"subprocess.run([sys.executable, '-c', {worker!r}], check=True)\n"
              "print('child done', flush=True)\nsignal.sigtimedwait([signal.SIGTERM], 120)\n")
    process = Child("parent", [sys.executable, "-c", parent], tmp_path / "parent.log")
    try:
        wait_until(lambda: "child done" in (read_text(process.log) or ""), [process], 120.0, "the child to end")
        own = process.cpu_seconds()
        tree = process.tree_cpu_seconds()
        assert own is not None and tree is not None
        assert tree - own > 0.3, (own, tree)  # the ended child's CPU (the loop takes about a second)
    finally:
        process.stop()
