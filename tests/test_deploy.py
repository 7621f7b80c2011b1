"""deploy/ as far as this machine can check it: the compose file parses and runs the relay behind Caddy
(the official image) with PostgreSQL as a profile; the systemd unit passes `systemd-analyze verify`; the
Caddyfile serves the console and keeps /metrics in; relay.production.yaml passes `check-config` with no
warning once its paths point at a scratch folder; deploy/check.sh runs the checks whose tools exist and
says which it skipped. (`docker compose config` and `caddy validate` run in deploy/check.sh where installed.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import REPO, Layout, cli

DEPLOY = REPO / "deploy"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"


def test_compose_runs_the_relay_behind_caddy_with_postgres_as_an_option() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"relay", "caddy", "postgres"}
    relay, caddy, postgres = services["relay"], services["caddy"], services["postgres"]
    assert relay["ports"] == ["127.0.0.1:2525:2525"] and relay["expose"] == ["8025"]  # console: not published
    assert caddy["image"].startswith("caddy:") and {"80:80", "443:443"} <= set(caddy["ports"])
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert caddy["environment"]["CONSOLE_UPSTREAM"] == "relay:8025"
    assert "CONSOLE_DOMAIN" in caddy["environment"]["CONSOLE_DOMAIN"]  # required from deploy/.env
    assert postgres["profiles"] == ["postgres"] and postgres["image"].startswith("postgres:")
    for volume in ("relay-data", "caddy-data", "postgres-data"):
        assert volume in compose["volumes"]
    # The console trusts exactly Caddy's fixed address for X-Forwarded-For (relay.production.yaml says so).
    caddy_address = caddy["networks"]["relay"]["ipv4_address"]
    assert f'compose: ["{caddy_address}/32"]' in (DEPLOY / "relay.production.yaml").read_text()
    for example in ("env.example", "relay.env.example", "postgres.env.example"):
        assert (DEPLOY / example).is_file(), example
    assert "[postgres]" in (DEPLOY / "Dockerfile").read_text()  # the image has the asyncpg driver


def test_the_caddyfile_serves_the_console_and_keeps_metrics_in() -> None:
    text = (DEPLOY / "Caddyfile").read_text()
    body = re.sub(r"#.*", "", text)
    assert body.count("{$CONSOLE_DOMAIN} {") == 1 and body.count("{") == body.count("}")
    assert "reverse_proxy {$CONSOLE_UPSTREAM}" in body
    assert "respond /metrics 404" in body
    assert re.search(r"^\s*tls\s", body, re.M) is None  # automatic HTTPS: no certificate files to manage


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    installed = Path(sys.executable).parent / "mentor-relay"
    assert installed.is_file(), "the package's console script (pip install -e .)"
    unit = (DEPLOY / "mentor-relay.service").read_text().replace("/opt/mentor-relay/bin/mentor-relay", str(installed))
    (tmp_path / "mentor-relay.service").write_text(unit)
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", "./mentor-relay.service"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
    broken = unit.replace("ProtectSystem=strict", "ProtectSystem=strict\nProtectConsole=yes")
    (tmp_path / "mentor-relay.service").write_text(broken)  # the check can fail: an unknown key is reported
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", "./mentor-relay.service"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert "Unknown key" in result.stderr


def test_check_script_runs_what_it_can_and_names_what_it_skipped() -> None:
    result = subprocess.run(["bash", str(DEPLOY / "check.sh")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines["mentor-relay.service"] == "ok (systemd-analyze verify)"
    assert lines["compose.yaml"] in ("ok (docker compose config)", "skipped: docker compose is not installed")
    expected_caddy = "ok (caddy validate)" if shutil.which("caddy") else "skipped: caddy is not installed"
    assert lines["Caddyfile"] == expected_caddy


def test_the_production_config_passes_check_config_without_warnings(layout: Layout, tmp_path: Path) -> None:
    """relay.production.yaml with /var/lib/mentor-relay moved to a scratch folder, its DKIM key made there."""
    root = tmp_path / "etc"
    data = tmp_path / "var"
    (root / "programs").mkdir(parents=True)
    shutil.copytree(REPO / "policies", root / "policies")
    shutil.copy(layout.root / "programs" / "stem.yaml", root / "programs" / "stem.yaml")
    config = root / "relay.yaml"
    text = (DEPLOY / "relay.production.yaml").read_text().replace("/var/lib/mentor-relay", str(data))
    text = re.sub(r"^database: .*$", f"database: sqlite:///{data}/relay.db", text, flags=re.M)
    config.write_text(text)
    production = Layout(root=root, smtp_port=0, sink_port=None)
    keygen = cli(production, "dkim", "keygen", "--selector", "2026a", "--out", str(data / "dkim" / "2026a.pem"))
    assert keygen.returncode == 0, keygen.stderr
    checked = cli(production, "check-config")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == "" and "OK (1 programs, domain relay.example.org)" in checked.stdout
    settings = yaml.safe_load(text)["console"]
    assert settings["public_url"].startswith("https://") and settings["enabled"] is True
