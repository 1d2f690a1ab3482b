"""``python -m services.router``: run the router until SIGTERM/SIGINT."""

from __future__ import annotations

import logging

from roomstreams._loop import run

from .app import create_app
from .settings import RouterSettings


def main() -> None:
    settings = RouterSettings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app, _ = create_app(settings)
    run(app.run())


if __name__ == "__main__":
    main()
