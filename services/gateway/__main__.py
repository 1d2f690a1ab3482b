"""``python -m services.gateway``: run one gateway until SIGTERM/SIGINT, then drain."""

from __future__ import annotations

import asyncio
import logging
import signal

from roomstreams._logging import configure_service_logging
from roomstreams._loop import run

from .server import Gateway
from .settings import GatewaySettings


async def _main() -> None:
    settings = GatewaySettings()
    configure_service_logging(settings.log_level)  # ROOMSTREAMS_LOG_FORMAT=json: one object a line
    # one INFO line per handshake and health probe is noise; our own loggers say what matters
    logging.getLogger("websockets.server").setLevel(logging.WARNING)
    gw = Gateway(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, gw.stop)
    await gw.run()


def main() -> None:
    run(_main())


if __name__ == "__main__":
    main()
