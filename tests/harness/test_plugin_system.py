"""A fourth system with a server of its own plugs in with no change to harness/: written here, run for real.

``listq`` is a Redis list used as a task queue: its API pushes each accepted task, its worker pops and
runs it, both recording through the ledger's public API (``harness.ledger.Recorder``). Its
system.toml, app and worker live in a temporary apps/ folder; the harness finds, starts, loads and
checks it like the systems it ships with.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.model.scenario import Scenario
from harness.model.spec import find_systems
from harness.servers.command import CommandServer
from harness.servers.registry import Prepared
from harness.session import Session

SYSTEM = """
name = "listq"
description = "A Redis list as a task queue: the API pushes, one worker pops (a fourth system written by a test)"
color = "#f0e442"
[drain]
quiet_s = 5
[[server]]
name = "queue"
roles = ["broker"]
command = ["redis-server", "--bind", "{host}", "--port", "{port}", "--dir", "{state_dir}", "--save", "",
           "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no"]
health = { tcp = "{port}" }
requires = ["redis-server"]
[[process]]
name = "api"
roles = ["api"]
command = ["{python}", "{here}/api.py", "{host}", "{port}"]
health = { http = "http://{host}:{port}/healthz" }
links = ["queue"]
env = { LISTQ = "{queue}" }
[[process]]
name = "worker"
roles = ["worker"]
command = ["{python}", "{here}/worker.py"]
health = { log = "worker ready" }
links = ["queue"]
env = { LISTQ = "{queue}" }
"""

API = """
import os, sys
import redis, uvicorn
from fastapi import FastAPI
from apps.common.contract import TaskRequest, refuse_malformed

host, _, port = os.environ["LISTQ"].rpartition(":")
queue = redis.Redis(host=host, port=int(port))
app = refuse_malformed(FastAPI())

@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}

@app.post("/tasks", status_code=202)
def submit(req: TaskRequest) -> dict[str, str]:
    queue.lpush("tasks", req.model_dump_json())
    return {"status": "accepted"}

uvicorn.run(app, host=sys.argv[1], port=int(sys.argv[2]), log_level="warning")
"""

WORKER = """
import os, time
import redis
from apps.common.contract import TaskRequest
from harness.ledger import Recorder

host, _, port = os.environ["LISTQ"].rpartition(":")
queue, rec = redis.Redis(host=host, port=int(port)), Recorder.from_env()
print("worker ready", flush=True)
while True:
    _, body = queue.brpop("tasks")
    req = TaskRequest.model_validate_json(body)
    rec.started(req.task_id, 1)
    time.sleep(req.params.duration_s)
    rec.effect(req.task_id, 1)
"""


@pytest.fixture
def apps_dir(tmp_path: Path) -> Path:
    root = tmp_path / "apps" / "listq"
    root.mkdir(parents=True)
    for name, text in (("system.toml", SYSTEM), ("api.py", API), ("worker.py", WORKER)):
        (root / name).write_text(textwrap.dedent(text))
    return tmp_path / "apps"


def test_a_fourth_system_with_its_own_server_runs_its_baseline(apps_dir: Path, tmp_path: Path) -> None:
    spec = find_systems(apps_dir)["listq"]
    assert isinstance(Prepared().get(spec.servers[0]), CommandServer), "a command line needs no plug-in class"
    scenario = Scenario(name="baseline", fault="none", claim="listq loses nothing", expect={"listq": "keeps"})
    with Session(root=tmp_path / "run", progress=print) as session:
        doc = session.run(scenario, [spec], scenario.params({"duration_s": "3", "rate": "10"}))
    (run,) = doc["runs"]
    print({k: run[k] for k in ("attempted", "accepted", "completed", "lost", "duplicated")}, run["links"])
    assert run["attempted"] == 30 and run["accepted"] == 30, run
    assert run["completed"] == 30 and run["lost"] == 0 and run["identities_broken"] == [], run
    assert run["color"] == "#f0e442" and run["links"]["direct"] == ["api->queue", "worker->queue"]
    assert (tmp_path / "run" / "baseline" / "listq" / "logs" / "queue.log").exists(), \
        "a server only this run used logs into the run's directory"
