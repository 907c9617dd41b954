"""Your own engine: scenarios against a Hatchet engine the user runs, named by the SDK's own settings.

The "user's" engine here is a real one the harness's services start in this test, as a separate
set of servers whose token and addresses are handed over the way a user would: in environment
variables of the ``harness`` command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.hatchet.engine import HatchetEngine
from apps.hatchet.external import EngineUnusable, select_engine
from harness.backends import netns
from harness.backends.base import free_port
from harness.model.paths import PROJECT_ROOT
from harness.model.spec import find_systems
from harness.runtime.infra import Infra

HARNESS = [sys.executable, "-m", "harness"]


def _run(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], cwd=PROJECT_ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def users_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running engine (Postgres, engine, REST API) and the settings a user would export for it."""
    if not netns.available():
        pytest.skip("the engine's REST API (the token check) needs root for its network namespace")
    infra = Infra(tmp_path_factory.mktemp("users-engine"))
    try:
        engine = infra.acquire(find_systems()["hatchet"], "users-engine").servers["engine"].server
        assert isinstance(engine, HatchetEngine)
        yield {"HATCHET_CLIENT_TOKEN": engine.token, "HATCHET_CLIENT_HOST_PORT": engine.address,
               "HATCHET_CLIENT_SERVER_URL": engine.api_url, "HATCHET_CLIENT_TLS_STRATEGY": "none"}
    finally:
        infra.close()


# ---- refusals, before anything starts --------------------------------------------------------------


def test_a_token_in_the_environment_is_not_guessed_at() -> None:
    with pytest.raises(EngineUnusable, match="pass --engine external"):
        select_engine(None, {"HATCHET_CLIENT_TOKEN": "eyJ.x.y"})
    assert select_engine("built", {"HATCHET_CLIENT_TOKEN": "eyJ.x.y"}) is None
    assert select_engine(None, {}) is None


@pytest.mark.parametrize(("env", "message"), [
    ({}, "needs HATCHET_CLIENT_TOKEN"),
    ({"HATCHET_CLIENT_TOKEN": "not-a-jwt"}, "not a Hatchet API token"),
])
def test_missing_or_malformed_settings_are_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(EngineUnusable, match=message):
        select_engine("external", env)


def test_an_unreachable_engine_is_exit_2_within_15_s(users_engine: dict[str, str], tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    out = _run(["run", "baseline", "--system", "hatchet", "--engine", "external", "--out", str(tmp_path / "x")],
               {**users_engine, "HATCHET_CLIENT_HOST_PORT": dead}, timeout=60)
    took = time.monotonic() - t0
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and f"cannot reach its gRPC endpoint {dead}" in out.stderr, out.stderr
    assert took < 15, f"{took:.1f} s"
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir()), "nothing ran"


def test_a_refused_token_is_exit_2(users_engine: dict[str, str], tmp_path: Path) -> None:
    token = users_engine["HATCHET_CLIENT_TOKEN"]
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")  # same claims, bad signature
    out = _run(["run", "baseline", "--system", "hatchet", "--engine", "external", "--out", str(tmp_path / "x")],
               {**users_engine, "HATCHET_CLIENT_TOKEN": forged}, timeout=60)
    assert out.returncode == 2 and "the token was refused" in out.stderr, out.stderr
    assert token not in out.stderr and forged not in out.stderr


# ---- the scenarios, for real ------------------------------------------------------------------------


def test_scenarios_run_against_the_users_engine(users_engine: dict[str, str], tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    out = _run(["run", "baseline", "worker-kill", "engine-restart", "db-outage", "--system", "hatchet", "--engine",
                "external", "--out", str(out_dir)], users_engine)
    assert out.returncode == 0, out.stderr[-3000:]
    docs = {name: json.loads((out_dir / name / "results.json").read_text())
            for name in ("baseline", "worker-kill", "engine-restart", "db-outage")}
    for name in ("baseline", "worker-kill"):
        (run,) = docs[name]["runs"]
        print(f"{name}: accepted {run['accepted']} completed {run['completed']} lost {run['lost']} "
              f"duplicated {run['duplicated']} retried {run['retried']}")
        assert run["identities_broken"] == [], run["identities_broken"]
        assert run["accepted"] > 0 and run["lost"] == 0, run
        assert docs[name]["manifest"]["engine_source"] == f"external ({users_engine['HATCHET_CLIENT_HOST_PORT']})"
    assert docs["worker-kill"]["runs"][0]["faults"][0]["action"] == "kill"
    for name in ("engine-restart", "db-outage"):  # db-outage runs hatchet-lite beside: on your engine, the same
        runs = docs[name]["runs"]
        assert runs and all(r["applicable"] is False and "external engine" in r["reason"] for r in runs), runs
    token = users_engine["HATCHET_CLIENT_TOKEN"]
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    assert any(p.name == "worker-1.log" for p in files)
    assert [str(p) for p in files if token.encode() in p.read_bytes()] == [], "the token reached the run directory"
    assert token not in out.stdout + out.stderr
    _assert_no_worker_stays_active(users_engine)


def _assert_no_worker_stays_active(settings: dict[str, str]) -> None:
    """The run's workers were stopped (not left registered): the engine lists none of them as active."""
    token, url = settings["HATCHET_CLIENT_TOKEN"], settings["HATCHET_CLIENT_SERVER_URL"]
    tenant = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[1] + "==="))["sub"]
    deadline = time.monotonic() + 60
    while True:
        req = urllib.request.Request(f"{url}/api/v1/tenants/{tenant}/worker",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            rows = json.loads(resp.read()).get("rows") or []
        active = [w.get("name") for w in rows if str(w.get("status", "")).upper() == "ACTIVE"]
        if not active or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert rows, "the engine saw the run's workers"
    assert active == [], f"workers still registered as active after the run: {active}"
