"""`python -m magpie_tts`: serve the application with uvicorn."""

import logging

import uvicorn

from .dependencies import get_settings
from .main import create_app


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Streams can run for minutes; give them time to finish when the pod is rotated.
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
