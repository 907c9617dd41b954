"""Network links through a real Toxiproxy server, so faults can cut, slow or reset them.

toxiproxy-python keeps the server's host and port as class-level globals; :class:`Toxiproxy`
sets them under a lock around every call, so two servers (or threads) never mix them up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toxiproxy.api import APIConsumer
from toxiproxy.server import Toxiproxy as _Server

from harness import tools
from harness.backends.base import Health, Proc, ProcessBackend, free_port

_globals_lock = threading.RLock()


@dataclass(frozen=True)
class Link:
    """One proxied connection path, e.g. ``worker-1->engine``."""

    name: str
    """Its name as faults target it (``worker-1->engine``)."""
    listen: str
    """``127.0.0.1:PORT`` clients connect to (picked by Toxiproxy)."""
    upstream: str
    """``127.0.0.1:PORT`` of the real server."""
    proxy: str = ""
    """Its proxy's name in Toxiproxy, unique in the session (two runs may each have an ``api->broker``)."""

    @property
    def port(self) -> int:
        """Port clients connect to."""
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) clients connect to."""
        host, _, port = self.listen.rpartition(":")
        return host, int(port)


class Toxiproxy:
    """Client of one Toxiproxy server's HTTP API."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        """API host."""
        self.port = port
        """API port."""
        self._server = _Server()

    @contextmanager
    def _api(self) -> Iterator[Any]:
        with _globals_lock:
            APIConsumer.host, APIConsumer.port = self.host, self.port
            yield self._server

    def create(self, name: str, upstream: str, listen_host: str = "127.0.0.1", owner: str = "") -> Link:
        """Create a proxy listening on a free port of listen_host (replacing one of the same name); ``owner``
        (a run, a server) makes its proxy name unique."""
        proxy_name = f"{owner}.{name}" if owner else name  # Toxiproxy 2.12 cannot address a name holding a slash
        with self._api() as server:
            old = server.get_proxy(proxy_name)
            if old is not None:
                old.destroy()
            proxy = server.create(upstream=upstream, name=proxy_name, listen=f"{listen_host}:0", enabled=True)
            return Link(name=name, listen=proxy.listen, upstream=upstream, proxy=proxy_name)

    def destroy(self, name: str) -> None:
        """Remove a proxy (its clients lose their connections)."""
        with self._api() as server:
            proxy = server.get_proxy(name)
            if proxy is not None:
                proxy.destroy()

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disable (drop connections, refuse new ones) or re-enable a proxy."""
        with self._api() as server:
            proxy = server.get_proxy(name)
            if proxy is None:
                raise KeyError(f"no link {name!r}")
            if enabled:
                proxy.enable()
            else:
                proxy.disable()

    def add_toxic(self, link: str, toxic: str, type: str, attributes: dict[str, Any],
                  stream: str = "downstream", toxicity: float = 1.0) -> None:
        """Add a toxic (latency, timeout, reset_peer, bandwidth, ...) to a link."""
        with self._api() as server:
            proxy = server.get_proxy(link)
            if proxy is None:
                raise KeyError(f"no link {link!r}")
            proxy.add_toxic(name=toxic, type=type, stream=stream, toxicity=toxicity, attributes=attributes)

    def remove_toxic(self, link: str, toxic: str) -> None:
        """Remove one toxic from a link."""
        with self._api() as server:
            proxy = server.get_proxy(link)
            if proxy is not None:
                proxy.destroy_toxic(toxic)


def start_server(backend: ProcessBackend, log_dir: Path) -> tuple[Proc, Toxiproxy]:
    """The session's Toxiproxy server (the pinned build) on a free port of 127.0.0.1, healthy, and its client."""
    port = free_port()
    process = backend.process(name="toxiproxy", argv=[str(tools.toxiproxy_bin()), "-host", "127.0.0.1", "-port",
                                                      str(port)],
                              log_path=log_dir / "toxiproxy.log", roles=("proxy",),
                              health=Health(http=f"http://127.0.0.1:{port}/version"), stop_grace_s=5)
    process.start()
    process.wait_healthy(30)
    return process, Toxiproxy("127.0.0.1", port)
