"""Named fault points (`fourreal.training.faults`): no-ops unless named, a SIGKILL at exactly the N-th pass."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO
from fourreal.training.faults import ENV, fault_point

# passes point `loop` with subjects a, b, a, b, ... and prints each pass's number before it
LOOP = """
from fourreal.training.faults import fault_point
for i in range(1, 11):
    print(i, flush=True)
    fault_point("loop", "ab"[(i - 1) % 2])
"""


def run_loop(spec: str, code: str = LOOP, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), ENV: spec}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, **kwargs)


@pytest.mark.parametrize("spec", [None, "", "other", "other@1:group", "loop=c"])
def test_a_point_is_a_no_op_unless_the_spec_names_it(monkeypatch, spec):
    if spec is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, spec)
    for subject in ("a", "b", "a"):
        assert fault_point("loop", subject) is None


@pytest.mark.parametrize(("spec", "last", "marker"), [
    ("loop", 1, "fault point loop@1: SIGKILL process"),
    ("loop@3", 3, "fault point loop@3: SIGKILL process"),
    ("loop=b@2:process", 4, "fault point loop=b@2: SIGKILL process"),  # the second pass with subject b
])
def test_the_nth_pass_kills_the_process_with_a_marker(spec, last, marker):
    proc = run_loop(spec)
    assert proc.returncode == -9
    assert proc.stdout.split() == [str(i) for i in range(1, last + 1)]
    assert proc.stderr.strip() == marker


def test_group_scope_kills_the_whole_process_group():
    """A child started in its own session spawns a sleeping grandchild, then dies at the point
    with its group: the grandchild, which holds the output pipe, dies too (else the pipe stays open)."""
    code = ("import subprocess, sys\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n" + LOOP)
    proc = run_loop("loop@2:group", code, start_new_session=True)
    assert proc.returncode == -9
    assert proc.stdout.split() == ["1", "2"]
    assert proc.stderr.strip() == "fault point loop@2: SIGKILL group"


@pytest.mark.parametrize("spec", ["loop@0", "loop@x", "loop@", "=a", "loop=", "loop:everything", "1loop", "loop@2@3",
                                  "loop a"])
def test_a_malformed_spec_is_a_clear_one_line_error(monkeypatch, spec):
    monkeypatch.setenv(ENV, spec)
    with pytest.raises(ValueError, match=r"^FOURREAL_FAULT=.* is malformed: expected NAME\[=SUBJECT\]\[@N\]") as err:
        fault_point("loop")
    assert "\n" not in str(err.value)
