"""Pinned server binaries: where they are, and how set-up builds them from the Go module proxy.

Builds go into a per-user cache keyed by tool and version (``~/.cache/harness-tools``), which a
clean checkout reuses, and the project-local ``.tools/`` links to them. Nothing is rebuilt
unless the pinned version changes. ``python -m harness.tools`` is what ``make tools`` runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.spec import PROJECT_ROOT

HATCHET_VERSION = "v0.105.0"
"""Hatchet engine tag; its repository's sdks/python at this tag is hatchet-sdk 1.38.0, which we pin."""
HATCHET_MODULE = "github.com/hatchet-dev/hatchet"
HATCHET_COMMANDS = ("hatchet-engine", "hatchet-api", "hatchet-migrate", "hatchet-admin")
LOADTEST_COMMAND = "hatchet-loadtest"
"""Hatchet's own load tester (Go client and worker), built from the same module and tag: the engine's ceiling."""
TOXIPROXY_VERSION = "v2.12.0"
"""Toxiproxy server tag."""
TOXIPROXY_PACKAGE = "github.com/Shopify/toxiproxy/v2/cmd/server"

TOOLS_DIR = Path(os.environ.get("HARNESS_TOOLS_DIR", PROJECT_ROOT / ".tools"))
"""Project-local tools directory (links into the cache)."""
CACHE_DIR = Path(os.environ.get("HARNESS_TOOLS_CACHE", Path.home() / ".cache" / "harness-tools"))
"""Per-user build cache shared by every checkout."""


class ToolMissing(RuntimeError):
    """A pinned binary is not built; the message says how to build it."""


def _tool_dir(tool: str, version: str) -> Path:
    return TOOLS_DIR / f"{tool}-{version}"


def hatchet_bin(name: str) -> Path:
    """Path of a pinned Hatchet binary (one of :data:`HATCHET_COMMANDS`, or :data:`LOADTEST_COMMAND`)."""
    tool = "hatchet-loadtest" if name == LOADTEST_COMMAND else "hatchet"  # cached apart: older caches stay valid
    return _require(_tool_dir(tool, HATCHET_VERSION) / "bin" / name)


def toxiproxy_bin() -> Path:
    """Path of the pinned Toxiproxy server binary."""
    return _require(_tool_dir("toxiproxy", TOXIPROXY_VERSION) / "bin" / "server")


def _require(path: Path) -> Path:
    if not path.is_file():
        raise ToolMissing(f"{path.name} {path.parent.parent.name} is not built: run `make tools`")
    return path


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolMissing("Go is not on PATH: install Go 1.26 or newer (https://go.dev/dl) and run again")
    return go


def _run_with_heartbeat(what: str, argv: list[str], cwd: Path | None, env: dict[str, str]) -> None:
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


def _build(tool: str, version: str, build: Callable[[Path], None], binaries: tuple[str, ...]) -> None:
    cached = CACHE_DIR / f"{tool}-{version}"
    stamp = cached / ".complete"
    if not stamp.exists() or not all((cached / "bin" / b).is_file() for b in binaries):
        print(f"building {tool} {version} from the Go module proxy into {cached} (cold: a few minutes)", flush=True)
        t0 = time.monotonic()
        if cached.exists():
            shutil.rmtree(cached)
        (cached / "bin").mkdir(parents=True)
        build(cached / "bin")
        stamp.write_text(json.dumps({"version": version, "built_at": time.time()}))
        print(f"built {tool} {version} in {time.monotonic() - t0:.0f}s", flush=True)
    link = _tool_dir(tool, version)
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() == cached.resolve():
            return
        if link.is_symlink() or link.is_file():
            link.unlink()
        else:
            shutil.rmtree(link)
    link.symlink_to(cached, target_is_directory=True)


def _go_env() -> dict[str, str]:
    # Pure-Go builds: no C compiler needed, and the binaries do not depend on the host's libc.
    return {**os.environ, "CGO_ENABLED": "0"}


def build_hatchet(out: Path, commands: tuple[str, ...] = HATCHET_COMMANDS) -> None:
    """Build the engine, REST API, migrator and admin CLI (or other commands of the module) at the pinned tag,
    with its version stamped in."""
    go, env = _go(), _go_env()
    # `go install module/cmd@tag` needs the module's version list, which the proxy here refuses;
    # downloading the exact version and building inside it needs only that version.
    proc = subprocess.run([go, "mod", "download", "-json", f"{HATCHET_MODULE}@{HATCHET_VERSION}"],
                          env=env, capture_output=True, text=True)
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Dir" not in info:
        why = info.get("Error") or proc.stderr.strip()
        raise ToolMissing(f"cannot download {HATCHET_MODULE}@{HATCHET_VERSION}: {why}")
    _run_with_heartbeat(
        f"compiling {', '.join(commands)} {HATCHET_VERSION}",
        [go, "build", "-trimpath", "-ldflags", f"-X main.Version={HATCHET_VERSION}", "-o", f"{out}/",
         *[f"./cmd/{c}" for c in commands]],
        cwd=Path(info["Dir"]), env=env,
    )


def build_toxiproxy(out: Path) -> None:
    """Build the Toxiproxy server at the pinned tag."""
    _run_with_heartbeat(
        f"compiling toxiproxy {TOXIPROXY_VERSION}",
        [_go(), "install", f"{TOXIPROXY_PACKAGE}@{TOXIPROXY_VERSION}"],
        cwd=None, env={**_go_env(), "GOBIN": str(out)},
    )


def ensure_all() -> None:
    """Build whatever pinned binary is missing (quick when everything is cached)."""
    _build("hatchet", HATCHET_VERSION, build_hatchet, HATCHET_COMMANDS)
    _build("hatchet-loadtest", HATCHET_VERSION, lambda out: build_hatchet(out, (LOADTEST_COMMAND,)),
           (LOADTEST_COMMAND,))
    _build("toxiproxy", TOXIPROXY_VERSION, build_toxiproxy, ("server",))


def main() -> int:
    """Entry point of ``make tools``."""
    try:
        ensure_all()
    except ToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"tools ready: hatchet {HATCHET_VERSION} (and its loadtest), toxiproxy {TOXIPROXY_VERSION} in {TOOLS_DIR}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
