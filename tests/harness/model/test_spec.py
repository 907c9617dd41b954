"""harness/model/spec.py: system.toml, a run's planned processes and links, and not_applicable."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.backends.base import Health
from harness.model.fault import Fault
from harness.model.links import match_links
from harness.model.paths import APPS_DIR
from harness.model.spec import (
    ProcessTemplate,
    SpecError,
    SystemSpec,
    find_systems,
    not_applicable,
    selections,
)
from harness.servers.command import health_of


@pytest.fixture(scope="module")
def systems() -> dict[str, SystemSpec]:
    return find_systems()


def write_spec(root: Path, name: str, body: str) -> Path:
    path = root / name / "system.toml"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(body))
    return path


MINIMAL = """
name = "{name}"
[[process]]
name = "api"
roles = ["api"]
command = ["{{python}}", "-m", "app", "--port", "{{port}}"]
"""


# ---- the real specs -----------------------------------------------------------------------------


def test_find_systems_loads_native_and_hatchet(systems: dict[str, SystemSpec]) -> None:
    assert list(systems) == ["native", "calibration", "celery", "celery-defaults", "celery-fsync", "hatchet",
                             "hatchet-naive", "hatchet-lite"]
    for name, spec in systems.items():
        assert spec.name == name
        assert spec.path == APPS_DIR / (spec.base or name) / "system.toml"
        assert spec.description


def test_a_variant_is_its_system_with_its_params_and_env(systems: dict[str, SystemSpec]) -> None:
    naive = systems["hatchet-naive"]
    assert (naive.base, naive.params) == ("hatchet", {"trigger_threads": 0})
    assert naive.processes == systems["hatchet"].processes  # no env of its own: only its params differ
    assert not naive.variants and not systems["hatchet"].params


def test_native_spec(systems: dict[str, SystemSpec]) -> None:
    native = systems["native"]
    assert native.servers == ()
    (api,) = native.processes
    assert api.name == "api"
    assert set(api.roles) == {"api", "worker"}
    assert api.instance_names() == ["api"]
    assert api.links == ("downstream",)
    assert api.health == {"http": "http://{host}:{port}/healthz"}
    assert native.has_role("api") and native.has_role("worker") and not native.has_role("engine")
    assert native.drain_quiet_s == 5.0


def test_hatchet_spec(systems: dict[str, SystemSpec]) -> None:
    hatchet = systems["hatchet"]
    assert [srv.name for srv in hatchet.servers] == ["postgres", "mq", "engine"]
    assert all(srv.shared for srv in hatchet.servers), "one engine for hatchet and hatchet-naive"
    engine = hatchet.server("engine")
    assert (engine.plugin, engine.links) == ("apps.hatchet.engine:server", ("postgres", "mq", "engine-api->mq"))
    assert engine.settings["SERVER_MSGQUEUE_KIND"] == "rabbitmq"
    procs = {p.name: p for p in hatchet.processes}
    assert set(procs) == {"api", "worker"}
    assert procs["api"].roles == ("api",)
    assert procs["worker"].roles == ("worker",)
    assert procs["worker"].count == 2
    assert procs["worker"].instance_names() == ["worker-1", "worker-2"]
    assert procs["worker"].links == ("engine", "downstream")
    assert procs["worker"].health == {"log": "waiting for tasks"}
    assert hatchet.drain_quiet_s == 120.0


def test_real_commands_use_only_known_placeholders(systems: dict[str, SystemSpec]) -> None:
    for spec in systems.values():
        servers = {srv.name: "127.0.0.1:6000" for srv in spec.servers}
        for proc in spec.processes:
            subst = {"python": "/py", "name": proc.name, "host": "127.0.0.1", "port": "8123", "grace_s": "10",
                     **{name: addr for name, addr in servers.items() if name in proc.links}}
            argv = [arg.format(**subst) for arg in proc.command]
            env = {k: v.format(**subst) for k, v in proc.env.items()}
            assert argv[0] == "/py"
            assert not any("{" in a for a in [*argv, *env.values()])
        for srv in spec.servers:
            server_subst: dict[str, object] = {
                "port": "6000", "state_dir": "/data", "name": srv.name, "host": "127.0.0.1", "python": "/py",
                "ports": SimpleNamespace(**dict.fromkeys(srv.ports, "6001")), "grace_s": "10", "here": "/apps/x"}
            filled = [arg.format(**server_subst) for arg in [*srv.command, *srv.env.values()]]
            assert not any("{" in a for a in filled)
            assert srv.requires or srv.plugin, f"{srv.name}: a command server names what set-up installs"


def test_celery_spec(systems: dict[str, SystemSpec]) -> None:
    celery = systems["celery"]
    (broker,) = celery.servers
    assert (broker.name, broker.roles, broker.requires) == ("broker", ("broker",), ("redis-server",))
    assert "--appendonly" in broker.command and "--appendonly" not in systems["celery-defaults"].servers[0].command
    procs = {p.name: p for p in celery.processes}
    assert procs["api"].links == ("broker",) and procs["worker"].links == ("broker", "downstream")
    assert procs["worker"].env == {"CELERY_BROKER_URL": "redis://{broker}/0"}
    assert systems["celery-defaults"].processes[1].env["CELERY_SETTINGS"] == "defaults"
    assert celery.drain_quiet({"execution_timeout_s": 30.0}) == 60.0 and celery.drain_why


# ---- loading errors -----------------------------------------------------------------------------


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "broken", 'name = "broken"\n[[process]\nname = "api"\n')
    with pytest.raises(SpecError) as exc:
        SystemSpec.load(path)
    assert str(path) in str(exc.value)


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "system.toml"
    with pytest.raises(SpecError, match="absent"):
        SystemSpec.load(path)


def test_spec_without_api_role_is_rejected(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "noapi", """
        name = "noapi"
        [[process]]
        name = "worker"
        roles = ["worker"]
        command = ["{python}", "-m", "worker"]
    """)
    with pytest.raises(SpecError, match="no process has the api role") as exc:
        SystemSpec.load(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize(
    "body",
    [
        '[[process]]\nname = "api"\nroles = ["api"]\ncommand = ["x"]\n',  # no name
        'name = "s"\n',  # no process
        'name = "s"\n[[process]]\nroles = ["api"]\ncommand = ["x"]\n',  # process without name
        'name = "s"\n[[process]]\nname = "api"\nroles = ["api"]\n',  # process without command
        'name = "s"\n[[process]]\nname = "api"\nroles = ["api"]\ncommand = ["x"]\ncount = "two"\n',
        'name = "s"\n[drain]\nquiet_s = "soon"\n[[process]]\nname = "api"\nroles = ["api"]\ncommand = ["x"]\n',
    ],
)
def test_missing_or_bad_field_is_a_spec_error(tmp_path: Path, body: str) -> None:
    path = write_spec(tmp_path, "bad", body)
    with pytest.raises(SpecError, match="missing or bad field") as exc:
        SystemSpec.load(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize(
    "process",
    [
        'name = "api"\nroles = ["api"]\ncommand = "python -m app"\n',
        'name = "api"\nroles = ["api"]\ncommand = ["x"]\nlinks = "engine"\n',
        'name = "api"\nroles = ["api"]\ncommand = ["x"]\n[[process]]\nname = "w"\nroles = "worker"\ncommand = ["x"]\n',
    ],
    ids=["command-string", "links-string", "roles-string"],
)
def test_string_where_a_list_is_expected_is_a_spec_error(tmp_path: Path, process: str) -> None:
    path = write_spec(tmp_path, "strs", 'name = "strs"\n[[process]]\n' + process)
    with pytest.raises(SpecError):
        SystemSpec.load(path)


def test_api_process_with_zero_instances_is_a_spec_error(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "zero", MINIMAL.format(name="zero") + "count = 0\n")
    with pytest.raises(SpecError):
        SystemSpec.load(path)


def test_minimal_spec_defaults(tmp_path: Path) -> None:
    spec = SystemSpec.load(write_spec(tmp_path, "mini", MINIMAL.format(name="mini")))
    assert (spec.name, spec.description, spec.servers, spec.drain_quiet_s) == ("mini", "", (), 10.0)
    (api,) = spec.processes
    assert (api.count, api.links, api.health, api.env) == (1, (), {}, {})


def test_find_systems_puts_native_first_then_by_name(tmp_path: Path) -> None:
    for name in ("zeta", "alpha", "native"):
        write_spec(tmp_path, name, MINIMAL.format(name=name))
    (tmp_path / "not-a-system").mkdir()
    assert list(find_systems(tmp_path)) == ["native", "alpha", "zeta"]


def test_find_systems_propagates_a_broken_spec(tmp_path: Path) -> None:
    write_spec(tmp_path, "native", MINIMAL.format(name="native"))
    bad = write_spec(tmp_path, "bad", "name = ")
    with pytest.raises(SpecError, match=str(bad)):
        find_systems(tmp_path)


def test_health_of_fills_placeholders() -> None:
    subst = {"port": "9000"}
    assert health_of({"http": "http://127.0.0.1:{port}/healthz"}, subst) == Health(http="http://127.0.0.1:9000/healthz")
    assert health_of({"tcp": "{port}"}, subst) == Health(tcp=("127.0.0.1", 9000))
    assert health_of({"log": "ready on {port}"}, subst) == Health(log="ready on 9000")
    assert health_of(ProcessTemplate("w", ("x",), ()).health, subst) == Health()


# ---- stack plans --------------------------------------------------------------------------------


def test_planned_processes_native(systems: dict[str, SystemSpec]) -> None:
    assert systems["native"].planned_processes() == {"downstream": ("downstream",), "api": ("api", "worker")}


def test_planned_processes_hatchet(systems: dict[str, SystemSpec]) -> None:
    assert systems["hatchet"].planned_processes() == {
        "downstream": ("downstream",),
        "api": ("api",),
        "worker-1": ("worker",),
        "worker-2": ("worker",),
        "engine": ("engine",),
        "engine-api": ("engine-api",),
        "engine-api-bridge": ("engine-api",),
        "postgres": ("db",),
        "mq": ("mq",),
    }
    assert "mq" not in systems["hatchet-lite"].planned_processes(), "the Postgres queue: no RabbitMQ"


def test_planned_links(systems: dict[str, SystemSpec]) -> None:
    assert systems["native"].planned_links() == ["api->downstream"]
    assert systems["hatchet"].planned_links() == [
        "api->engine", "worker-1->engine", "worker-1->downstream", "worker-2->engine", "worker-2->downstream",
        "engine->postgres", "engine->mq", "engine-api->mq",
    ]
    assert systems["hatchet-lite"].planned_links()[-1] == "engine->postgres"


def test_match_links() -> None:
    names = ["api->engine", "worker-1->engine", "worker-1->downstream", "worker-2->engine", "engine->postgres"]
    assert match_links("*->engine", names) == ["api->engine", "worker-1->engine", "worker-2->engine"]
    assert match_links("worker-1->*", names) == ["worker-1->engine", "worker-1->downstream"]
    assert match_links("worker-2->engine", names) == ["worker-2->engine"]
    assert match_links("*", names) == names
    assert match_links("engine", names) == [], "a pattern matches whole names only"
    assert match_links("worker-?->engine", names) == [], "only * is special"
    assert match_links("api.engine", ["api->engine", "api.engine"]) == ["api.engine"], "dots are literal"
    assert match_links("*->engine", []) == []


# ---- not_applicable -----------------------------------------------------------------------------


def test_engine_kill_not_applicable_to_native(systems: dict[str, SystemSpec]) -> None:
    reason = not_applicable(Fault("kill", "engine", duration_s=2.0), systems["native"])
    assert reason == "native has no 'engine' process"
    assert not_applicable(Fault("kill", "engine", duration_s=2.0), systems["hatchet"]) is None


def test_engine_link_fault_not_applicable_to_native(systems: dict[str, SystemSpec]) -> None:
    fault = Fault("link-down", "*->engine", duration_s=5.0)
    assert not_applicable(fault, systems["native"]) == "native has no link '*->engine'"
    assert not_applicable(fault, systems["hatchet"]) is None


@pytest.mark.parametrize(
    ("fault", "native", "hatchet"),
    [
        (Fault("kill", "api"), True, True),
        (Fault("kill", "worker"), True, True),  # native's api plays the worker role
        (Fault("terminate", "worker-2"), False, True),
        (Fault("pause", "db"), False, True),  # by role: hatchet's postgres
        (Fault("kill", "postgres"), False, True),  # by name
        (Fault("kill", "downstream"), True, True),
        (Fault("latency", "*->downstream"), True, True),
        (Fault("link-down", "engine->postgres"), False, True),
        (Fault("reset-peer", "worker-1->engine"), False, True),
        (Fault("kill", "scheduler"), False, False),
    ],
)
def test_applicability_matrix(systems: dict[str, SystemSpec], fault: Fault, native: bool, hatchet: bool) -> None:
    assert (not_applicable(fault, systems["native"]) is None) == native
    assert (not_applicable(fault, systems["hatchet"]) is None) == hatchet


def test_fault_rejects_unknown_action_and_pick() -> None:
    with pytest.raises(ValueError, match="unknown fault action"):
        Fault("explode", "api")
    with pytest.raises(ValueError, match="unknown pick"):
        Fault("kill", "api", pick="last")


# ---- servers and variants ---------------------------------------------------------------------------

SERVER_SPEC = """
name = "queue"
[[server]]
name = "broker"
roles = ["broker"]
command = ["redis-server", "--port", "{port}", "--dir", "{state_dir}"]
health = { tcp = "{port}" }
requires = ["redis-server"]
[[process]]
name = "api"
roles = ["api"]
command = ["{python}", "-m", "app", "--port", "{port}"]
links = ["broker", "downstream"]
env = { BROKER_URL = "redis://{broker}/0" }
[variants.plain]
description = "defaults"
env = { PLAIN = "1" }
params = { retries = 0 }
"""


def test_servers_and_variants_are_read(tmp_path: Path) -> None:
    spec = SystemSpec.load(write_spec(tmp_path, "queue", SERVER_SPEC))
    (broker,) = spec.servers
    assert (broker.name, broker.roles, broker.requires, broker.health) == (
        "broker", ("broker",), ("redis-server",), {"tcp": "{port}"})
    plain = spec.variant("plain")
    assert (plain.name, plain.base, plain.params) == ("queue-plain", "queue", {"retries": 0})
    assert plain.processes[0].env == {"BROKER_URL": "redis://{broker}/0", "PLAIN": "1"}
    assert plain.servers == spec.servers
    assert list(find_systems(tmp_path)) == ["queue", "queue-plain"]


@pytest.mark.parametrize(("change", "message"), [
    (('links = ["broker", "downstream"]', 'links = ["cache"]'), "link 'api -> cache': no such service"),
    (('name = "broker"', 'name = "downstream"'), "server 'downstream': the harness provides"),
    (('name = "broker"', 'name = "api"'), "two processes or servers are named 'api'"),
    (('name = "broker"', 'name = "Broker!"'), "server name 'Broker!' must be"),
    (("[variants.plain]", "[variants.Plain]"), "variant name 'Plain' must be"),
    (('requires = ["redis-server"]', 'requires = "redis-server"'), "'requires' must be a list of strings"),
    (('health = { tcp = "{port}" }', "health = 5"), "'health' must be a table"),
])
def test_bad_server_declarations_are_spec_errors(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = write_spec(tmp_path, "queue", SERVER_SPEC.replace(*change, 1))
    with pytest.raises(SpecError, match=re.escape(message)):
        SystemSpec.load(path)


def test_a_missing_server_executable_is_named(tmp_path: Path) -> None:
    spec = SystemSpec.load(write_spec(tmp_path, "queue", SERVER_SPEC.replace(
        'requires = ["redis-server"]', 'requires = ["no-such-server-xyz"]')))
    assert spec.servers[0].missing() == ["no-such-server-xyz"]


# ---- every setting with its source ----------------------------------------------------------------

SOURCED = MINIMAL + """
[[server]]
name = "engine"
plugin = "apps.x:server"
settings = {{ QUEUE = "fast", URL = "x://{{db}}" }}
sources = {{ QUEUE = "the docs' production page", URL = "wiring", "--flag" = "its command's default" }}
[variants.slow]
servers = {{ engine = {{ settings = {{ QUEUE = "slow", URL = "" }}, sources = {{ QUEUE = "the lite page" }} }} }}
"""


def test_a_setting_is_stated_with_its_source_and_a_variant_replaces_both(tmp_path: Path) -> None:
    spec = SystemSpec.load(write_spec(tmp_path, "src", SOURCED.format(name="src")))
    assert spec.servers[0].stated() == {"QUEUE": "fast (the docs' production page)", "URL": "x://{db} (wiring)",
                                        "--flag": "its command's default"}
    assert spec.variant("slow").servers[0].stated() == {"QUEUE": "slow (the lite page)",
                                                        "--flag": "its command's default"}


@pytest.mark.parametrize("drop", ['URL = "wiring", ', ''])
def test_a_setting_without_a_source_is_refused(tmp_path: Path, drop: str) -> None:
    body = SOURCED.format(name="nosrc").replace(drop, "") if drop else SOURCED.format(name="nosrc").replace(
        'sources = { QUEUE = "the lite page" }', 'sources = { QUEUE = "" }')
    with pytest.raises(SpecError, match="has no source"):
        SystemSpec.load(write_spec(tmp_path, "nosrc", body))


def test_every_shipped_setting_has_a_source(systems: dict[str, SystemSpec]) -> None:
    for base in {s.base or s.name for s in systems.values()}:
        spec = systems[base]
        for sp in (spec, *(spec.variant(v.name) for v in spec.variants)):
            for srv in sp.servers:
                assert all("no source given" not in v for v in srv.stated().values()), (sp.name, srv.stated())


def test_every_selection_names_known_systems_and_all_is_the_comparison() -> None:
    named, known = selections(), find_systems()
    print({k: ",".join(v) for k, v in named.items()})
    assert named["all"] == ("native", "hatchet", "celery")
    assert [n for v in named.values() for n in v if n not in known] == []


@pytest.mark.parametrize("text", ['both = ["native"]', 'all = "native"', "all = []", "all = [1]"])
def test_a_malformed_selections_file_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "selections.toml").write_text(text)
    with pytest.raises(SpecError, match=r"selections\.toml"):
        selections(tmp_path)
