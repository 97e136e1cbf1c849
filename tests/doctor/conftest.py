"""Doctor runs against real homes and, for the network checks, the real TAXII server."""

from tests.exchange.conftest import exchange  # noqa: F401
