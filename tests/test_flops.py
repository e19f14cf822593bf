"""The analytic FLOP counts behind every reported MFU agree with PyTorch's own counter."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from fourreal.models.dit import DiT, DiTConfig
from fourreal.models.model4d import Model4D
from fourreal.training.flops import dit_forward_flops, model4d_forward_flops

CFG = DiTConfig(patch=4, dim=48, depth=2, heads=4)
PER_SEQUENCE = (".ada", ".ada_out", ".time_mlp", ".scale")  # adaLN and flow-time modulation: once a video, not counted


def counted_token_flops(model: torch.nn.Module, *args) -> int:
    """FLOPs PyTorch's counter sees in a forward pass (attention decomposed into matmuls),
    less those of the per-sequence modules."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(*args)
    counts = counter.get_flop_counts()
    leaves = [name for name in counts if name.endswith(PER_SEQUENCE)]
    # a module's count includes its children's: only take the outermost matching names
    outer = [n for n in leaves if not any(n != o and n.startswith(o + ".") for o in leaves)]
    per_sequence = sum(sum(counts[n].values()) for n in outer)
    return counter.get_total_flops() - per_sequence


def test_dit_flops_match_the_counter():
    model = DiT(CFG)
    x = torch.randn(2, 3, 3, 16, 24)
    assert counted_token_flops(model, x, torch.rand(2), torch.zeros(2, dtype=torch.long)) == \
        dit_forward_flops(CFG, 2, 3, 16, 24)


@pytest.mark.parametrize("architecture", ["soft", "hard", "hard_free", "soft_free", "sequential"])
def test_4d_flops_match_the_counter(architecture):
    torch.manual_seed(0)
    model = Model4D(DiT(CFG), architecture)
    grid = torch.randn(1, 3, 2, 3, 16, 24)  # rows and columns of different lengths
    assert counted_token_flops(model, grid, torch.rand(1)) == model4d_forward_flops(architecture, CFG, 1, 3, 2, 16, 24)


def test_attention_grows_quadratically():
    """Doubling the frames doubles the matmul FLOPs and quadruples attention's."""
    one, two = dit_forward_flops(CFG, 1, 4, 16, 16), dit_forward_flops(CFG, 1, 8, 16, 16)
    attention = CFG.depth * 4 * (4 * 16) ** 2 * CFG.dim
    assert two == pytest.approx(2 * (one - attention) + 4 * attention)


def test_matmul_ceiling_never_below_the_cards_idle_rate(monkeypatch):
    """A ceiling measured while other work shares the card reads low; MFU must not read high."""
    from fourreal.training import flops

    monkeypatch.setattr(flops.torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    monkeypatch.setattr(flops, "_measured_matmul_rate", lambda device, n, repeats: 346.0)  # a shared card
    assert flops.matmul_ceiling("cuda") == 788.0
    monkeypatch.setattr(flops, "_measured_matmul_rate", lambda device, n, repeats: 801.5)  # an idle card
    assert flops.matmul_ceiling("cuda") == 801.5
    monkeypatch.setattr(flops.torch.cuda, "get_device_name", lambda device=None: "Some Other GPU")
    monkeypatch.setattr(flops, "_measured_matmul_rate", lambda device, n, repeats: 120.0)
    assert flops.matmul_ceiling("cuda") == 120.0
