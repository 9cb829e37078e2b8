"""Files only the service's own user may read: the instance folder (0700) and its files (0600).

The modes are set with an explicit chmod after creation, so they hold whatever the
process' umask is (a umask of 0 would otherwise leave 0666 files; one of 0o600 would
leave files their owner cannot read).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) if missing; a folder made here is 0700."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    os.chmod(folder, FOLDER_MODE)


def create_private_file(path: Path) -> None:
    """Create an empty file with mode 0600 unless it exists (an existing one is left alone)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (created or truncated) and leave it 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, FILE_MODE)  # O_TRUNC keeps an existing file's mode: set it anyway
        handle.write(data)


def make_private(path: Path) -> None:
    """chmod an existing file 0600 if it is not already (a missing file is fine)."""
    try:
        mode = os.stat(path, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISREG(mode) and stat.S_IMODE(mode) != FILE_MODE:
        os.chmod(path, FILE_MODE)


def repair_folder(folder: Path) -> None:
    """chmod ``folder`` and every folder below it 0700, every regular file 0600.

    Symbolic links are neither followed nor changed.
    """
    make_private_folder(folder)
    os.chmod(folder, FOLDER_MODE)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            path = Path(root, name)
            if not path.is_symlink():
                os.chmod(path, FOLDER_MODE)
        for name in files:
            make_private(Path(root, name))
