"""Download a file from a list of mirrors, verify its md5 and move it into place atomically.

A file is streamed into a hidden temp file beside its destination, hashed while it is written,
and renamed over the destination only when the checksum matches; on any failure (offline,
HTTP error, short read, wrong checksum, Ctrl-C) the temp file is deleted, so a later run never
mistakes half a download for data.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from imgclf.errors import DataError

REPLACE_HINT = (
    "Delete it so the next load downloads it again, or replace it with the official file."
)

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
USER_AGENT = "imgclf"  # some mirrors refuse Python's default user agent


def download_file(urls: Sequence[str], dest: Path, md5: str, timeout: float = 60.0) -> str:
    """Fetch ``dest`` from the first of ``urls`` that serves bytes with the expected md5.

    Args:
        urls: Mirrors to try in order; a failing or corrupt mirror moves on to the next.
        dest: Final path; it appears only once a verified copy is complete.
        md5: Expected hex md5 of the file.
        timeout: Seconds to wait on a stalled connection before giving up on a mirror.

    Returns:
        The URL the file came from.

    Raises:
        DataError: Every mirror failed; the message gives each URL and its reason.
    """
    failures = []
    for url in urls:
        logger.info("downloading %s", url)
        reason = _fetch_verified(url, dest, md5.lower(), timeout)
        if reason is None:
            return url
        failures.append(f"{url}: {reason}")
    raise DataError(f"could not download {dest.name} ({'; '.join(failures)}).")


def _fetch_verified(url: str, dest: Path, md5: str, timeout: float) -> str | None:
    """Download ``url`` to ``dest``; None on success, else a one-line reason (nothing left)."""
    import http.client  # stdlib, but it pulls in email and ssl: only pay for it when downloading

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(
            dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"
        )
    except OSError as error:
        return f"cannot write to {dest.parent} ({error.strerror or error})"
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            got = _stream(url, out, timeout)
        if got != md5:
            return (
                f"md5 checksum mismatch (expected {md5}, got {got}): the download is corrupt or "
                "the file changed on the server, so it was deleted"
            )
        os.replace(temp, dest)
        return None
    except (OSError, ValueError, http.client.HTTPException) as error:
        return _describe(error)
    finally:
        temp.unlink(missing_ok=True)


def _stream(url: str, out: BinaryIO, timeout: float) -> str:
    """Copy the body of ``url`` into ``out`` chunk by chunk and return its hex md5."""
    import urllib.request

    digest = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _describe(error: BaseException) -> str:
    """A short reason for a failed download, without the exception's class noise."""
    import urllib.error

    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__
