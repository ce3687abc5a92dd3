"""Entry point of the crash and concurrency tests: emit runs, as `bareme emit` does.

One emitter:  python emit_child.py DB_URL RUN_ID
    opens the store, prints "ready", waits for a line on stdin (the start signal), emits the
    run, prints "emitted FIRST LAST" (exit 0) or "refused: MESSAGE" (exit 1).

Many emitters, started quickly:  python emit_child.py --fork DB_URL
    imports everything once, prints "forker ready", then for every RUN_ID line read on stdin
    forks an emitter process that opens its own connection, prints "ready PID", waits for
    SIGUSR1 (the start signal), emits the run and prints "emitted PID" (or "refused PID").
    The crash test SIGKILLs these emitters at random moments; the forker reaps them.

BAREME_TEST_EMIT_PAUSE widens the window between invoice updates (engine.store.emission).
"""

from __future__ import annotations

import os
import signal
import sys

from engine.store.db import Store, StoreError, make_engine, normalise_url, open_store
from engine.store.emission import emit_run


def _emit_once(url: str, run_id: str) -> int:
    store = open_store(url, migrate=False)
    with store.engine.connect():  # a live connection before the start signal
        pass
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        result = emit_run(store, run_id)
    except StoreError as exc:
        print(f"refused: {exc}", flush=True)
        return 1
    finally:
        store.close()
    print(f"emitted {result.first} {result.last}", flush=True)
    return 0


def _say(text: str) -> None:
    """One line in one write(2): forked emitters share the pipe, and a print() may write the
    text and its newline separately, letting two emitters' lines interleave."""
    os.write(1, (text.replace("\n", " ") + "\n").encode())


def _emitter(url: str, run_id: str) -> None:
    """In a forked process: never returns."""
    code = 0
    try:
        normal = normalise_url(url)
        store = Store(normal, make_engine(normal))
        with store.engine.connect():
            pass
        _say(f"ready {os.getpid()}")
        signal.sigwait({signal.SIGUSR1})
        try:
            emit_run(store, run_id)
            _say(f"emitted {os.getpid()}")
        except StoreError as exc:
            _say(f"refused {os.getpid()}: {exc}")
            code = 1
        store.close()
    except BaseException as exc:  # report, never fall back into the forker's loop
        _say(f"failed {os.getpid()}: {type(exc).__name__}: {exc}")
        code = 2
    finally:
        os._exit(code)


def _forker(url: str) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})  # pending until sigwait
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # emitters are reaped automatically
    print("forker ready", flush=True)
    for line in sys.stdin:
        run_id = line.strip()
        if not run_id:
            break
        if os.fork() == 0:
            _emitter(url, run_id)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--fork":
        sys.exit(_forker(sys.argv[2]))
    sys.exit(_emit_once(sys.argv[1], sys.argv[2]))
