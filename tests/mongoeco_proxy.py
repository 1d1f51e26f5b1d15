"""Serve mongoeco's in-memory engine over the MongoDB wire protocol on loopback until standard input closes.

Run by ``tests/mongoeco_engine.py`` with the Python (3.13 or later) of the virtual environment mongoeco is
installed in, not with the project's. It binds a port the system chooses (so no other process can take it
between choosing and binding), prints one JSON line ``{"uri": ...}`` once the server answers, and stops when
its standard input is closed (the test process ended, however it ended) or on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from mongoeco.wire import AsyncMongoEcoProxyServer


async def serve() -> None:
    server = AsyncMongoEcoProxyServer(host="127.0.0.1", port=0)
    address = await server.start()
    try:
        print(json.dumps({"uri": f"mongodb://{address.host}:{address.port}"}), flush=True)
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        stdin_closed = asyncio.ensure_future(asyncio.to_thread(sys.stdin.buffer.read))
        await asyncio.wait([stdin_closed, asyncio.ensure_future(stopped.wait())], return_when=asyncio.FIRST_COMPLETED)
    finally:
        await server.close()


if __name__ == "__main__":
    asyncio.run(serve())
    # The thread still blocked reading standard input after SIGTERM must not keep the process alive.
    sys.stdout.flush()
    os._exit(0)
