import pytest
import torch
from torch import nn

from fourreal.models.dit import CONTEXTS, NULL_CONTEXT, PRESETS, DiT, DiTConfig, apply_rope, count_parameters, rope_tables


def tiny(**kw) -> DiT:
    torch.manual_seed(0)
    model = DiT(DiTConfig(patch=4, dim=48, depth=2, heads=2, **kw))
    for p in model.parameters():  # leave adaLN-Zero's zero init, so outputs depend on the input
        nn.init.normal_(p, std=0.05)
    return model


def test_parameter_counts_per_preset():
    with torch.device("meta"):
        counts = {name: count_parameters(DiT(cfg)) for name, cfg in PRESETS.items()}
    assert counts["tiny"] < 1e6 < counts["small"] < 5e7
    assert 5.4e8 < counts["paper"] < 6.2e8  # paper: ~600M, 24 blocks x 1024 channels
    assert PRESETS["paper"].depth == 24 and PRESETS["paper"].dim == 1024


def test_output_shape_for_any_size():
    model = tiny()
    for f, h, w in [(1, 8, 8), (5, 12, 20), (8, 36, 64)]:
        out = model(torch.randn(2, f, 3, h, w), torch.rand(2), torch.tensor([0, 1]))
        assert out.shape == (2, f, 3, h, w) and torch.isfinite(out).all()


def test_mode_embedding_changes_the_output():
    model = tiny()
    x, s = torch.randn(1, 3, 3, 8, 8), torch.tensor([0.5])
    outs = [model(x, s, torch.tensor([c])) for c in (*CONTEXTS.values(), NULL_CONTEXT)]
    assert (outs[0] - outs[1]).abs().max() > 1e-4 and (outs[0] - outs[2]).abs().max() > 1e-4


def test_conditioning_frames_enter_the_prediction():
    model = tiny()
    x = torch.randn(1, 3, 3, 8, 8)
    cond = torch.randn(1, 3, 3, 8, 8)
    s, c = torch.tensor([0.7]), torch.tensor([0])
    no = model(x, s, c)
    given = model(x, s, c, cond=cond, mask=torch.tensor([[1.0, 0, 0]]))
    assert (no[:, 1:] - given[:, 1:]).abs().max() > 1e-4  # other frames see the clean frame


def test_block_is_one_function_over_any_grouping():
    """The 4D model calls the same block on rows and columns: sequences in a batch must not
    interact, and the block must accept any sequence length."""
    model = tiny()
    d = model.cfg.dim
    x = torch.randn(3, 2 * 4, d)  # 3 sequences of 2 frames x (2 x 2) tokens
    c = torch.randn(3, d)
    rope = model.rope(2, 8, 8)
    full = model.block(0, x, c, rope)
    one = model.block(0, x[1:2], c[1:2], rope)
    torch.testing.assert_close(full[1:2], one)
    x2 = x.clone()
    x2[0] += 1.0
    assert torch.equal(model.block(0, x2, c, rope)[1:], full[1:])


def test_rope_is_relative():
    cos, sin = rope_tables(4, 3, 5, 12, 10000.0)
    assert cos.shape == (60, 6)
    q, k = torch.randn(12), torch.randn(12)
    # the score of positions (i, j) equals that of (i + 1, j + 1) along the frame axis
    qi, kj = apply_rope(q.expand(60, 12), cos, sin), apply_rope(k.expand(60, 12), cos, sin)
    same_row_col = lambda f: f * 15 + 1 * 5 + 2  # noqa: E731
    s1 = qi[same_row_col(0)] @ kj[same_row_col(2)]
    s2 = qi[same_row_col(1)] @ kj[same_row_col(3)]
    torch.testing.assert_close(s1, s2)


def test_size_limits_are_reported():
    model = tiny(max_frames=4)
    with pytest.raises(ValueError, match="exceeds the model's maxima"):
        model(torch.randn(1, 5, 3, 8, 8), torch.rand(1), torch.tensor([0]))
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        model(torch.randn(1, 2, 3, 10, 8), torch.rand(1), torch.tensor([0]))


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = DiT(DiTConfig(patch=4, dim=32, depth=2, heads=2))
    torch.nn.init.normal_(model.out.weight, std=0.02)  # non-zero head so gradients reach the blocks
    x, sigma, ctx = torch.randn(2, 3, 3, 8, 8), torch.rand(2), torch.tensor([0, 1])
    grads = []
    for on in (False, True):
        model.zero_grad()
        model.checkpointing = on
        model(x, sigma, ctx).square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    assert any(g.abs().sum() > 0 for g in grads[1][:10])
