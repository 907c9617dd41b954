"""Pinned server binaries: where they are, and how set-up builds them from the Go module proxy.

Builds go into a per-user cache keyed by tool and version (``~/.cache/harness-tools``), which a
clean checkout reuses, and the project-local ``.tools/`` links to them. Nothing is rebuilt
unless the pinned version changes. ``python -m harness.tools`` is what ``make tools`` runs: the
harness's own (Toxiproxy), then each system's ``setup`` hook of its system.toml (Hatchet's engine:
``apps/hatchet/tools.py``), which builds with the helpers here.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.model.paths import PROJECT_ROOT
from harness.model.spec import find_systems

TOXIPROXY_VERSION = "v2.12.0"
"""Toxiproxy server tag."""
TOXIPROXY_PACKAGE = "github.com/Shopify/toxiproxy/v2/cmd/server"
TOXIPROXY_CLI_PACKAGE = "github.com/Shopify/toxiproxy/v2/cmd/cli"
COMPOSE_VERSION = "v2.40.3"
"""Docker Compose v2 tag (the Docker tier's `docker compose`, built like Hatchet)."""
COMPOSE_MODULE = "github.com/docker/compose/v2"

TOOLS_DIR = Path(os.environ.get("HARNESS_TOOLS_DIR", PROJECT_ROOT / ".tools"))
"""Project-local tools directory (links into the cache)."""
CACHE_DIR = Path(os.environ.get("HARNESS_TOOLS_CACHE", Path.home() / ".cache" / "harness-tools"))
"""Per-user build cache shared by every checkout."""


class ToolMissing(RuntimeError):
    """A pinned binary is not built; the message says how to build it."""


def tool_dir(tool: str, version: str) -> Path:
    return TOOLS_DIR / f"{tool}-{version}"


def toxiproxy_bin() -> Path:
    """Path of the pinned Toxiproxy server binary."""
    return require(tool_dir("toxiproxy", TOXIPROXY_VERSION) / "bin" / "server")


def toxiproxy_cli_bin() -> Path:
    """Path of the pinned Toxiproxy CLI (the Toxiproxy image's health check)."""
    return require(tool_dir("toxiproxy-cli", TOXIPROXY_VERSION) / "bin" / "cli")


def compose_bin() -> Path:
    """Path of the pinned Docker Compose v2 binary (runs standalone, as ``docker-compose``)."""
    return require(tool_dir("compose", COMPOSE_VERSION) / "bin" / "docker-compose")


def require(path: Path) -> Path:
    if not path.is_file():
        raise ToolMissing(f"{path.name} {path.parent.parent.name} is not built: run `make tools`")
    return path


def go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolMissing("Go is not on PATH: install Go 1.26 or newer (https://go.dev/dl) and run again")
    return go


def run_with_heartbeat(what: str, argv: list[str], cwd: Path | None, env: dict[str, str]) -> None:
    """Run a long command, printing a line every 15 s so a cold build never looks like a hang."""
    t0 = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(15):
            print(f"  ... still {what} ({time.monotonic() - t0:.0f}s)", flush=True)

    threading.Thread(target=beat, daemon=True).start()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    finally:
        done.set()
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ToolMissing(f"{what} failed (exit {proc.returncode}):\n{tail}")


def build(tool: str, version: str, make: Callable[[Path], None], binaries: tuple[str, ...]) -> None:
    """Build ``binaries`` of tool at version with make(bin_dir) into the cache unless there; link it from .tools/."""
    cached = CACHE_DIR / f"{tool}-{version}"
    stamp = cached / ".complete"
    if not stamp.exists() or not all((cached / "bin" / b).is_file() for b in binaries):
        print(f"building {tool} {version} from the Go module proxy into {cached} (cold: a few minutes)", flush=True)
        t0 = time.monotonic()
        if cached.exists():
            shutil.rmtree(cached)
        (cached / "bin").mkdir(parents=True)
        make(cached / "bin")
        stamp.write_text(json.dumps({"version": version, "built_at": time.time()}))
        print(f"built {tool} {version} in {time.monotonic() - t0:.0f}s", flush=True)
    link = tool_dir(tool, version)
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() == cached.resolve():
            return
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:
            shutil.rmtree(link)
    link.symlink_to(cached, target_is_directory=True)


def go_env() -> dict[str, str]:
    # Pure-Go builds: no C compiler needed, and the binaries do not depend on the host's libc.
    return {**os.environ, "CGO_ENABLED": "0"}


def download_module(module: str, version: str) -> Path:
    """Source directory of module@version (``go install module/cmd@tag`` needs the module's version list,
    which the proxy here refuses; downloading the exact version and building inside it needs only that one)."""
    proc = subprocess.run([go(), "mod", "download", "-json", f"{module}@{version}"],
                          env=go_env(), capture_output=True, text=True)
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Dir" not in info:
        why = info.get("Error") or proc.stderr.strip()
        raise ToolMissing(f"cannot download {module}@{version}: {why}")
    return Path(info["Dir"])


def build_toxiproxy(out: Path) -> None:
    """Build the Toxiproxy server at the pinned tag."""
    run_with_heartbeat(
        f"compiling toxiproxy {TOXIPROXY_VERSION}",
        [go(), "install", f"{TOXIPROXY_PACKAGE}@{TOXIPROXY_VERSION}"],
        cwd=None, env={**go_env(), "GOBIN": str(out)},
    )


def build_toxiproxy_cli(out: Path) -> None:
    """Build the Toxiproxy CLI at the pinned tag."""
    run_with_heartbeat(
        f"compiling toxiproxy-cli {TOXIPROXY_VERSION}",
        [go(), "install", f"{TOXIPROXY_CLI_PACKAGE}@{TOXIPROXY_VERSION}"],
        cwd=None, env={**go_env(), "GOBIN": str(out)},
    )


def build_compose(out: Path) -> None:
    """Build Docker Compose v2 at the pinned tag (its dependencies are pinned by its own go.sum)."""
    run_with_heartbeat(
        f"compiling docker compose {COMPOSE_VERSION}",
        [go(), "build", "-trimpath", "-ldflags", f"-X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}",
         "-o", f"{out}/docker-compose", "./cmd"],
        cwd=download_module(COMPOSE_MODULE, COMPOSE_VERSION), env=go_env(),
    )


def ensure_toxiproxy_cli() -> None:
    """Build the Toxiproxy CLI if missing (the local Toxiproxy image needs it)."""
    build("toxiproxy-cli", TOXIPROXY_VERSION, build_toxiproxy_cli, ("cli",))


def ensure_docker_tools() -> None:
    """What the Docker tier builds beyond :func:`ensure_all`: the Toxiproxy CLI and Docker Compose."""
    ensure_toxiproxy_cli()
    build("compose", COMPOSE_VERSION, build_compose, ("docker-compose",))


def system_setups() -> list[tuple[str, Callable[[], str]]]:
    """Each system's ``setup`` hook (``module:function`` in its system.toml), by system name."""
    out = []
    for spec in find_systems().values():
        if spec.setup and not spec.base:
            module, _, func = spec.setup.partition(":")
            out.append((spec.name, getattr(importlib.import_module(module), func)))
    return out


def ensure_all() -> list[str]:
    """Build whatever pinned binary is missing (quick when everything is cached); what was made ready, in words."""
    build("toxiproxy", TOXIPROXY_VERSION, build_toxiproxy, ("server",))
    return [f"toxiproxy {TOXIPROXY_VERSION}", *(setup() for _, setup in system_setups())]


def main() -> int:
    """Entry point of ``make tools`` (``--docker``: also the Docker tier's, for ``make docker-setup``)."""
    docker = "--docker" in sys.argv[1:]
    try:
        ready = ensure_all()
        if docker:
            ensure_docker_tools()
            ready += [f"toxiproxy-cli {TOXIPROXY_VERSION}", f"compose {COMPOSE_VERSION}"]
    except ToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"tools ready in {TOOLS_DIR}: {', '.join(ready)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
