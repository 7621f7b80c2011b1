#!/usr/bin/env bash
# Checks the files of deploy/ with the tools that understand them, where those tools are installed, and
# says which checks ran and which were skipped:
#   docker compose config      compose.yaml (with the example env files, every profile)
#   systemd-analyze verify     mentor-relay.service (ExecStart pointed at an installed mentor-relay)
#   caddy validate             Caddyfile (with example values for its environment placeholders)
# Exit status 1 when a check that ran failed. Usage: deploy/check.sh   (from anywhere)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$here"/. "$scratch"/
cp "$here/env.example" "$scratch/.env"
cp "$here/relay.env.example" "$scratch/relay.env"
cp "$here/postgres.env.example" "$scratch/postgres.env"
failed=0

say() { printf '%-26s %s\n' "$1" "$2"; }

if docker compose version >/dev/null 2>&1; then
    if out=$(cd "$scratch" && docker compose --profile postgres config --quiet 2>&1); then
        say "compose.yaml" "ok (docker compose config)"
    else
        say "compose.yaml" "FAILED (docker compose config):"; printf '%s\n' "$out"; failed=1
    fi
else
    say "compose.yaml" "skipped: docker compose is not installed"
fi

if command -v systemd-analyze >/dev/null 2>&1; then
    # verify checks that ExecStart exists: point it at an installed mentor-relay (the venv's, or the PATH's).
    binary=$(command -v mentor-relay || true)
    [ -x "$here/../.venv/bin/mentor-relay" ] && binary="$here/../.venv/bin/mentor-relay"
    if [ -z "$binary" ]; then
        say "mentor-relay.service" "skipped: no mentor-relay installed to point ExecStart at (make run first)"
    else
        sed "s#/opt/mentor-relay/bin/mentor-relay#$binary#g" "$here/mentor-relay.service" > "$scratch/mentor-relay.service"
        if out=$(cd "$scratch" && systemd-analyze verify ./mentor-relay.service 2>&1) && [ -z "$out" ]; then
            say "mentor-relay.service" "ok (systemd-analyze verify)"
        else
            say "mentor-relay.service" "FAILED (systemd-analyze verify):"; printf '%s\n' "$out"; failed=1
        fi
    fi
else
    say "mentor-relay.service" "skipped: systemd-analyze is not installed"
fi

if command -v caddy >/dev/null 2>&1; then
    if out=$(CONSOLE_DOMAIN=review.example.org CONSOLE_UPSTREAM=127.0.0.1:8025 \
             caddy validate --config "$here/Caddyfile" --adapter caddyfile 2>&1); then
        say "Caddyfile" "ok (caddy validate)"
    else
        say "Caddyfile" "FAILED (caddy validate):"; printf '%s\n' "$out"; failed=1
    fi
else
    say "Caddyfile" "skipped: caddy is not installed"
fi
exit $failed
