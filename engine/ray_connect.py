"""This process's connection to a Ray cluster (``engine.ray.address``), made within ``start_timeout_s``.

Ray is imported inside the functions: the bot runs without it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future

from engine.client import EngineStartError
from engine.config import RaySettings


class Connection:
    """This process's connection to Ray, on a thread of its own that lives until :meth:`close`.

    ``ray.init`` blocks, so it runs off the event loop; and the thread stays: with ``local``, the cluster's
    processes are set to die with the thread that started them.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.ready: Future[None] = Future()
        self._closing = threading.Event()
        # A daemon thread, not asyncio.to_thread: a connection attempt that never returns must not keep the
        # process alive after the start has failed.
        self._thread = threading.Thread(target=self._run, name="ray-connection", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import ray

        try:
            if self.address == "local":
                ray.init(include_dashboard=False, logging_level=logging.WARNING)
            else:
                ray.init(address=self.address, logging_level=logging.WARNING)
        except BaseException as exc:  # handed to the waiting start, which names the key
            self.ready.set_exception(exc)
            return
        self.ready.set_result(None)
        self._closing.wait()
        ray.shutdown()

    async def close(self) -> None:
        """Disconnect (and stop the cluster, with ``local``)."""
        self._closing.set()
        await asyncio.to_thread(self._thread.join)


async def connect(settings: RaySettings) -> Connection | None:
    """Connect this process to the cluster at ``settings.address`` within ``start_timeout_s``; None if it is
    connected already (the connection is then whoever made it's to close)."""
    import ray

    if ray.is_initialized():
        return None
    connection = Connection(settings.address)
    try:
        await asyncio.wait_for(asyncio.wrap_future(connection.ready), settings.start_timeout_s)
    except TimeoutError:
        raise EngineStartError(
            f"engine.ray.address: no Ray cluster answered at {settings.address!r} within "
            f"engine.ray.start_timeout_s ({settings.start_timeout_s:g} s)"
        ) from None
    except Exception as exc:
        raise EngineStartError(
            f"engine.ray.address: could not connect to the Ray cluster at {settings.address!r}: {exc}"
        ) from None
    return connection
