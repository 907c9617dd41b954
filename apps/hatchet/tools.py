"""Hatchet's pinned binaries: the engine, its REST API, migrations, admin CLI and load tester.

Built by ``make tools`` (this module's :func:`ensure`, the ``setup`` hook of system.toml) from the
official Go module at the pinned tag, with the harness's Go helpers (:mod:`harness.tools`).
"""

from __future__ import annotations

from pathlib import Path

from harness import tools

VERSION = "v0.105.0"
"""Engine tag; its repository's sdks/python at this tag is hatchet-sdk 1.38.0. We pin hatchet-sdk 1.43.1 (PyPI's newest,
which works with this engine; 1.38.0 stays a findings axis). The Go module proxy refuses every newer engine tag,
so the engine stays here (README: Pinned versions)."""
MODULE = "github.com/hatchet-dev/hatchet"
"""The official Go module."""
COMMANDS = ("hatchet-engine", "hatchet-api", "hatchet-migrate", "hatchet-admin")
"""The engine's programs."""
LOADTEST = "hatchet-loadtest"
"""Hatchet's own load tester (Go client and worker), built from the same module and tag: the engine's ceiling."""


def bin_path(name: str, built: bool = True) -> Path:
    """Path of a pinned Hatchet binary (one of :data:`COMMANDS`, or :data:`LOADTEST`); ToolMissing unless it is built
    (``built=False``: where it would be, for a backend that finds the program in an image by its name)."""
    tool = "hatchet-loadtest" if name == LOADTEST else "hatchet"  # cached apart: older caches stay valid
    path = tools.tool_dir(tool, VERSION) / "bin" / name
    return tools.require(path) if built else path


def build(out: Path, commands: tuple[str, ...] = COMMANDS) -> None:
    """Build commands of the module at the pinned tag, with its version stamped in (so the SDK sees a modern
    engine). ``go install module/cmd@tag`` would need the module's version list, which the proxy refuses."""
    tools.run_with_heartbeat(
        f"compiling {', '.join(commands)} {VERSION}",
        [tools.go(), "build", "-trimpath", "-ldflags", f"-X main.Version={VERSION}", "-o", f"{out}/",
         *[f"./cmd/{c}" for c in commands]],
        cwd=tools.download_module(MODULE, VERSION), env=tools.go_env(),
    )


def ensure() -> str:
    """Build whatever is missing (quick when cached); what is ready, in words."""
    tools.build("hatchet", VERSION, build, COMMANDS)
    tools.build("hatchet-loadtest", VERSION, lambda out: build(out, (LOADTEST,)), (LOADTEST,))
    return f"hatchet {VERSION} (and its loadtest)"
