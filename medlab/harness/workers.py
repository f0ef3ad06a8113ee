"""Worker processes for :mod:`medlab.harness.backends`: a Python process (``python -c 'from
medlab.harness.workers import serve; serve()'``, in its own session) that runs calls one at a
time, each with its own environment, file descriptors and kernels; its calls and answers are
pickles on its stdin and stdout.

Stopping is cooperative and certain: :meth:`Worker.interrupt` sends SIGINT, which interrupts
the call in progress once (:func:`~medlab.harness.notebooks.run_notebook` then kills its kernel,
as a sequential run does on Ctrl-C) and refuses any further call; a worker that does not stop
within :data:`GRACE_S` is killed with its kernel (:meth:`Worker.kill`); a worker whose parent
dies interrupts its own call.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

__all__ = ["Worker", "WorkerLost", "serve", "GRACE_S"]

GRACE_S = 60.0  # how long an interrupted run may take to kill its kernel before it is killed
_SERVE = "from medlab.harness.workers import serve; serve()"


class WorkerLost(RuntimeError):
    """A worker process ended while it ran a notebook."""


class Worker:
    """One worker process, seen from its parent: calls go one at a time (``fn`` and its
    arguments must pickle: module-level functions, plain data)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a terminal's Ctrl-C reaches the parent, which relays it
        )
        self.busy = self.stopped = self._ready = False
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``fn(*args, **kwargs)`` in the worker; its value, or its exception raised here
        (KeyboardInterrupt when interrupted); :class:`WorkerLost` if the worker ended."""
        if not self._ready:  # its SIGINT handler is in place: from now on it may be interrupted
            self._ready = self._receive() == ("ready", None)
        with self._lock:
            if self.stopped:
                raise KeyboardInterrupt
            self.busy = True
        try:
            try:
                _send(self.proc.stdin, (fn, args, kwargs))
            except BrokenPipeError:
                pass  # it has ended: _receive says how
            tag, value = self._receive()
        finally:
            self.busy = False
        if tag == "error":
            raise value
        return value

    def _receive(self) -> Any:
        msg = _read(self.proc.stdout)
        if msg is None:
            code = self.proc.wait()
            raise WorkerLost(
                f"the worker process {self.proc.pid} ended (exit status {code}) during a run; "
                "see its messages above"
            )
        return msg

    def interrupt(self) -> None:
        """Interrupt the call in flight (SIGINT), and refuse further calls."""
        with self._lock:
            self.stopped = True
            if self.busy and self.alive():
                try:
                    os.kill(self.proc.pid, signal.SIGINT)
                except OSError:
                    pass

    def kill(self) -> None:
        """Kill the worker and whatever it started (its kernel leads its own session)."""
        try:
            procs = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            procs = []
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # a kernel and its own children
            except OSError:
                try:
                    p.kill()
                except psutil.Error:
                    pass
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        """End the worker: its pipe closed, it exits; killed if it does not."""
        if self.alive():
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=GRACE_S)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _send(pipe: Any, msg: Any) -> None:
    data = pickle.dumps(msg)
    pipe.write(struct.pack("!Q", len(data)) + data)
    pipe.flush()


def _read(pipe: Any) -> Any:
    """The next message, or None at the end of the pipe."""
    head = pipe.read(8)
    if len(head) < 8:
        return None
    size = struct.unpack("!Q", head)[0]
    data = pipe.read(size)
    return pickle.loads(data) if len(data) == size else None  # cut short: the sender is gone


class _Serving:
    """The worker side's state: a SIGINT interrupts the call in progress, once; one that comes
    between calls interrupts the next (the parent sends it only while a call is in flight)."""

    def __init__(self) -> None:
        self.busy = self.fired = self.pending = False

    def on_sigint(self, signum: int, frame: Any) -> None:
        if self.busy and not self.fired:
            self.fired = True
            raise KeyboardInterrupt
        if not self.busy:
            self.pending = True

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            self.fired = False
            self.busy = True
            if self.pending:
                self.fired = True
                raise KeyboardInterrupt
            return ("ok", fn(*args, **kwargs))
        except BaseException as exc:
            return ("error", exc)
        finally:
            self.busy = False


def serve() -> None:
    """A worker process: run the calls that come on stdin, one at a time, answering on stdout
    (kept private: anything else printed to fd 1 goes to stderr); interrupted by SIGINT, and by
    its parent's death."""
    inbox, outbox = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    state = _Serving()
    signal.signal(signal.SIGINT, state.on_sigint)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        _send(outbox, ("ready", None))
        while (msg := _read(inbox)) is not None:
            try:
                out = state.run(*msg)
            except KeyboardInterrupt:  # landed between two statements of run's bookkeeping
                out = ("error", KeyboardInterrupt())
            _send(outbox, _picklable(out))
    except (BrokenPipeError, KeyboardInterrupt):  # the parent is gone, or stopped us idle
        pass


def _picklable(out: tuple[str, Any]) -> tuple[str, Any]:
    try:
        pickle.dumps(out)
        return out
    except Exception as exc:  # an exception that does not pickle: its text does
        value = out[1] if out[0] == "error" else exc
        return ("error", RuntimeError(f"{type(value).__name__}: {value}"))


def _watch_parent(ppid: int) -> None:
    """In a worker: when the parent dies (SIGKILL, a crash), interrupt the run in progress, so
    that its kernel is killed too."""
    while os.getppid() == ppid:
        time.sleep(1.0)
    signal.raise_signal(signal.SIGINT)
