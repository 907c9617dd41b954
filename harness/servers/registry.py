"""Finding a system's servers: a command line becomes a :class:`CommandServer`, a ``plugin`` names a factory.

The factory (``module:name`` in system.toml) is imported only when a run needs it, so listing
systems or reading a report never imports a system's machinery. :func:`prepare` makes every
server of the selected systems before anything starts, so a bad option (``--engine external`` with
a wrong token) is refused in one line, and a run then uses the very objects it checked.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import cast

from harness.model.spec import ServerTemplate, SystemSpec
from harness.servers.base import Server, ServerFactory, ServerUnusable
from harness.servers.command import CommandServer


def factory(plugin: str) -> ServerFactory:
    """The factory ``module:name`` names (ServerUnusable if it cannot be imported)."""
    module, _, name = plugin.partition(":")
    try:
        return cast(ServerFactory, getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError) as exc:
        raise ServerUnusable(f"server plug-in {plugin!r}: {exc}") from None


def make(template: ServerTemplate, options: Mapping[str, str]) -> Server:
    """A server for template, not started yet."""
    if template.plugin:
        return factory(template.plugin)(template, options)
    if missing := template.missing():
        raise ServerUnusable(f"server {template.name!r} needs {', '.join(missing)} on PATH (`make setup` installs it)")
    return CommandServer(template)


class Prepared:
    """Servers made (and so checked) before a run starts, one per distinct declaration; shared by the session."""

    def __init__(self, options: Mapping[str, str] | None = None) -> None:
        self.options = dict(options or {})
        """Server options of the run (``engine=external``), handed to every factory."""
        self._made: dict[tuple[object, ...], Server] = {}

    def check(self, specs: Iterable[SystemSpec]) -> Prepared:
        """Make every server of specs now (ServerUnusable: one line for the user); returns self."""
        for spec in specs:
            for template in spec.servers:
                self.get(template)
        return self

    def get(self, template: ServerTemplate) -> Server:
        """The server made for this declaration (made now if it was not)."""
        key = template.identity()
        if key not in self._made:
            self._made[key] = make(template, self.options)
        return self._made[key]

    def started_here(self, template: ServerTemplate) -> bool:
        """Whether the harness starts this server's processes (not when the server is the user's own)."""
        server = self.get(template)
        return template.name not in server.outside()
