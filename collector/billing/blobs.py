"""A blob container as an export source: the only importer of azure.storage.blob.

Lists the blobs under a prefix and streams each one in ranged downloads, so a part file is never held whole in memory;
Parquet files get a seekable stream (their footer is at the end). SDK errors become ours here, with what to do next.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient, ContainerClient

from collector.azure_clients import Connection
from collector.errors import InputError, Problem, TerminalError, TransientError

CHUNK_BYTES = 4 << 20
READER_ROLE = "Storage Blob Data Reader"
T = TypeVar("T")


@dataclass(frozen=True)
class ContainerAddress:
    """`https://<account>.blob.core.windows.net/<container>[/prefix]`, or an emulator's path-style URL
    `http://127.0.0.1:10000/<account>/<container>[/prefix]`."""

    account_url: str
    container: str
    prefix: str

    @property
    def label(self) -> str:
        return f"{self.account_url}/{self.container}"


def parse_container_url(url: str) -> ContainerAddress:
    parts = urlsplit(url.strip())
    segments = [s for s in parts.path.split("/") if s]
    host = (parts.hostname or "").lower()
    path_style = host == "localhost" or host.replace(".", "").isdigit() or ":" in host  # an emulator: no DNS name
    need = 2 if path_style else 1
    if parts.scheme not in ("https", "http") or not host or len(segments) < need:
        raise InputError([Problem(None, None, f"{url!r} does not name a blob container",
                                  "give https://<account>.blob.core.windows.net/<container>[/folder] (an emulator: "
                                  "http://127.0.0.1:<port>/<account>/<container>[/folder])")])
    root = f"{parts.scheme}://{parts.netloc}" + (f"/{segments[0]}" if path_style else "")
    rest = segments[1:] if path_style else segments
    return ContainerAddress(root, rest[0], "/".join(rest[1:]))


class BlobContainerSource:
    """The blobs of one container under a prefix, read with the caller's credential.

    `connection` (collector.azure_clients) gives the CA bundle, retries and identity (DefaultAzureCredential with its
    tenant and client id); `credential` replaces that identity (anything azure-storage-blob accepts);
    `connection_string` replaces URL and credential's account part (Azurite in tests).
    """

    def __init__(self, url: str, connection: Connection | None = None, *, credential: Any | None = None,
                 connection_string: str | None = None) -> None:
        self.address = parse_container_url(url)
        connection = connection or Connection(self.address.account_url)
        options: dict[str, Any] = {"connection_verify": connection.verify, "retry_total": connection.retries,
                                   "max_single_get_size": CHUNK_BYTES, "max_chunk_get_size": CHUNK_BYTES}
        if connection_string is not None:
            service = BlobServiceClient.from_connection_string(connection_string, **options)
        else:
            service = BlobServiceClient(self.address.account_url, credential=credential or connection.credential(),
                                        **options)
        self._container = service.get_container_client(self.address.container)

    def files(self) -> Iterator[BlobFile]:
        prefix = self.address.prefix.rstrip("/") + "/" if self.address.prefix else None
        pages = _mapped(lambda: iter(self._container.list_blobs(name_starts_with=prefix)), self.address, None)
        while True:
            blob = _mapped(lambda: next(pages, None), self.address, None)
            if blob is None:
                return
            yield BlobFile(self._container, self.address, str(blob.name), int(blob.size or 0))


@dataclass(frozen=True)
class BlobFile:
    """One blob; `name` is its full name in the container, as the export's manifest lists it."""

    container: ContainerClient
    address: ContainerAddress
    name: str
    size: int

    @property
    def where(self) -> Path:
        return Path(self.address.container) / self.name

    def open(self) -> IO[bytes]:
        return io.BufferedReader(_BlobStream(self), buffer_size=1 << 20)


class _BlobStream(io.RawIOBase):
    """A seekable read-only view of a blob: chunked downloads from the current position, restarted on a seek."""

    def __init__(self, blob: BlobFile) -> None:
        self._blob = blob
        self._pos = 0
        self._chunks: Iterator[bytes] | None = None
        self._pending = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._blob.size}[whence]
        target = max(0, base + offset)
        if target != self._pos:
            self._pos, self._chunks, self._pending = target, None, b""
        return self._pos

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        if self._pos >= self._blob.size or not len(target):
            return 0
        if not self._pending:
            if self._chunks is None:
                client = self._blob.container.get_blob_client(self._blob.name)
                self._chunks = _mapped(lambda: client.download_blob(offset=self._pos).chunks(), self._blob.address,
                                       self._blob.name)
            chunks = self._chunks
            self._pending = _mapped(lambda: next(chunks, b""), self._blob.address, self._blob.name)
            if not self._pending:
                return 0
        n = min(len(target), len(self._pending))
        target[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._pos += n
        return n


def _mapped(call: Callable[[], T], address: ContainerAddress, blob: str | None) -> T:
    """Run one SDK call; its errors become ours, saying what to do."""
    what = f"blob {blob} in {address.label}" if blob else f"container {address.label}"
    try:
        return call()
    except ClientAuthenticationError as e:
        if getattr(e, "status_code", None) == 403:
            raise TerminalError(f"access to {what} denied: give the identity the '{READER_ROLE}' role on the storage "
                                f"account or container ({_code(e)})") from e
        raise TerminalError(f"cannot sign in to read {what}: {e.message} (sign in with `az login`, a managed "
                            "identity or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET)") from e
    except ResourceNotFoundError as e:
        if blob is None:
            raise TerminalError(f"no container {address.container} at {address.account_url} ({_code(e)})") from e
        raise TransientError(f"{what} disappeared while reading it ({_code(e)}): the export may be re-writing "
                             "its run; import again once it is done") from e
    except HttpResponseError as e:
        status = e.status_code or 0
        if status == 403:
            raise TerminalError(f"access to {what} denied: give the identity the '{READER_ROLE}' role on the storage "
                                f"account or container ({_code(e)})") from e
        if status == 429 or status >= 500:
            raise TransientError(f"storage answered {status} for {what}: try again later ({_code(e)})") from e
        raise TerminalError(f"storage refused to read {what}: {status} {_code(e)}") from e
    except (ServiceRequestError, ServiceResponseError) as e:
        raise TransientError(f"cannot reach {address.account_url} to read {what}: {e.message}") from e


def _code(e: HttpResponseError) -> str:
    return str(getattr(e, "error_code", None) or e.reason or type(e).__name__)
