"""Run a server that binds every interface inside a private network namespace, reachable only
through a Unix socket bridged to 127.0.0.1.

Hatchet's REST API hard-codes ``:PORT`` (all interfaces). Inside a fresh network namespace "all
interfaces" is just that namespace's own loopback, so nothing outside can reach it; a Unix
socket (the filesystem is shared) carries connections in, and a forwarder in the host namespace
listens on 127.0.0.1. Needs root (CAP_SYS_ADMIN) for ``unshare(CLONE_NEWNET)``.

    python -m harness.backends.netns inside --unix SOCK --port P [--forward L=SOCK2]... -- CMD...
    python -m harness.backends.netns outside --unix SOCK --port Q [--host H] [--relay SOCK2=HOST:PORT]...

``inside`` makes the namespace, starts the server and carries connections from SOCK to its port P;
each ``--forward L=SOCK2`` also listens on the namespace's 127.0.0.1:L and carries connections out
through SOCK2. ``outside`` listens on H:Q (default 127.0.0.1) for SOCK, and each ``--relay
SOCK2=HOST:PORT`` carries SOCK2's connections on to HOST:PORT: the server's way to its database
and message queue, and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def available() -> bool:
    """True when this process may create network namespaces (root)."""
    return os.geteuid() == 0 and Path("/proc/self/ns/net").exists()


def _enter_new_netns() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed (needs root)")
    # A new namespace's loopback starts down; bring it up with the same ioctl `ip link` uses.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | _IFF_UP, b""))


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy reader to writer until EOF, then close the writer."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def splice(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                 connect: Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]) -> None:
    """Carry one accepted connection both ways to a new one made by ``connect`` (closed when it cannot be made)."""
    try:
        up_r, up_w = await connect()
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))


async def listen(sock: str, port: int, forwards: list[tuple[int, str]]) -> list[asyncio.Server]:
    """Listen on the Unix socket ``sock`` (carried to the server's 127.0.0.1:port) and on each forward's
    127.0.0.1:L (carried out through its socket): the inside of a bridge, here or in a container's namespace."""
    Path(sock).unlink(missing_ok=True)
    servers = [await asyncio.start_unix_server(
        lambda r, w: splice(r, w, lambda: asyncio.open_connection("127.0.0.1", port)), path=sock)]
    os.chmod(sock, 0o600)
    for local, out in forwards:  # the namespace's own loopback -> a relay outside (its database, its queue)
        servers.append(await asyncio.start_server(
            lambda r, w, out=out: splice(r, w, lambda: asyncio.open_unix_connection(out)),  # type: ignore[misc]
            host="127.0.0.1", port=local))
    return servers


async def _inside(sock: str, port: int, forwards: list[tuple[int, str]], command: list[str]) -> int:
    """Listen on SOCK (-> the server's port) and on each forward's port (-> its socket), then start the server and
    carry connections until it exits; its exit status."""
    servers = await listen(sock, port, forwards)
    child = subprocess.Popen(command)  # only now: its first dial must find the forwards listening
    # Forward the harness's graceful stop to the server, then exit with it.
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    print(f"namespace ready: {command[0]} on its own loopback :{port} <- {sock}", flush=True)
    try:
        while child.poll() is None:
            await asyncio.sleep(0.2)
    finally:
        for server in servers:
            server.close()
    return child.wait()


async def _serve_tcp(sock: str, host: str, port: int, relays: list[tuple[str, str]]) -> None:
    server = await asyncio.start_server(
        lambda r, w: splice(r, w, lambda: asyncio.open_unix_connection(sock)), host=host, port=port
    )
    for path, target in relays:  # a relay socket -> the address the server inside may reach
        Path(path).unlink(missing_ok=True)
        to_host, _, to_port = target.rpartition(":")
        await asyncio.start_unix_server(
            lambda r, w, h=to_host, p=int(to_port): splice(r, w, lambda: asyncio.open_connection(h, p)),  # type: ignore[misc]
            path=path)
        os.chmod(path, 0o600)
    print(f"bridge listening on {host}:{port} -> {sock}" + "".join(f"; {p} -> {t}" for p, t in relays), flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["inside", "outside"])
    ap.add_argument("--unix", required=True, help="Unix socket path that carries connections across")
    ap.add_argument("--port", type=int, required=True, help="inside: the server's port; outside: the bridge's port")
    ap.add_argument("--host", default="127.0.0.1", help="outside: the address the bridge listens on")
    ap.add_argument("--forward", action="append", default=[], metavar="L=SOCK",
                    help="inside: listen on the namespace's 127.0.0.1:L, carry connections out through SOCK")
    ap.add_argument("--relay", action="append", default=[], metavar="SOCK=HOST:PORT",
                    help="outside: carry SOCK's connections on to HOST:PORT")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    args.command = argv[cut + 1 :]
    if args.mode == "outside":
        asyncio.run(_serve_tcp(args.unix, args.host, args.port, [tuple(r.split("=", 1)) for r in args.relay]))
        return
    _enter_new_netns()
    forwards = [(int(f.split("=", 1)[0]), f.split("=", 1)[1]) for f in args.forward]
    sys.exit(asyncio.run(_inside(args.unix, args.port, forwards, args.command)))


if __name__ == "__main__":
    main()
