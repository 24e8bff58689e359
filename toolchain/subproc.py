"""Child processes (gcc, QEMU) that cannot outlive edgec.

Ctrl-C and SIGTERM are handled by killing the child's process group; SIGKILL of edgec (an
OOM kill, a CI runner's hard stop) runs no handler, so on Linux the kernel is asked to kill
the child when its parent dies (prctl PR_SET_PDEATHSIG). Elsewhere this is a no-op.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # looked up once: preexec_fn must not import or allocate much


def die_with_parent():
    """A preexec_fn for subprocess.Popen: SIGKILL this child when the process that started
    it dies. Returns None where the OS has no such mechanism."""
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec
