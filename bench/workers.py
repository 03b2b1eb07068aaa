"""Each contender's step compiled and run in a process of its own.

On a CPU, the same program compiled later in a process runs slower, increasingly: four
compiles of one optax step on 1000 small leaves, timed side by side, ran 1.00, 1.10,
1.15 and 1.18 times the first one's time (every time, whatever was compiled in between,
deleted or kept). Contenders compiled one after another in one process would so be
ranked by their place in the compile order. Here each contender's step is the first
step compiled in its process, as a training step usually is; the parent only sends
commands and collects times, so one contender runs at a time and rounds alternate as
before.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import statistics
from multiprocessing.connection import Connection
from typing import Any

from bench import timing


def _serve(conn: Connection, factory: str, args: tuple) -> None:
    """The child: ``factory`` (``"module:function"``) called with ``args`` prepares one
    contender's step, returning ``(record, step)`` with ``step = (compiled, make_carry,
    extra)`` and ``compiled(*carry, extra)`` the next carry (``step`` None on failure);
    then the child answers ``("fresh",)`` (new buffers), ``("run", n)`` (``n`` steps:
    seconds per step and minor page faults) and ``("stop",)``."""
    import jax

    jax.config.update("jax_enable_x64", False)  # the benchmark measures float32 steps
    module, name = factory.split(":")
    record, step = getattr(importlib.import_module(module), name)(*args)
    conn.send(record)
    if step is None:
        return
    runner = timing.InProcessStep(*step)
    with timing.settled_heap():
        while True:
            msg = conn.recv()
            if msg[0] == "fresh":
                runner.fresh()
                conn.send(None)
            elif msg[0] == "run":
                conn.send(runner.run(msg[1]))
            else:
                return


class StepProcess:
    """One contender's compiled step in a child process (see the module docstring).

    ``factory`` names the function that prepares it there (see ``_serve``); ``record``
    is what it reported (status, compile time, memory, counts); ``fresh()`` allocates new
    buffers there; ``run(n)`` times ``n`` steps.
    """

    def __init__(self, factory: str, *args: Any):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, factory, args), daemon=True)
        self._proc.start()
        child.close()
        try:
            self.record: dict = self._conn.recv()
        except EOFError:
            self._proc.join()
            self.record = {"status": f"error: worker exited with code {self._proc.exitcode}"}
        self.ok = self.record.get("status") == "ok"

    def fresh(self) -> None:
        self._conn.send(("fresh",))
        self._conn.recv()

    def run(self, n: int) -> tuple[float, int | None]:
        self._conn.send(("run", n))
        return self._conn.recv()

    def close(self) -> None:
        if self._proc.is_alive():
            with contextlib.suppress(OSError):  # the child is gone: nothing to stop
                self._conn.send(("stop",))
        self._proc.join(timeout=30)
        if self._proc.is_alive():
            self._proc.kill()
        self._conn.close()


def spawn_orders(names: list[str], processes: int) -> list[list[str]]:
    """The order in which to start each round of processes (one process a contender):
    as listed, then reversed, alternately, so that every contender's processes stand, on
    average, at the same place in the start order.

    Where a process was started shows in its time: of two processes running one program,
    the one started later ran faster, by 1-2% (four processes each of two contenders
    on the 1000-leaf SGD-with-momentum step, four runs: the later-started contender read
    0.98-1.00 of the other, whichever library it was). With one start order for every
    round, the contender listed first was measured slower than identical programs listed
    after it.
    """
    return [names if k % 2 == 0 else names[::-1] for k in range(processes)]


def geometric_means(timed: dict[str, list[float]], name: str, processes: int) -> list[float]:
    """Round by round, the geometric mean of ``name#0 .. name#{processes-1}``'s samples
    (empty if none of them ran)."""
    runs = [timed[key] for key in (f"{name}#{k}" for k in range(processes)) if key in timed]
    return [statistics.geometric_mean(r) for r in zip(*runs, strict=True)] if runs else []


def _call(conn: Connection, factory: str, args: tuple) -> None:
    import jax

    jax.config.update("jax_enable_x64", False)
    module, name = factory.split(":")
    conn.send(getattr(importlib.import_module(module), name)(*args))


def call(factory: str, *args: Any) -> Any:
    """``factory(*args)`` (``"module:function"``) run in a fresh process; its result."""
    ctx = multiprocessing.get_context("spawn")
    conn, child = ctx.Pipe()
    proc = ctx.Process(target=_call, args=(child, factory, args), daemon=True)
    proc.start()
    child.close()
    try:
        return conn.recv()
    except EOFError:
        return {"status": f"error: worker exited with code {proc.exitcode}"}
    finally:
        proc.join(timeout=30)
        conn.close()
