"""What a server allows and how it batches: one frozen record, checked once at start."""

from __future__ import annotations

from dataclasses import dataclass

from imgclf.errors import ConfigError


@dataclass(frozen=True)
class ServeSettings:
    """Limits, batching and access of one server (the ``imgclf serve`` flags)."""

    max_upload_mb: float = 20.0  # a request body over this is refused (413) before parsing
    max_files: int = 32  # images in one request (413 above)
    max_pixels: int = 40_000_000  # per image, read from the header (422 above: a bomb)
    max_batch: int = 16  # images the worker computes at once
    max_wait_ms: float = 5.0  # how long the worker waits to fill a batch
    top_k: int = 3  # classes listed per image unless the request asks for another number
    api_key: str | None = None  # Bearer token every non-health endpoint needs
    cors_origins: tuple[str, ...] = ()  # CORS is off unless origins are given

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_files", "max_pixels", "max_batch", "top_k"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, received {getattr(self, name)}.")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms must be 0 or more, received {self.max_wait_ms}.")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("The API key is empty: set the variable to a secret, or omit it.")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
