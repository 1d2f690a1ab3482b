"""``python -m services.router``: run the router until SIGTERM/SIGINT."""

from __future__ import annotations

from roomstreams._logging import configure_service_logging
from roomstreams._loop import run

from .app import create_app
from .settings import RouterSettings


def main() -> None:
    settings = RouterSettings()
    configure_service_logging(settings.log_level)  # ROOMSTREAMS_LOG_FORMAT=json: one object a line
    app, _ = create_app(settings)
    run(app.run())


if __name__ == "__main__":
    main()
