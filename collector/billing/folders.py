"""A local folder as an export source: every file under it, named by its path relative to the folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from collector.errors import InputError, Problem


@dataclass(frozen=True)
class LocalFile:
    """One file under the folder; `name` is '/'-separated like a blob name, so manifests match it the same way."""

    root: Path
    name: str

    @property
    def where(self) -> Path:
        return self.root / self.name

    def open(self) -> IO[bytes]:
        return (self.root / self.name).open("rb")


@dataclass(frozen=True)
class FolderSource:
    """A folder holding what an export wrote to its container (or a copy of it), at any depth."""

    root: Path

    def files(self) -> Iterator[LocalFile]:
        if not self.root.is_dir():
            raise InputError([Problem(self.root, None, "no such folder",
                                      "give the folder an export was copied to, or the container's URL")])
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            yield LocalFile(self.root, path.relative_to(self.root).as_posix())
