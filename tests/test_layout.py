"""The layout keeps its promises (DESIGN.md, "The path of one message"), read from the source with `ast`.

* The pure steps — moderation's rules and policies, anonymisation, DKIM signing — import nothing that
  talks to the store, the network or the console, directly or through another relay module: that is
  what lets them run in worker processes.
* The CLI's command modules import the shared helpers from relay.cli.common and the domain packages,
  never relay.cli itself nor each other; nothing outside relay/cli imports the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

RELAY = Path(__file__).resolve().parent.parent / "relay"

PURE = [RELAY / "moderation", RELAY / "anonymize", RELAY / "dkim" / "signer.py", RELAY / "pipeline.py",
        RELAY / "archive" / "personal.py"]
# relay packages and modules a pure step must not reach
NOT_PURE = ("relay.store", "relay.inbound", "relay.console", "relay.holdqueue", "relay.notices", "relay.delivery",
            "relay.smtp", "relay.service", "relay.cli", "relay.nudges", "relay.senderauth")
# third-party and stdlib modules that do I/O: the store, SMTP, HTTP, DNS, processes
IO_MODULES = ("sqlalchemy", "aiosqlite", "asyncpg", "alembic", "aiosmtplib", "aiosmtpd", "starlette", "uvicorn",
              "apscheduler", "dns", "socket", "subprocess", "asyncio", "smtplib", "urllib.request", "http")


def module_name(path: Path) -> str:
    parts = path.relative_to(RELAY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_file(name: str) -> Path | None:
    base = RELAY.parent.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports (`from a.b import c` counts as a.b, and as a.b.c when that is a module)."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names
                         if module_file(f"{source}.{alias.name}") is not None)
    return found


def with_parents(name: str) -> list[str]:
    """relay.a.b is imported with relay.a (its package __init__ runs first)."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(2, len(parts) + 1)]


def reach(start: Path) -> dict[str, str]:
    """Every module `start` imports, directly or through relay modules, with the relay module that imports it."""
    seen: dict[str, str] = {}
    todo = [start]
    visited: set[Path] = set()
    for _ in range(10_000):  # bounded: the package has a few hundred modules
        if not todo:
            break
        path = todo.pop()
        if path in visited:
            continue
        visited.add(path)
        for name in imports_of(path):
            for each in with_parents(name) if name.startswith("relay.") else [name]:
                seen.setdefault(each, module_name(path))
                file = module_file(each) if each.startswith("relay.") else None
                if file is not None and file not in visited:
                    todo.append(file)
    return seen


def pure_files() -> list[Path]:
    files: list[Path] = []
    for entry in PURE:
        files.extend(sorted(entry.rglob("*.py")) if entry.is_dir() else [entry])
    return files


def test_the_pure_steps_reach_no_store_network_or_console() -> None:
    problems = []
    for path in pure_files():
        for name, importer in sorted(reach(path).items()):
            if name.startswith(NOT_PURE) or name.split(".")[0] in IO_MODULES or name in IO_MODULES:
                problems.append(f"{module_name(path)} reaches {name} (imported by {importer})")
    assert pure_files() and not problems, "\n".join(problems)


def test_cli_command_modules_import_only_the_common_helpers_of_the_cli() -> None:
    problems = []
    commands = [p for p in sorted((RELAY / "cli").glob("*.py")) if p.name != "__init__.py"]
    for path in commands:
        for name in imports_of(path):
            if (name == "relay.cli" or name.startswith("relay.cli.")) and name != "relay.cli.common":
                problems.append(f"{module_name(path)} imports {name}")
    for path in sorted(RELAY.rglob("*.py")):
        if (RELAY / "cli") in path.parents:
            continue
        if module_name(path) == "relay.__main__":  # `python -m relay` runs relay.cli.main
            continue
        problems.extend(f"{module_name(path)} imports {name}" for name in imports_of(path)
                        if name == "relay.cli" or name.startswith("relay.cli."))
    assert len(commands) >= 10 and not problems, "\n".join(problems)


def test_program_addresses_live_in_inbound_and_nudges_keeps_the_sweeps() -> None:
    nudges = {module_name(p) for p in (RELAY / "nudges").rglob("*.py")}
    for moved in ("away", "help", "exchange", "handlers", "addresses", "cli"):
        assert f"relay.nudges.{moved}" not in nudges
        if moved != "cli":
            assert module_file(f"relay.inbound.program.{moved}") is not None
    assert not (RELAY / "intake.py").exists() and module_file("relay.inbound.router") is not None
