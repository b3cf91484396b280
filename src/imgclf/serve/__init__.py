"""Serving: a FastAPI app over one model (REST, the Open Inference Protocol, a web page).

``create_app(ServedModel, ServeSettings)`` builds the app; ``imgclf.api.serve`` loads a run's
model into a ServedModel and runs the app on uvicorn. Imported only by ``imgclf serve``: the
rest of imgclf never needs FastAPI.
"""

from imgclf.serve.app import create_app
from imgclf.serve.model import ServedModel
from imgclf.serve.settings import ServeSettings

__all__ = ["ServeSettings", "ServedModel", "create_app"]
