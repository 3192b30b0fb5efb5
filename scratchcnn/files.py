"""Writing files safely: atomically, only where a regular file may go, with the usual permissions.

Every file scratchcnn writes (models, checkpoints, metrics) goes through :func:`atomic_write`:

* the data go to a hidden temporary file beside the target, are flushed to disk, then renamed
  over it, so a reader sees the old file or the new one, never a mix;
* a symbolic link is followed: its target is replaced and the link stays a link;
* an existing file keeps its permission bits; a new one gets the user's umask (as ``open`` would);
* only a regular file (or a path that does not exist yet) is ever replaced: never a device, a
  folder, a pipe or a socket;
* temporary files left behind by a process that was killed mid-save (SIGKILL, power loss) are
  removed by the next save to the same path on the same machine.
"""

from __future__ import annotations

import os
import secrets
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_TEMP_SUFFIX = ".tmp"


def write_target(path) -> Path:
    """The file a write to ``path`` really replaces: ``path``, or the end of its symlink chain.

    Raises ``OSError`` naming ``path`` when it exists but is not a regular file (a folder, a device
    such as ``/dev/full``, a pipe, a socket) or is a symlink loop."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    except OSError as err:  # a symlink loop, a path through a file, ...
        raise OSError(f"{path}: cannot write here ({err.strerror or err})") from err
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise OSError(f"{path}: refusing to write: it is {kind}")
    return target


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.{socket.gethostname()}."


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove temporary files that an earlier save to ``target`` on this machine left behind when
    its process died (killed mid-save); return what was removed. A live process's files stay."""
    prefix = _temp_prefix(target)
    removed = []
    try:
        candidates = list(target.parent.iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        name = candidate.name
        if not (name.startswith(prefix) and name.endswith(_TEMP_SUFFIX)):
            continue
        pid_text = name[len(prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        try:
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but belongs to someone else
        return True
    return True


def atomic_write(path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(stream)`` to fill a temporary file, then rename it over ``path``; return
    ``path``. See the module docstring for what is guaranteed. Raises ``OSError`` naming ``path``
    when it cannot be written there."""
    path = Path(path)
    target = write_target(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"{path}: cannot write here ({err.strerror or err})") from err
    remove_stale_temporaries(target)
    try:
        keep_mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        keep_mode = None
    name = f"{_temp_prefix(target)}{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"
    tmp = directory / name
    try:
        # 0o666 less the umask, like any new file; mkstemp's 0o600 would hide models from others.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        raise OSError(f"{path}: cannot write here ({err.strerror or err})") from err
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            if keep_mode is not None:
                os.fchmod(stream.fileno(), keep_mode)
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text."""
    return atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))
