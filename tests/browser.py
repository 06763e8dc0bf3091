"""Debian's Chromium for the browser tests, installed when missing (never a browser
build Playwright would download: ``playwright install`` is not used)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def chromium() -> str:
    """The path of Debian's Chromium, after ``apt-get install chromium`` if it is missing
    and this user may install packages; fails with the command to run otherwise."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise RuntimeError(f"{CHROMIUM} is missing: run `apt-get install -y chromium` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "chromium"]
    if subprocess.run(install, env=env, check=False, capture_output=True).returncode:
        subprocess.run([apt, "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    return str(CHROMIUM)
