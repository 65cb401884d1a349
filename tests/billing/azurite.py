"""Microsoft's storage emulator Azurite for the blob tests: its blob service on a free loopback port, a temp folder.

Found through $AOAI_OBS_AZURITE (the azurite-blob executable), then `.azurite/node_modules/.bin/azurite-blob` and
`node_modules/.bin/azurite-blob` under the repository, then PATH. Install it with
`npm install --prefix .azurite azurite` (the folder is not committed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from azure.storage.blob import BlobServiceClient

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development account key, published in its README: not a secret.
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str | None:
    configured = os.environ.get("AOAI_OBS_AZURITE")
    if configured:
        return configured if Path(configured).is_file() else None
    for candidate in (REPO / ".azurite/node_modules/.bin/azurite-blob", REPO / "node_modules/.bin/azurite-blob"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("azurite-blob")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_azurite(binary: str, folder: Path, timeout: float = 30.0) -> Iterator[str]:
    """Start azurite-blob, yield a connection string to it, stop it."""
    port = _free_port()
    log = folder / "azurite.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--blobHost", "127.0.0.1",
             "--blobPort", str(port), "--location", str(folder)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"azurite-blob exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"azurite-blob did not listen on {port} in {timeout}s") from None
                time.sleep(0.1)
        yield (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={DEV_KEY};"
               f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def upload_folder(connection_string: str, container: str, root: Path, under: str = "") -> None:
    """Copy a folder into a new container, as a Cost Management export would have written it."""
    service = BlobServiceClient.from_connection_string(connection_string)
    client = service.create_container(container)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = f"{under}{path.relative_to(root).as_posix()}"
        with path.open("rb") as data:
            client.upload_blob(name, data)


def container_url(connection_string: str, container: str, prefix: str = "") -> str:
    """The path-style URL of a container on the emulator (`http://127.0.0.1:port/devstoreaccount1/<container>`)."""
    endpoint = next(p.split("=", 1)[1] for p in connection_string.split(";") if p.startswith("BlobEndpoint="))
    return f"{endpoint}/{container}" + (f"/{prefix}" if prefix else "")
