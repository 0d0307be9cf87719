"""Child processes that die with their parent, however the parent dies (SIGKILL included).

Two kinds of children:

* Python workers we start ourselves (the simulation pool): they call :func:`die_with_parent` first
  thing (the pool's initializer).
* External commands (solc under node, agent CLIs): :func:`popen` starts them under a small
  supervisor, ``python -m stratforge.process PARENT_PID -- argv...``, which leads its own process
  group (session) with the command in it, and kills that whole group when the parent goes away.
  A timeout in the caller still works as before: ``os.killpg(proc.pid, SIGKILL)`` reaches the
  supervisor, the command and anything it spawned.

How "the parent went away" is noticed, belt and braces:

* Linux: ``prctl(PR_SET_PDEATHSIG)`` asks the kernel to signal the child the moment its parent
  exits. The kernel ties this to the *thread* that started the child, so it is only requested when
  that thread is the main thread (or the thread waits for the child, as ``popen`` callers do).
* Everywhere (macOS included): a daemon thread polls ``os.getppid()``; a changed parent pid means
  the parent died and the child was re-parented (to init or a subreaper).

The pdeathsig is cleared on fork, so grandchildren of a command are reached by the group kill, not
by the kernel; a grandchild that leaves the group (``setsid``) is beyond reach of either mechanism.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

_PR_SET_PDEATHSIG = 1
#: How often the portable watcher checks the parent pid (seconds).
WATCH_INTERVAL_S = 0.25


def _set_parent_death_signal(sig: int) -> bool:
    """Linux only: have the kernel send ``sig`` to this process when its parent exits."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, on_orphaned: Any) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCH_INTERVAL_S)
        on_orphaned()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def die_with_parent(parent_pid: int, kernel_signal: bool = True) -> None:
    """Call in a Python child process: exit as soon as ``parent_pid`` is no longer its parent.

    ``kernel_signal`` requests PR_SET_PDEATHSIG (SIGKILL) on Linux; pass False when the thread that
    started this child may end before the parent process does (the kernel would fire on that).
    """
    if kernel_signal:
        _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)
    _watch_parent(parent_pid, lambda: os._exit(1))


def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(argv, **kwargs)`` under the supervisor: the command dies with this process.

    The command runs in a new session (process group) led by the supervisor; stdin/stdout/stderr and
    every other Popen option apply to it as usual. Its exit status is passed through (a command
    killed by signal N looks killed by N to the caller).
    """
    kwargs["start_new_session"] = True
    wrapped = [sys.executable, "-m", "stratforge.process", str(os.getpid()), "--", *argv]
    return subprocess.Popen(wrapped, **kwargs)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group ``proc`` leads (a :func:`popen` child and everything under it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run(argv: list[str], *, input: Any = None, timeout: float | None = None, **kwargs: Any) -> Any:
    """Like ``subprocess.run(argv, input=..., timeout=..., capture_output=True)``, via :func:`popen`.

    On a timeout, or any exception (Ctrl-C included), the whole group is killed before re-raising.
    """
    kwargs.setdefault("stdin", subprocess.PIPE if input is not None else None)
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    with popen(argv, **kwargs) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except BaseException:
            kill_group(proc)
            proc.wait()
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


# --------------------------------------------------------------------------- the supervisor


def _supervise(parent_pid: int, argv: list[str]) -> int:
    def kill_everything(*_: Any) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(0, signal.SIGKILL)  # our own group: the command, its children and us
        os._exit(1)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, kill_everything)
    # The caller's thread waits for us (popen/run callers block in communicate), so the kernel signal
    # is safe here; SIGTERM, not SIGKILL, so the handler can take the group down with us.
    _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:
        kill_everything()
    try:
        # If the caller SIGKILLs only the supervisor, the kernel still takes the command down (Linux).
        child = subprocess.Popen(argv, preexec_fn=lambda: _set_parent_death_signal(signal.SIGKILL))
    except OSError as exc:
        print(f"stratforge.process: cannot run {argv[0]!r}: {exc}", file=sys.stderr)
        return 127
    _watch_parent(parent_pid, kill_everything)  # after the fork: preexec_fn wants no other threads
    code = child.wait()
    if code < 0:  # pass a fatal signal on as our own
        with contextlib.suppress(OSError, ValueError):  # SIGKILL/SIGSTOP cannot be handled anyway
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code  # a signal whose default action is not to terminate
    return code


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--" or not args[0].isdigit():
        print("usage: python -m stratforge.process PARENT_PID -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    return _supervise(int(args[0]), args[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
