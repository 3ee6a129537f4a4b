"""How much disk an install of newsdesk takes: a fresh venv, torch from the local CPU wheel, then the project with
`pip install -c requirements.lock -e PROJECT[EXTRAS]`, as scripts/install does. Prints the venv's size (bytes of
its files, bytecode included) and how many distributions it holds, one line per install, for the README.

    .venv/bin/python bench/install_size.py                     # this checkout: the product alone, then .[dev]
    .venv/bin/python bench/install_size.py --project DIR ""    # another checkout (an older commit), product only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # exact: anything looser resolves to a multi-GB CUDA build


def folder_bytes(folder: Path) -> int:
    """The bytes of every file under `folder` (links not followed): what the install puts on disk."""
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def measure(project: Path, extras: str) -> tuple[int, int, float]:
    """(bytes, distributions, seconds) of a fresh venv holding `project[extras]`."""
    target = f"{project}[{extras}]" if extras else str(project)
    with tempfile.TemporaryDirectory(prefix="newsdesk-size-") as folder:
        venv = Path(folder) / "venv"
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, TORCH], check=True)
        subprocess.run([*pip, "-c", str(project / "requirements.lock"), "-e", target], check=True)
        seconds = time.monotonic() - started
        frozen = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        return folder_bytes(venv), len(frozen), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=ROOT, help="the checkout to install (default: this one)")
    parser.add_argument("extras", nargs="*", default=["", "dev"], help='extras to measure, "" for none')
    args = parser.parse_args()
    for extras in args.extras:
        size, distributions, seconds = measure(args.project.resolve(), extras)
        shown = f"-e .[{extras}]" if extras else "-e ."
        print(f"pip install {shown}: {size / 1e6:,.1f} MB, {distributions} distributions ({seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
