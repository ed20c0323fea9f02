"""Run `foundry-operator` as the container does, with a read-only root filesystem enforced in-process.

No container runtime is available to the tests, so a Python audit hook stands in for the
read-only mount: every file the process opens for writing, and every file-system change it makes
(mkdir, rename, remove, chmod...), must be under $TMPDIR (the chart's only writable mount, /tmp)
or be /dev/null. Anything else is printed as a `READ-ONLY-ROOT VIOLATION` line on stderr, which
the test reads from the log. Usage: `python readonly_root.py run -A --standalone`.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

ALLOWED = (os.path.realpath(os.environ.get("TMPDIR", "/tmp")), "/dev/null")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
CHANGES = {
    "os.mkdir",
    "os.rename",
    "os.replace",
    "os.remove",
    "os.rmdir",
    "os.symlink",
    "os.link",
    "os.chmod",
    "os.chown",
    "os.truncate",
    "os.utime",
    "shutil.copyfile",
    "shutil.rmtree",
}


def _allowed(path: Any) -> bool:
    if isinstance(path, int):
        return True  # an already-open descriptor: its opening was checked
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    real = os.path.realpath(os.fspath(path))
    return any(real == root or real.startswith(root + os.sep) for root in ALLOWED)


def _report(event: str, path: Any) -> None:
    os.write(2, f"READ-ONLY-ROOT VIOLATION: {event} {path!r}\n".encode())


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE_FLAGS
        )
        if writing and path is not None and not _allowed(path):
            _report(event, path)
    elif event in CHANGES and args and not _allowed(args[0]):
        _report(event, args[0])


if __name__ == "__main__":
    sys.addaudithook(_hook)
    sys.argv = ["foundry-operator", *sys.argv[1:]]
    runpy.run_module("foundry_operator", run_name="__main__", alter_sys=True)
