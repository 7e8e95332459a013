"""Exec a command with Linux's parent-death signal armed.

Run as `python -I -S _pdeathsig.py <parent-pid> <signal> -- <argv...>` by devstack.procs.spawn.
subprocess's preexec_fn could call prctl too, but it is unsafe when the parent has threads
(pytest and the stack do); a tiny exec wrapper is not. The armed signal survives execve, so
the JVM or moto server we exec is killed by the kernel when the process that started it dies,
even by SIGKILL, where no atexit handler runs. This file must stay stdlib-only: it runs with
-I -S (no site, no sys.path from the caller) to start fast and predictably.
"""

import ctypes
import os
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    parent_pid, signal_number, separator, *argv = sys.argv[1:]
    if separator != "--" or not argv:
        sys.exit("usage: _pdeathsig.py <parent-pid> <signal> -- <argv...>")
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal_number), 0, 0, 0)
    except (OSError, AttributeError):
        # Not Linux: the parent's atexit/stop() is then the only guard.
        pass
    # The parent may have died between fork and prctl; then no signal would ever come.
    if os.getppid() != int(parent_pid):
        sys.exit(1)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
