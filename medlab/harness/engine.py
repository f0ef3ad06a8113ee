"""papermill's own engine (nbclient), saving the executed notebook less often.

papermill writes the whole executed notebook twice per cell (when the cell starts and when it
ends). Once a notebook holds plotly.js and its figures (about 5 MB), each write takes 40-60 ms:
about 4 s of a 50 s quick-mode notebook (notebook 03, 105 writes, measured 2026-12-08). This
engine writes it when the run starts; at a cell's end only when at least ``SPARSE`` times the
last write's duration has passed since the last write (so writing costs at most about 1/SPARSE
of the run, and a long cell is on disk as soon as it ends); on papermill's autosave, while a
cell prints; and at the end, whatever ends the run: a failing cell (papermill writes it before
raising) and a kernel that died (the engine's ``finally``) included. If the process running
papermill is itself killed, the notebook on disk lacks at most the cell that was running and
the short cells just before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

__all__ = ["ENGINE", "SparseSaves", "SparseSaveEngine"]

#: the name ``run_notebook`` passes to ``papermill.execute_notebook(engine_name=...)``
ENGINE = "medlab"
#: a cell's end writes the notebook once SPARSE times the last write's duration has passed
SPARSE = 20


class SparseSaves(NotebookExecutionManager):
    """papermill's execution manager without its two writes per cell (the cell's metadata is
    still set): it writes at a cell's end only when ``SPARSE`` times the last write's duration
    has passed since it; the writes at the start, on autosave and at the end stay."""

    _in_cell = False  # a cell's start or end: save() writes nothing
    _write_s = 0.0  # how long the last write took (s)

    def save(self, **kwargs: Any) -> None:
        if not self._in_cell:
            t0 = self.now()
            super().save(**kwargs)  # writes, and restarts the autosave clock
            self._write_s = (self.now() - t0).total_seconds()

    @contextmanager
    def _no_writes(self) -> Iterator[None]:
        self._in_cell = True
        try:
            yield
        finally:
            self._in_cell = False

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        with self._no_writes():
            super().cell_start(cell, cell_index, **kwargs)

    def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        with self._no_writes():
            super().cell_complete(cell, cell_index, **kwargs)
        if (self.now() - self.last_save_time).total_seconds() >= SPARSE * self._write_s:
            self.save()


class SparseSaveEngine(NBClientEngine):
    """:class:`papermill.engines.NBClientEngine` with :class:`SparseSaves` as its manager."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        **kwargs: Any,
    ) -> Any:
        nb_man = SparseSaves(
            nb,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()  # writes the notebook, also after a dead kernel
        return nb_man.nb


papermill_engines.register(ENGINE, SparseSaveEngine)
