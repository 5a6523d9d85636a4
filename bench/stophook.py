"""`online cutover --stop-writers CMD` for writers that live on the host (the tests' and the
benchmark's write loops): CMD, run inside the migrator container, asks through a file in
the mounted config directory and waits for the answer; a thread here stops the writers
when asked and answers. Bounded: CMD gives up after ``seconds``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

ASKED, DONE = ".stop-writers.asked", ".stop-writers.done"


class StopHook:
    def __init__(self, config_dir: Path, stop: Callable[[], object], seconds: float = 300):
        self.dir, self.stop, self.seconds = config_dir, stop, seconds
        for name in (ASKED, DONE):
            (config_dir / name).unlink(missing_ok=True)
        self.result: object = None
        self.error: BaseException | None = None
        self.asked_at: float | None = None
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self.wait, daemon=True)
        self.thread.start()

    @property
    def command(self) -> str:
        """The migrator container mounts the config directory at /work."""
        return (f"touch /work/{ASKED} && timeout {self.seconds:g} sh -c "
                f"'until [ -e /work/{DONE} ]; do sleep 0.1; done'")

    def wait(self) -> None:
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not self.finished.is_set():
            if (self.dir / ASKED).exists():
                self.asked_at = time.monotonic()
                try:
                    self.result = self.stop()
                except BaseException as exc:  # noqa: BLE001 - reported by the caller
                    self.error = exc
                (self.dir / DONE).touch()
                return
            self.finished.wait(0.05)

    def close(self) -> None:
        self.finished.set()
        self.thread.join(timeout=10)
        if self.error:
            raise self.error
