"""A progress indicator on stderr while Azure is read: only on a terminal, never in CI logs or pipes."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn


class Steps:
    """Counts Azure calls; renders a transient rich progress bar when enabled and there is more than one step."""

    def __init__(self, enabled: bool, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._enabled = enabled and self._console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Steps:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def expect(self, count: int, description: str) -> None:
        """Announce `count` more steps; the bar appears once there is more than one to wait for."""
        if not self._enabled or count <= 0:
            return
        if self._progress is None:
            if count <= 1:
                return
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=self._console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(description, total=count)
            return
        assert self._task is not None
        task = self._progress.tasks[0]
        self._progress.update(self._task, total=(task.total or 0) + count, description=description)

    def done(self, description: str | None = None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
            if description:
                self._progress.update(self._task, description=description)
