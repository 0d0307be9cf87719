"""stratforge.process: commands and pool workers die with their parent, however it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proc_tree import alive, assert_all_exit, descendants, linux_only, wait_until
from stratforge import process


def test_run_passes_input_output_and_exit_status() -> None:
    res = process.run(["sh", "-c", "cat; echo err >&2; exit 3"], input="hello", text=True)
    assert (res.returncode, res.stdout, res.stderr) == (3, "hello", "err\n")
    killed = process.run(["sh", "-c", "kill -9 $$"])
    assert killed.returncode == -signal.SIGKILL


def test_missing_command_is_exit_127() -> None:
    res = process.run(["stratforge-no-such-command"], text=True)
    assert res.returncode == 127 and "cannot run" in res.stderr


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    with pytest.raises(subprocess.TimeoutExpired):
        process.run(["sh", "-c", f'sleep 600 & echo $! > "{pidfile}"; wait'], timeout=1.0)
    wait_until(pidfile.exists, "the grandchild's pid file")
    assert_all_exit({int(pidfile.read_text())})


_PARENT = textwrap.dedent(
    """
    import sys, threading, time
    from pathlib import Path
    out = Path(sys.argv[2])
    if sys.argv[1] == "command":
        from stratforge import process
        proc = process.popen(["sh", "-c", f'sleep 600 & echo $! > "{out}.sleep"; wait'])
    else:
        import multiprocessing
        from stratforge.amm.engine import run_batch
        from stratforge.amm.strategy import FixedFee
        run = lambda: run_batch(FixedFee(50), 8, workers=2)
        if sys.argv[1] == "pool-thread":  # pool made off the main thread: only the portable watcher
            t = threading.Thread(target=run)
            t.start()
            t.join()
        else:
            run()
    out.write_text("ready")
    time.sleep(600)
    """
)


@linux_only
@pytest.mark.parametrize("kind", ["command", "pool", "pool-thread"])
def test_children_exit_when_the_parent_is_sigkilled(tmp_path: Path, kind: str) -> None:
    ready = tmp_path / "ready"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, kind, str(ready)])
    try:
        wait_until(ready.exists, "the parent to start its children")
        if kind == "command":
            wait_until(Path(f"{ready}.sleep").exists, "the command's own child")
        children = descendants(parent.pid)
        assert len(children) >= (3 if kind == "command" else 2), children  # supervisor, sh, sleep / 2 workers
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=600)
        assert_all_exit(children)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert not alive(parent.pid)


def test_die_with_parent_exits_at_once_when_already_orphaned() -> None:
    code = "import os; from stratforge.process import die_with_parent; die_with_parent(os.getppid() + 1); print('survived')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert res.returncode == 1 and "survived" not in res.stdout
