"""Images from the systems' data, cached by content hash, and docker-compose.yml: its images the data's, valid, and
every service healthy on a real engine with one task through each app."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import tools
from harness.backends.base import free_port
from harness.backends.docker import connect, containers, name_of
from harness.backends.images import (
    BASE_PACKAGES,
    Images,
    app_image,
    debian_packages,
    declared,
    ensure,
    inputs_hash,
    marker_extras,
    official,
)
from harness.model.paths import PROJECT_ROOT

SERVICES = {"net", "postgres", "mq", "broker", "toxiproxy", "hatchet-migrate", "hatchet-setup", "hatchet-engine",
            "hatchet-api", "ledger", "downstream", "native-api", "hatchet-app-api", "hatchet-worker-1",
            "hatchet-worker-2", "celery-app-api", "celery-worker-1"}
"""docker-compose.yml's services."""
ONE_SHOTS = ("hatchet-migrate", "hatchet-setup", "ledger")
"""Its services that run to completion."""
APPS = {"native": "NATIVE_PORT", "hatchet": "HATCHET_APP_PORT", "celery": "CELERY_APP_PORT"}
"""Each app and the variable of its published port."""


def test_inputs_hash_follows_content_and_args(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "a.txt").write_text("a")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    files = {"Dockerfile": dockerfile, "ctx": tmp_path / "ctx"}
    first = inputs_hash(files, {"X": "1"})
    assert inputs_hash(files, {"X": "1"}) == first
    assert inputs_hash(files, {"X": "2"}) != first
    (tmp_path / "ctx" / "a.txt").write_text("b")
    assert inputs_hash(files, {"X": "1"}) != first
    (tmp_path / "ctx" / "a.txt").write_text("a")
    (tmp_path / "ctx" / "b.txt").write_text("")
    assert inputs_hash(files, {"X": "1"}) != first


def test_compose_defaults_are_the_official_images_the_data_names() -> None:
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    defaults = dict(re.findall(r"\$\{(\w+_IMAGE):-([^}]+)\}", text))
    defaults.pop("HARNESS_APP_IMAGE"), defaults.pop("PYTHON_IMAGE")  # the apps' image is always built here
    expected = official().compose_env()
    assert set(defaults) <= set(expected), set(defaults) - set(expected)
    assert {k: expected[k] for k in defaults} == defaults
    # Every system server of the compared stack is in it (the engine's four programs, its queue, the broker).
    assert {"HATCHET_ENGINE_IMAGE", "HATCHET_API_IMAGE", "HATCHET_MQ_IMAGE", "CELERY_BROKER_IMAGE"} <= set(defaults)


def test_the_local_base_holds_every_system_debian_package() -> None:
    packages = debian_packages(declared())
    assert packages[:len(BASE_PACKAGES)] == list(BASE_PACKAGES)
    assert {"redis-server", "rabbitmq-server"} <= set(packages)
    assert len(packages) == len(set(packages))


def _compose(*args: str, env: dict[str, str], project: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tools.compose_bin()), "-f", str(PROJECT_ROOT / "docker-compose.yml"), "-p", project,
                           *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=PROJECT_ROOT)


@pytest.mark.docker
def test_compose_file_is_valid() -> None:
    proc = _compose("config", "--quiet", env=dict(os.environ), project="harness-config")
    assert proc.returncode == 0, proc.stderr
    services = _compose("config", "--services", env=dict(os.environ), project="harness-config").stdout.split()
    assert set(services) == SERVICES, services


@pytest.fixture
def compose_env(harness_docker_host: str) -> Iterator[tuple[dict[str, str], str]]:
    """Environment for docker-compose.yml with this engine's images and free ports; brings it down after."""
    client = connect(harness_docker_host)
    images: Images = ensure(client, print)
    ports = {k: str(free_port()) for k in (*APPS.values(), "HATCHET_API_PORT", "TOXIPROXY_PORT")}
    env = {**os.environ, "DOCKER_HOST": harness_docker_host, **images.compose_env(), **ports,
           "HARNESS_APP_IMAGE": app_image(client, images.base, print, with_code=True)}
    project = f"harness-test-{os.getpid()}"
    yield env, project
    down = _compose("down", "--volumes", "--remove-orphans", "--timeout", "10", env=env, project=project, timeout=180)
    flt = {"label": f"com.docker.compose.project={project}"}
    left = ([name_of(c) for c in containers(client, flt)]
            + [n.name for n in client.networks.list(filters=flt)] + [v.name for v in client.volumes.list(filters=flt)])
    assert down.returncode == 0 and left == [], (down.stderr[-2000:], left)


@pytest.mark.docker
def test_compose_up_wait_brings_every_service_healthy(compose_env: tuple[dict[str, str], str]) -> None:
    env, project = compose_env
    up = _compose("up", "--wait", "--no-build", "--wait-timeout", "300", env=env, project=project, timeout=400)
    ps = _compose("ps", "--all", "--format", "{{.Service}} {{.State}} {{.Health}}", env=env, project=project)
    print(ps.stdout)
    assert up.returncode == 0, up.stderr[-3000:]
    states = dict(line.split(" ", 1) for line in ps.stdout.strip().splitlines())
    assert set(states) == SERVICES, states
    for service, state in states.items():
        expected = ("running", "exited") if service in ONE_SHOTS else ("running",)
        assert state.split()[0] in expected, (service, state)
    # One task through each app, over the ports published on 127.0.0.1.
    for port in (env[variable] for variable in APPS.values()):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/tasks", method="POST",
                                     data=b'{"task_id": "compose-1", "kind": "sleep", "params": {}}',
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 202
    # ...and each ran: its effect is in that system's ledger (the compose stack's volume).
    count = ("import sqlite3, sys; print(*(sqlite3.connect(f'/ledger/{s}.db').execute(\"SELECT count(*) FROM events"
             f" WHERE task_id='compose-1' AND type='effect'\").fetchone()[0] for s in {tuple(APPS)!r}))")
    deadline, effects = time.monotonic() + 60, ""
    while time.monotonic() < deadline and effects != "1 1 1":
        effects = _compose("exec", "-T", "native-api", "python", "-c", count, env=env, project=project).stdout.strip()
        time.sleep(0.5)
    assert effects == "1 1 1", f"effects of compose-1 ({', '.join(APPS)}): {effects!r}"


def test_marker_extras_are_what_an_older_python_adds(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("redis==8.1.0\n")
    # redis asks for async-timeout below Python 3.11.3 only (Debian bookworm's python3 is 3.11.2).
    assert marker_extras("3.11.2", lock) == ["async-timeout>=4.0.3"]
    assert marker_extras("3.11.7", lock) == []
