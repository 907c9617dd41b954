"""The private Docker engine: started with its own roots and socket, answering, and gone when stopped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.backends.docker import connect
from harness.backends.dockerd import private_engine, running_private_engines


@pytest.mark.docker
def test_private_engine_starts_answers_and_leaves_nothing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a private dockerd needs root")
    data_root = tmp_path / "data"
    with private_engine(tmp_path / "logs", data_root=data_root) as host:
        pids = running_private_engines(data_root)
        client = connect(host)
        info = client.info()
        client.close()
        socket_path = Path(host.removeprefix("unix://"))
        assert socket_path.is_socket()
    print(f"engine {info['ServerVersion']} at {host}, pid {pids}, storage {info['Driver']}")
    assert len(pids) == 1 and info["Driver"] == "overlay2"
    assert running_private_engines(data_root) == [], "dockerd outlived its context"
    assert not socket_path.exists()
