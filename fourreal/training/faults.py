"""Named fault points, for fault-injection tests: kill the process at an exact place in the code.

Code that must survive a crash calls :func:`fault_point` where a crash matters (after a
checkpoint is saved, before a temporary is renamed onto an output, ...). The call does
nothing unless the environment variable ``FOURREAL_FAULT`` names that point; then, on the
N-th pass, it writes one marker line to stderr and sends SIGKILL (no cleanup, no
``finally``: like a power cut) to this process alone or to its whole process group
(``dvc repro`` together with the stage it runs and the stage's workers, like a crashed machine).
Tests set the variable, wait for the exit, and check both the return code (-9) and the
marker, so they know the kill happened where they meant it to, not at a wall-clock guess.

Spec: ``NAME[=SUBJECT][@N][:process|:group]``

- ``NAME``: the fault point, e.g. ``checkpoint_saved``.
- ``=SUBJECT``: count only passes with this subject, for points that pass one (e.g.
  ``before_rename`` passes the name of the file or directory about to be renamed into place).
- ``@N``: kill at the N-th counted pass in this process (default 1).
- ``:process`` (default) or ``:group``: what is killed.

Examples: ``checkpoint_saved@3``, ``before_rename=model:group``. The marker of the latter is
``fault point before_rename=model@1: SIGKILL group``.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import sys
from collections import Counter
from dataclasses import dataclass

ENV = "FOURREAL_FAULT"
_SPEC = re.compile(r"(?P<name>[A-Za-z_]\w*)(?:=(?P<subject>[^\s=@:]+))?(?:@(?P<n>[1-9]\d*))?"
                   r"(?::(?P<scope>process|group))?")
_passes: Counter = Counter()  # counted passes of each fault in this process


@dataclass(frozen=True)
class Fault:
    """A parsed ``FOURREAL_FAULT`` spec: kill ``scope`` at the ``n``-th pass of point
    ``name`` (with ``subject``, unless that is None)."""

    name: str
    subject: str | None
    n: int
    scope: str

    def __str__(self) -> str:
        subject = "" if self.subject is None else f"={self.subject}"
        return f"{self.name}{subject}@{self.n}"


@functools.lru_cache(maxsize=8)
def parse(spec: str) -> Fault:
    """The :class:`Fault` a ``FOURREAL_FAULT`` value describes; ValueError if it is malformed."""
    m = _SPEC.fullmatch(spec)
    if m is None:
        raise ValueError(f"{ENV}={spec!r} is malformed: expected NAME[=SUBJECT][@N][:process|:group] with N >= 1, "
                         "e.g. checkpoint_saved@3:group")
    return Fault(m["name"], m["subject"], int(m["n"] or 1), m["scope"] or "process")


def fault_point(name: str, subject: str = "") -> None:
    """Mark fault point ``name`` (``subject``: what it is about, e.g. a file name); kill
    here if ``FOURREAL_FAULT`` says so (see the module docstring). One environment lookup
    when the variable is unset."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    fault = parse(spec)
    if fault.name != name or fault.subject not in (None, subject):
        return
    _passes[fault] += 1
    if _passes[fault] < fault.n:
        return
    sys.stderr.write(f"fault point {fault}: SIGKILL {fault.scope}\n")
    sys.stderr.flush()
    if fault.scope == "group":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    else:
        os.kill(os.getpid(), signal.SIGKILL)
