"""The monthly report as PDF, printed from its HTML by a headless chromium, when one is installed.

Chromium is looked for at /usr/bin/chromium, then as `chromium` or `chromium-browser` on the PATH. Without it
there is no PDF: `find_chromium` says None and the HTML and CSV are written all the same. Chromium runs with a
throwaway profile folder (so runs never share or lock one), no sandbox (containers rarely allow its namespaces)
and a time limit.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from collector.errors import TerminalError

log = logging.getLogger(__name__)

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
TIMEOUT_S = 90.0
MISSING = ("no PDF: chromium is not installed (looked for /usr/bin/chromium, chromium and chromium-browser on the "
           "PATH); install it (Debian: apt-get install chromium) or open the HTML and print it")


def find_chromium() -> str | None:
    """The chromium executable to print with, or None."""
    for candidate in CANDIDATES:
        found = candidate if Path(candidate).is_file() and candidate.startswith("/") else shutil.which(candidate)
        if found:
            return found
    return None


def print_pdf(html: Path, out: Path, chromium: str, timeout: float = TIMEOUT_S) -> None:
    """Print the HTML file to `out` (A4, as its CSS says); TerminalError when chromium fails or writes nothing."""
    with tempfile.TemporaryDirectory(prefix="aoai-obs-chromium-") as profile:
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--no-first-run", "--no-pdf-header-footer", f"--user-data-dir={profile}",
                   f"--print-to-pdf={out}", html.resolve().as_uri()]
        log.debug("printing %s to %s", html, out)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            raise TerminalError(f"chromium did not print {html.name} within {timeout:g}s; the HTML is there, "
                                "print it from a browser") from e
        except OSError as e:
            raise TerminalError(f"cannot run {chromium}: {e}") from e
    if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        said = (done.stderr or "").strip().splitlines()[-3:]
        raise TerminalError(f"chromium could not print {html.name} to PDF (exit {done.returncode}): "
                            + " | ".join(said))
