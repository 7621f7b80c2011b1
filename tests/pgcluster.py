"""A throw-away PostgreSQL cluster on a loopback port, for the tests (and CI) on a machine without a server.

It uses the Debian `postgresql` package's binaries (/usr/lib/postgresql/<version>/bin): `initdb` writes a
cluster into a fresh temporary directory, `pg_ctl` starts it on 127.0.0.1 and a free port (no Unix
socket, no system service, nothing outside that directory), and `stop` shuts it down and removes the
directory. PostgreSQL refuses to run as root, so when the caller is root the cluster belongs to the
`postgres` system user (the Debian package creates it) and its commands run through `runuser`.
The cluster trades durability for speed (fsync off): it holds nothing but test data.

As a module:
    python -m tests.pgcluster start DIR          # prints the server URL (postgresql://...)
    python -m tests.pgcluster stop DIR           # stops it and removes DIR
    python -m tests.pgcluster run -- CMD ARG...  # CMD with MENTOR_RELAY_TEST_DATABASE set; stopped after
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "relaytest"
PASSWORD = "relaytest"
INSTALL_HINT = ("PostgreSQL's server binaries are missing: install Debian's `postgresql` package "
                "(apt-get install postgresql), which provides /usr/lib/postgresql/<version>/bin/initdb and pg_ctl")


class ClusterError(RuntimeError):
    """The cluster could not be created or started; the message says why."""


def server_binaries() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl, or None."""
    found = []
    for directory in Path("/usr/lib/postgresql").glob("*/bin"):
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            with contextlib.suppress(ValueError):
                found.append((int(directory.parent.name.split(".")[0]), directory))
    return max(found)[1] if found else None


def _as_owner() -> list[str]:
    """The command prefix that runs a server command as the cluster's owner."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ClusterError("running as root, and there is no `postgres` user to own the cluster "
                           "(Debian's postgresql package creates it)") from exc
    return ["runuser", "-u", "postgres", "--"]


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Cluster:
    directory: Path

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url_file(self) -> Path:
        return self.directory / "url"

    @property
    def url(self) -> str:
        return self.url_file.read_text().strip()

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*_as_owner(), *command], capture_output=True, text=True, timeout=timeout,
                              cwd=self.directory, check=False)

    def start(self, attempts: int = 5) -> str:
        """initdb + pg_ctl start; returns the URL of the `postgres` database as user relaytest."""
        binaries = server_binaries()
        if binaries is None:
            raise ClusterError(INSTALL_HINT)
        self.directory.mkdir(parents=True, exist_ok=True)
        owner = _as_owner()
        if owner:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.directory, postgres.pw_uid, postgres.pw_gid)
        password_file = self.directory / "password"
        password_file.write_text(PASSWORD + "\n")
        password_file.chmod(0o600)
        if owner:
            os.chown(password_file, pwd.getpwnam("postgres").pw_uid, -1)
        made = self._run(str(binaries / "initdb"), "-D", str(self.data), "-U", USER, "-A", "scram-sha-256",
                         f"--pwfile={password_file}", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", timeout=120)
        if made.returncode != 0:
            raise ClusterError(f"initdb failed:\n{made.stdout}{made.stderr}")
        settings = ("listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 400\n"
                    "shared_buffers = 64MB\nlog_min_messages = warning\n")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)
        log = self.directory / "server.log"
        for _ in range(attempts):  # a port that was free when probed can be taken before the server binds it
            port = random.randrange(20000, 32000)  # below the kernel's ephemeral range: no outgoing socket has it
            if not _port_is_free(port):
                continue
            started = self._run(str(binaries / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "60",
                                "-o", f"-p {port}", "start", timeout=90)
            if started.returncode == 0:
                url = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
                self.url_file.write_text(url + "\n")
                return url
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise ClusterError(f"pg_ctl could not start the cluster in {self.data}:\n{tail}")

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are ended) and remove the directory."""
        binaries = server_binaries()
        if binaries is not None and (self.data / "postmaster.pid").exists():
            stopped = self._run(str(binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop",
                                timeout=60)
            if stopped.returncode != 0:
                print(f"pg_ctl stop: {stopped.stderr.strip()}", file=sys.stderr)
        shutil.rmtree(self.directory, ignore_errors=True)


def new_directory() -> Path:
    """A fresh temporary directory for a cluster (outside any 0700 directory of root's)."""
    return Path(tempfile.mkdtemp(prefix="mentor-relay-pg-"))


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] in ("start", "stop"):
        cluster = Cluster(Path(argv[1]))
        try:
            if argv[0] == "start":
                print(cluster.start())
            else:
                cluster.stop()
        except ClusterError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    if len(argv) >= 3 and argv[0] == "run" and argv[1] == "--":
        cluster = Cluster(new_directory())
        try:
            url = cluster.start()
        except ClusterError as exc:
            cluster.stop()
            print(f"error: {exc}", file=sys.stderr)
            return 1
        child = subprocess.Popen(argv[2:], env={**os.environ, "MENTOR_RELAY_TEST_DATABASE": url})
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # pass them on; the finally stops the cluster
            signal.signal(sig, lambda number, _frame: child.send_signal(number))
        try:
            return child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            cluster.stop()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

