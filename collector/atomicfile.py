"""Output files written whole or not at all: a temporary file beside the target, renamed into place when complete."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def atomic_path(out: Path) -> Iterator[Path]:
    """A temporary path beside `out`, renamed to `out` only when the block completes; removed otherwise."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        yield Path(temp)
        mask = os.umask(0)  # mkstemp makes the file 0600; give it the permissions a plain open() would
        os.umask(mask)
        os.chmod(temp, 0o666 & ~mask)
        os.replace(temp, out)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_text(out: Path | None) -> Iterator[TextIO]:
    """A text stream to `out` that appears only when complete (standard output when `out` is None or '-')."""
    if out is None or str(out) == "-":
        yield sys.stdout
        return
    with atomic_path(out) as temp, temp.open("w", newline="", encoding="utf-8") as stream:
        yield stream
