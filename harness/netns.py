"""Run a server that binds every interface inside a private network namespace, reachable only
through a Unix socket bridged to 127.0.0.1.

Hatchet's REST API hard-codes ``:PORT`` (all interfaces). Inside a fresh network namespace "all
interfaces" is just that namespace's own loopback, so nothing outside can reach it; a Unix
socket (the filesystem is shared) carries connections in, and a forwarder in the host namespace
listens on 127.0.0.1. Needs root (CAP_SYS_ADMIN) for ``unshare(CLONE_NEWNET)``.

    python -m harness.netns inside --unix SOCK --port P -- CMD...   # namespace + server + bridge
    python -m harness.netns outside --unix SOCK --port Q [--host H] # H:Q (default 127.0.0.1) -> SOCK
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


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _splice(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, connect: object) -> None:
    try:
        up_r, up_w = await connect()  # type: ignore[operator]
    except OSError:
        client_w.close()
        return
    await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))


async def _serve_unix(sock: str, port: int, child: subprocess.Popen[bytes]) -> None:
    Path(sock).unlink(missing_ok=True)
    server = await asyncio.start_unix_server(
        lambda r, w: _splice(r, w, lambda: asyncio.open_connection("127.0.0.1", port)), path=sock
    )
    os.chmod(sock, 0o600)
    async with server:
        while child.poll() is None:
            await asyncio.sleep(0.2)


async def _serve_tcp(sock: str, host: str, port: int) -> None:
    server = await asyncio.start_server(
        lambda r, w: _splice(r, w, lambda: asyncio.open_unix_connection(sock)), host=host, port=port
    )
    print(f"bridge listening on {host}:{port} -> {sock}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["inside", "outside"])
    ap.add_argument("--unix", required=True, help="Unix socket path that carries connections across")
    ap.add_argument("--port", type=int, required=True, help="inside: the server's port; outside: the bridge's port")
    ap.add_argument("--host", default="127.0.0.1", help="outside: the address the bridge listens on")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = ap.parse_args(argv[:cut])
    args.command = argv[cut + 1 :]
    if args.mode == "outside":
        asyncio.run(_serve_tcp(args.unix, args.host, args.port))
        return
    _enter_new_netns()
    child = subprocess.Popen(args.command)
    # Forward the harness's graceful stop to the server, then exit with it.
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    print(f"namespace ready: {args.command[0]} on its own loopback :{args.port} <- {args.unix}", flush=True)
    try:
        asyncio.run(_serve_unix(args.unix, args.port, child))
    finally:
        child.wait()
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
