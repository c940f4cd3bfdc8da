"""The modes of the files the daemon and its commands write. The journal, its backups
and exports hold customers' names and addresses; the lock decides which process may run
the daemon; file-drop notices are read by other systems as the daemon's word. So each is
created with an explicit mode, whatever the process umask is, and only the service user
may write any of them:

- journal database (and SQLite's ``-wal``/``-shm``, which take the database's mode),
  backups, exports and the journal lock: ``0600``;
- file-drop notices: ``0640`` in a ``0750`` directory, so a pickup system in the service
  user's group may read them but not write them.

Access to the control socket is given by the socket's own group and mode (``[access]``),
never by these files' group.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE = 0o600
SHARED_READ = 0o640
SHARED_DIR = 0o750


def restrict(path: str | Path, mode: int) -> None:
    """Take away from an existing ``path`` every permission ``mode`` does not grant (a file
    made before under a looser umask); one this user does not own is left as it is."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    current = stat.S_IMODE(st.st_mode)
    if current & ~mode:
        try:
            os.chmod(path, current & mode)
        except PermissionError:
            pass  # not ours (a root-made file): the daemon cannot change it, nor is it its to


def private_database(path: str | Path) -> None:
    """Create the SQLite database file ``path`` as 0600 before SQLite opens it (SQLite gives
    the ``-wal`` and ``-shm`` files the database's mode), and restrict existing ones."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
    os.close(fd)
    for suffix in ("", "-wal", "-shm"):
        restrict(f"{path}{suffix}", PRIVATE)


def open_private(path: str | Path, mode: int = PRIVATE) -> int:
    """A new or truncated file for writing with exactly ``mode`` (umask or not); an fd."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    os.fchmod(fd, mode)  # O_CREAT applies the umask, and an existing file keeps its mode
    return fd
