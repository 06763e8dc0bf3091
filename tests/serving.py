"""Real processes for the tests: ``tickwork serve`` (``Serve``) and any other long-running
command (``Process``), started with the environment and arguments a test gives, ready once
a line of their output says so, and stopped with every pipe and file closed.

Readiness is read from the process's own output, never waited for by the clock: a reader
thread collects each line as it comes and wakes whoever waits for one. A wait has a
timeout, and fails at once when the process exits without printing the line.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self


class Process:
    """A command run in the background.

    ``output`` holds its stdout, line by line, as it is read. Its stderr goes to ``log``
    (appended) when one is given, else into ``errors``. Use it as a context manager, or
    call ``stop`` (SIGTERM) or ``kill`` (SIGKILL): both wait for the exit and close the
    pipes.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env)
        self.log = log
        self.output: list[str] = []
        self.errors: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []
        self._changed = threading.Condition()
        self._stdout_ended = False

    # -- starting -------------------------------------------------------------------------

    def start(self, ready: str, timeout: float = 30.0) -> re.Match[str]:
        """Start the command and wait until a line of its stdout matches ``ready`` (a
        regular expression, searched); returns the match. Fails, with the process
        stopped, when it exits or ``timeout`` seconds pass first."""
        assert self._proc is None, "started already"
        if self.log is None:
            stderr: IO[str] | int = subprocess.PIPE
        else:
            stderr = self.log.open("a")
        try:
            self._proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        finally:
            if not isinstance(stderr, int):
                stderr.close()  # the process has its own descriptor for the log
        assert self._proc.stdout is not None
        self._read(self._proc.stdout, self.output, stdout=True)
        if self._proc.stderr is not None:
            self._read(self._proc.stderr, self.errors, stdout=False)
        try:
            return self.wait_for_line(ready, timeout)
        except BaseException:
            self.kill()
            raise

    def _read(self, stream: IO[str], into: list[str], stdout: bool) -> None:
        def drain() -> None:
            with stream:
                for line in stream:
                    with self._changed:
                        into.append(line)
                        self._changed.notify_all()
            if stdout:  # the process has closed it: exited, as a rule
                with self._changed:
                    self._stdout_ended = True
                    self._changed.notify_all()

        reader = threading.Thread(target=drain, daemon=True, name=f"read {self.argv[:3]}")
        self._readers.append(reader)
        reader.start()

    # -- watching -------------------------------------------------------------------------

    def wait_for_line(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The first line of stdout so far or to come that matches ``pattern``; fails
        when stdout ends, or ``timeout`` seconds pass, without one."""
        regex = re.compile(pattern)
        checked = 0
        found: re.Match[str] | None = None

        def matched() -> bool:
            nonlocal checked, found
            while checked < len(self.output):
                found = regex.search(self.output[checked])
                checked += 1
                if found:
                    return True
            return self._stdout_ended

        with self._changed:
            self._changed.wait_for(matched, timeout)
        if found:
            return found
        why = "exited" if self._stdout_ended else f"did not within {timeout:g} s"
        raise AssertionError(
            f"{self.describe()}: no line matching {pattern!r}; it {why}.\n{self.report()}"
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def describe(self) -> str:
        return " ".join(self.argv[:4])

    def report(self) -> str:
        """Its output and errors (or the end of its log), for a failure's message."""
        errors = self.log.read_text()[-4000:] if self.log and self.log.exists() else ""
        errors = errors or "".join(self.errors)[-4000:]
        return f"stdout:\n{''.join(self.output)[-4000:]}\nstderr:\n{errors}"

    # -- stopping -------------------------------------------------------------------------

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then its exit code once it has exited; SIGKILL if it has not within
        ``timeout`` seconds."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL, then its exit code."""
        return self._end(signal.SIGKILL, 10.0)

    def wait(self, timeout: float) -> int:
        """Its exit code once it exits by itself; fails after ``timeout`` seconds (the
        process is then left running, for the caller to stop)."""
        assert self._proc is not None, "not started"
        code = self._proc.wait(timeout)
        self._close()
        return code

    def _end(self, how: signal.Signals, timeout: float) -> int:
        assert self._proc is not None, "not started"
        if self._proc.poll() is None:
            self._proc.send_signal(how)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._close()
        return self._proc.returncode

    def _close(self) -> None:
        # Each reader closes its pipe at the end of the stream, which comes with the exit
        # (unless a child of the process holds it: then it is closed here).
        for reader in self._readers:
            reader.join(5)
        assert self._proc is not None
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self.stop()


class Serve(Process):
    """``tickwork serve`` with these arguments, run by this Python. ``start`` returns once
    the banner says where it serves (``url``) or that it runs without the API."""

    BANNER = r"serving on (http://\S+)|running without the API"

    def __init__(
        self,
        *args: str,
        cwd: Path,
        env: Mapping[str, str],
        log: Path | None = None,
    ) -> None:
        super().__init__(
            [sys.executable, "-m", "tickwork", "serve", *args], cwd=cwd, env=env, log=log
        )

    def start(self, ready: str = BANNER, timeout: float = 120.0) -> re.Match[str]:
        # Generous: on a busy machine, with replicas writing to one SQLite file, a start
        # (interpreter, imports, migrations check, registration) has taken over 30 s.
        return super().start(ready, timeout)

    @property
    def url(self) -> str:
        """Where its banner says it serves; empty without the API (or before the banner)."""
        for line in self.output:
            if found := re.search(r"serving on (http://\S+)", line):
                return found.group(1)
        return ""

    def describe(self) -> str:
        return "tickwork serve"
