"""The local HTTP API (FastAPI on uvicorn) for the resident app and the property manager console."""

from .app import API_PREFIX, create_app
from .edge import ApiService

__all__ = ["API_PREFIX", "ApiService", "create_app"]
