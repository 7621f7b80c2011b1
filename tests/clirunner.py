"""Runs `mentor-relay ARGS` as a real process for the tests, without paying Python's start-up each time.

Starting `python -m relay` costs about a second of CPU, nearly all of it importing the relay and its
libraries; the suite runs the command line several hundred times. So each test process keeps one
helper process (a "zygote") that has imported the relay once and waits on a Unix socket. For every
command it forks: the fork is a separate process with its own stdin, stdout, stderr (files handed over
the socket), working directory, environment and argv, runs the real entry point (`python -m relay`'s
__main__) and exits with its status, exactly as a fresh interpreter would, minus the imports. Nothing
of one command survives into the next: every command forks from the same untouched helper.

MENTOR_RELAY_TEST_CLI=exec turns this off (every command a fresh `python -m relay`); so does any failure
to start the helper.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

_STATUS = struct.Struct("!ii")  # (pid, 0) once forked, then (pid, wait status)


# --- the helper process ------------------------------------------------------------------------------


def _run_command(connection: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    """In the forked child: become the command, run it, exit with its status (never returns)."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        connection.close()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [sys.executable, *request["args"]]  # as `python -m relay` sees them (argv[0] aside)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import runpy

        try:
            runpy.run_module("relay", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # what the interpreter would print on an uncaught exception
            import traceback

            traceback.print_exc()
            code = 1
        import threading as _threading

        with contextlib.suppress(Exception):
            _threading._shutdown()  # type: ignore[attr-defined]  # join non-daemon threads, as at exit
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code & 0xFF)


def _handle(connection: socket.socket) -> None:
    """In a forked handler: read one request, fork the command, report its pid and then its status."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    message, fds, _flags, _address = socket.recv_fds(connection, 1 << 20, 3)
    request = json.loads(message.decode())
    pid = os.fork()
    if pid == 0:
        _run_command(connection, fds, request)
    for fd in fds:
        os.close(fd)
    connection.sendall(_STATUS.pack(pid, 0))
    _, status = os.waitpid(pid, 0)
    connection.sendall(_STATUS.pack(pid, status))


def serve(path: str, parent: int) -> None:
    """The helper's loop: import the relay once, then fork a handler per connection."""
    import importlib

    import relay.cli

    for name in relay.cli.MODULES:  # the commands' modules (the CLI imports only the one it runs)
        importlib.import_module(f"relay.cli.{name}")

    with contextlib.suppress(ImportError):
        import relay.service

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.settimeout(1.0)
    print("ready", flush=True)
    while os.getppid() == parent:  # the test process went away: so do we
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        connection.settimeout(None)
        if os.fork() == 0:
            listener.close()
            try:
                _handle(connection)
            finally:
                os._exit(0)
        connection.close()


# --- the test side -----------------------------------------------------------------------------------


class _Zygote:
    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="mentor-relay-cli-")
        self.path = os.path.join(self.directory, "socket")
        repo = str(Path(__file__).resolve().parent.parent)
        self.process = subprocess.Popen(
            [sys.executable, "-c", f"from tests.clirunner import serve; serve({self.path!r}, {os.getpid()})"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=repo,
            env={**os.environ, "PYTHONPATH": repo},
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != b"ready":
            raise RuntimeError("the command-line helper did not start")

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(self.directory)


_zygote: _Zygote | None = None
_zygote_failed = False
_lock = threading.Lock()


def _get_zygote() -> _Zygote | None:
    global _zygote, _zygote_failed
    with _lock:
        if _zygote is None and not _zygote_failed:
            try:
                _zygote = _Zygote()
                atexit.register(_zygote.close)
            except (OSError, RuntimeError):
                _zygote_failed = True
        return _zygote


def run(args: list[str], *, cwd: Path, env: dict[str, str], stdin: str | None,
        timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m relay ARGS` with `stdin` as input; stdout and stderr captured as text (subprocess.run's
    contract, TimeoutExpired included)."""
    command = [sys.executable, "-m", "relay", *args]
    zygote = None if os.environ.get("MENTOR_RELAY_TEST_CLI") == "exec" else _get_zygote()
    if zygote is None:
        return subprocess.run(command, capture_output=True, text=True, input=stdin, timeout=timeout, cwd=cwd,
                              env=env)
    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        if stdin is not None:
            given.write(stdin.encode())
            given.seek(0)
        connection.settimeout(timeout)
        connection.connect(zygote.path)
        request = json.dumps({"args": args, "cwd": str(cwd), "env": env}).encode()
        socket.send_fds(connection, [request], [given.fileno(), out.fileno(), err.fileno()])
        pid = _read_status(connection)[0]
        try:
            _, status = _read_status(connection)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(command, timeout) from None
        return subprocess.CompletedProcess(command, os.waitstatus_to_exitcode(status), _text(out), _text(err))


def _text(captured: Any) -> str:
    """What subprocess.run(text=True) makes of a captured stream: decoded, universal newlines (bytes that are
    not UTF-8, such as a Latin-1 file name the command echoes, kept as surrogate escapes, as Python reads them)."""
    captured.seek(0)
    return str(captured.read().decode("utf-8", "surrogateescape")).replace("\r\n", "\n").replace("\r", "\n")


def _read_status(connection: socket.socket) -> tuple[int, int]:
    data = b""
    while len(data) < _STATUS.size:
        chunk = connection.recv(_STATUS.size - len(data))
        if not chunk:
            raise RuntimeError("the command-line helper closed the connection")
        data += chunk
    pid, status = _STATUS.unpack(data)
    return int(pid), int(status)

