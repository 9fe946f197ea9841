"""The system programs the tests drive, found once on ``PATH``; a missing one fails, never skips.

``make test`` installs them first (``scripts/ensure-system-deps``, from Debian's packages), so a
missing program means that step did not run or failed: the test fails with the command that
installs it instead of passing silently on a machine that cannot check what it claims.
"""

from __future__ import annotations

import shutil

import pytest

# Program on PATH -> the Debian package scripts/ensure-system-deps installs it from.
PACKAGES = {
    "node": "nodejs",
    "java": "openjdk-17-jre-headless",
    "chromium": "chromium",
    "wrk": "wrk",
}


def require(program: str) -> str:
    """The absolute path of ``program`` on ``PATH``; fails the calling test when it is absent."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(
            f"{program} is not installed: run `make system-deps` "
            f"(or: sudo apt-get install -y {PACKAGES[program]})",
            pytrace=False,
        )
    return path
