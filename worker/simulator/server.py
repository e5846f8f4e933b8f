"""Running the simulator under uvicorn."""

import asyncio
import os
import socket
from pathlib import Path

import uvicorn

from .app import create_app
from .state import SimulatorState


class _PortReportingServer(uvicorn.Server):
    """A uvicorn server that writes its bound port once it accepts connections."""

    def __init__(self, config: uvicorn.Config, port_file: Path | None) -> None:
        super().__init__(config)
        self._port_file = port_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening, then publish the port for whoever waits on it."""
        await super().startup(sockets)
        if self._port_file is None or not sockets:
            return

        write_port_file(self._port_file, sockets[0].getsockname()[1])


def write_port_file(path: Path, port: int) -> None:
    """Write ``port`` to ``path`` atomically, so a reader never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{port}\n", encoding="utf-8")
    os.replace(partial, path)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket; port 0 picks a free one."""
    # The explicit IPPROTO_TCP matters: asyncio turns Nagle off only on
    # sockets that say so, and with Nagle on every keep-alive answer
    # stalls about 40 ms on the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)

    return sock


def serve(
    host: str, port: int, state: SimulatorState, port_file: Path | None = None
) -> None:
    """Serve ``state`` over HTTP until interrupted (SIGINT or SIGTERM).

    Blocks the calling thread. Access logs are off and uvicorn logs only
    warnings, so the simulator writes nothing per request.

    Args:
        host: Interface to bind, normally ``127.0.0.1``.
        port: TCP port; 0 binds a free one.
        state: The tenant to serve.
        port_file: If given, receives the bound port number once the
            server accepts connections.
    """
    config = uvicorn.Config(
        create_app(state),
        access_log=False,
        log_level="warning",
        lifespan="off",
        backlog=2048,
    )
    server = _PortReportingServer(config, port_file)
    sock = bind_socket(host, port)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
