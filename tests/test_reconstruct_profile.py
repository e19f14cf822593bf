"""benchmarks/reconstruct_profile.py: telling ops from the Python frames around them."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.profiler import ProfilerActivity, profile

REPO = Path(__file__).resolve().parents[1]


def _load():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("reconstruct_profile", REPO / "benchmarks" / "reconstruct_profile.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_python_frames_are_told_apart_with_and_without_the_event_flag():
    rp = _load()
    # torch versions without FunctionEvent.is_python_function: the name decides
    assert rp.is_python_frame(SimpleNamespace(name="fourreal/reconstruction/fit.py(120): fit"))
    assert rp.is_python_frame(SimpleNamespace(name="<built-in method matmul of type object at 0x7f>"))
    assert rp.is_python_frame(SimpleNamespace(name="nn.Module: Linear_0"))
    assert not rp.is_python_frame(SimpleNamespace(name="aten::mm"))
    # where the flag exists it wins over the name
    assert not rp.is_python_frame(SimpleNamespace(name="x.py(1): f", is_python_function=False))
    assert rp.is_python_frame(SimpleNamespace(name="aten::mm", is_python_function=True))


def test_a_profiled_step_keeps_its_ops_and_drops_its_frames():
    rp = _load()
    a, b = torch.randn(32, 32), torch.randn(32, 32)
    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        torch.nn.functional.relu(a @ b).sum()
    ops = [e.name for e in prof.events() if not rp.is_python_frame(e)]
    assert "aten::mm" in ops and "aten::relu" in ops
    assert not any(".py(" in name for name in ops)
