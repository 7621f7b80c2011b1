"""`dkim keygen` (a signing key and its DNS record) and `dns-records` (every record the domain needs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from relay.cli.common import CliError, emit, listing
from relay.config import Settings
from relay.dkim import keys as dkim_keys
from relay.dkim.records import dkim_record, required_records


def cmd_dkim_keygen(args: argparse.Namespace, settings: Settings) -> int:
    try:
        selector = dkim_keys.check_selector(args.selector)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    path = Path(args.out).resolve() if args.out else settings.base_dir / "dkim" / f"{selector}.pem"
    key = dkim_keys.generate(args.algorithm)
    try:
        dkim_keys.write_private(key, path)
    except FileExistsError:
        raise CliError(f"{path} already exists and is left as it is (it may sign mail now): "
                       "choose another --selector or --out") from None
    record = dkim_record(settings.relay.domain, selector, key)
    data = {"selector": selector, "private_key": str(path), "record_name": record.name, "record_value": record.value}
    emit(args, data, "\n".join([
        f"wrote the {dkim_keys.describe(key)} private key to {path} (mode 0600)",
        "1. publish this DNS record (zone-file syntax; in a web form the value goes without the quotes):",
        f"   {record.zone_line()}",
        "2. once it resolves, set in relay.yaml and restart the relay:",
        f"   dkim: {{selector: {selector}, private_key: {_config_relative(settings, path)}}}",
    ]))
    return 0


def _config_relative(settings: Settings, path: Path) -> str:
    """How relay.yaml names `path`: relative to its folder when inside it."""
    return str(path.relative_to(settings.base_dir)) if path.is_relative_to(settings.base_dir) else str(path)


def cmd_dns_records(args: argparse.Namespace, settings: Settings) -> int:
    records = required_records(settings)
    lines = [f"; DNS records for {settings.relay.domain}, ready to paste into its zone"]
    for record in records:
        lines.append(f"; {record.note}")
        line = record.zone_line()
        if line is not None:
            lines.append(line)
    emit(args, [r.as_dict() for r in records], "\n".join(lines))
    return 0


def register(commands: Any) -> None:
    dkim = commands.add_parser("dkim").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    keygen = listing(dkim.add_parser("keygen", help="make a signing key and print its DNS record"))
    keygen.add_argument("--selector", required=True, help="names the key in DNS; a new key gets a new selector")
    keygen.add_argument("--algorithm", choices=["rsa", "ed25519"], default="rsa",
                        help="rsa (2048 bits, verified everywhere; default) or ed25519")
    keygen.add_argument("--out", metavar="PATH",
                        help="the private key file (default: <config dir>/dkim/<selector>.pem)")
    keygen.set_defaults(func=cmd_dkim_keygen)
    listing(commands.add_parser("dns-records")).set_defaults(func=cmd_dns_records)
