"""Ctrl-C (SIGINT) for the command line and the scripts: it stops the run where it lands, with status 130.

Raising KeyboardInterrupt at once goes wrong in two places, and there it is delivered again
:data:`REDELIVER_S` later instead:

- in a garbage-collector callback (JAX's ``_xla_gc_callback`` runs so often that most Ctrl-Cs in a run's first
  seconds land there) or a ``__del__``, Python prints "Exception ignored", drops the interrupt and the run
  would go on to its end;
- in an import, it leaves a module half built (then NumPy's or JAX's next import fails, or the interpreter
  crashes).
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn

INTERRUPTED = 130
"""Exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it; typer returns it too)."""
REDELIVER_S = 0.01
"""Delay before a Ctrl-C that could not end the run where it landed is delivered again: long beside a garbage-
collector callback (microseconds), short beside a person's reaction. During an import it is re-armed until the
import has finished (JAX's takes about 1 s here, so about 100 times)."""


@contextlib.contextmanager
def noting_interrupts() -> Iterator[list[int]]:
    """Ctrl-C raises KeyboardInterrupt, or later where that goes wrong (see the module docstring). Every
    Ctrl-C is also noted in the list yielded, so that one that other code swallows all the same can still end
    the run with :data:`INTERRUPTED`. A SIGINT that is ignored (a background job) or handled by the caller,
    and a call from another thread, are left alone."""
    noted: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler or threading.current_thread() is not threading.main_thread():
        yield noted
        return
    pending: list[threading.Timer] = []

    def deliver_later() -> None:
        pending.append(threading.Timer(REDELIVER_S, _thread.interrupt_main))
        pending[-1].daemon = True
        pending[-1].start()

    def handler(signum, frame):
        noted.append(signum)
        if _importing(frame):
            deliver_later()
            return
        raise KeyboardInterrupt

    previous_hook = sys.unraisablehook

    def dropped(report) -> None:
        if issubclass(report.exc_type, KeyboardInterrupt):
            deliver_later()
        else:
            previous_hook(report)

    signal.signal(signal.SIGINT, handler)
    sys.unraisablehook = dropped
    try:
        yield noted
    finally:
        for timer in pending:
            timer.cancel()
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGINT, previous)


def _importing(frame) -> bool:
    """Whether ``frame`` runs inside an import."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def exit_interrupted() -> NoReturn:
    """Ends the process with :data:`INTERRUPTED`, without the interpreter's teardown: that crashes (SIGSEGV) when
    Ctrl-C came while XLA was compiling on its own threads. Every output is complete or absent by now (atomic
    writes)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(INTERRUPTED)
