"""FP8 sampling on the CPU: row-wise e4m3 quantization, the emulated FP8 linear layer, which
layers of the 4D model are converted, the precision setting (resolution per device, fallback
warnings, validation) and a tiny 4D model sampled in emulated fp8 against fp32."""

from __future__ import annotations

import copy
import json
import logging
import math

import pytest
import torch
import yaml
from torch import nn

import fourreal.sampling.precision as precision_module
from fourreal.evaluation.metrics import psnr
from fourreal.formats.grid import Grid, save_grid
from fourreal.models.dit import DiT, DiTConfig
from fourreal.models.fp8 import (FP8_MAX, MIN_SCALE, Fp8Linear, convert_to_fp8, dequantize_rowwise,
                                 quantize_rowwise)
from fourreal.models.model4d import build_model4d
from fourreal.models.sync import HardSync, SoftSync
from fourreal.running.cli import GRID_PRECISIONS, build_parser
from fourreal.running.config import ConfigError, load_section
from fourreal.sampling.grid_windows import sample_grid
from fourreal.sampling.precision import (PRECISIONS, autocast, check_precision, fp8_supported, prepare_model,
                                         resolve_precision)
from fourreal.sampling.sample_4d import Sample4DConfig, model_velocity, sampling_precision
from fourreal.sampling.video_to_4d import VideoTo4DConfig
from fourreal.training.data import to_uint8
from fourreal.training.model_files import export_model, model4d_config
from fourreal.training.optim import OptimConfig, Phase

from conftest import REPO, load_benchmark, moving_square_frames, write_video

# e4m3 keeps 3 mantissa bits: a normal value rounds to within 2^-4 of itself (relative); below
# 2^-6 (the smallest normal) the step is 2^-9, so the rounding error is at most 2^-10 absolute.
E4M3_RELATIVE = 2.0**-4
E4M3_SUBNORMAL_ABS = 2.0**-10


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Every test sees the fallback warnings as a new process would (each is given once)."""
    monkeypatch.setattr(precision_module, "_warned", set())


def rows_of_many_sizes(rows: int = 12, cols: int = 64) -> torch.Tensor:
    """Random rows whose magnitudes span 1e-6 to 1e5, so a single scale could not fit them all."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, cols, generator=g)
    return x * torch.logspace(-6, 5, rows)[:, None]


def tiny_4d(architecture: str = "soft", dim: int = 32, mlp_ratio: float = 4.0, seq_attention: str = "",
            std: float = 0.0):
    """A 4D model of one or two blocks; ``std`` > 0 replaces every weight by N(0, std) (the
    zero-initialized gates and head would make the untrained model's velocity 0)."""
    torch.manual_seed(0)
    model = build_model4d(DiT(DiTConfig(patch=4, dim=dim, depth=2, heads=2, mlp_ratio=mlp_ratio)), architecture,
                          seq_attention)
    if std:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, std)
    return model.eval()


# ---------------------------------------------------------------------------- quantization


def test_the_round_trip_error_is_e4m3_rounding_of_each_row():
    x = rows_of_many_sizes()
    x_fp8, scale = quantize_rowwise(x)
    assert x_fp8.dtype == torch.float8_e4m3fn and x_fp8.shape == x.shape
    assert scale.dtype == torch.float32 and scale.shape == (x.shape[0], 1)
    back = dequantize_rowwise(x_fp8, scale)
    bound = torch.maximum(E4M3_RELATIVE * x.abs(), E4M3_SUBNORMAL_ABS * scale)
    assert ((back - x).abs() <= bound * (1 + 1e-6)).all()
    # per row, the error relative to the row's size is about the same, whatever the size
    relative = (back - x).norm(dim=1) / x.norm(dim=1)
    assert relative.max() < 0.04 and relative.min() > 0.005


def test_each_row_has_its_own_scale_amax_over_448():
    x = rows_of_many_sizes()
    x_fp8, scale = quantize_rowwise(x)
    amax = x.abs().amax(dim=1, keepdim=True)
    torch.testing.assert_close(scale, amax / 448, rtol=0, atol=0)
    assert FP8_MAX == 448.0 == torch.finfo(torch.float8_e4m3fn).max
    # the largest value of every row lands on +-448 exactly, with its sign
    peak = x.abs().argmax(dim=1)
    rows = torch.arange(x.shape[0])
    assert torch.equal(x_fp8.float()[rows, peak], 448 * x[rows, peak].sign())
    assert x_fp8.float().abs().amax(dim=1).eq(448).all()


def test_zero_rows_quantize_to_zeros_with_the_smallest_scale():
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 0.5, 4.0], [0.0, 0.0, 0.0, 0.0]])
    x_fp8, scale = quantize_rowwise(x)
    assert scale[0].item() == scale[2].item() == pytest.approx(MIN_SCALE)
    assert scale[1].item() == pytest.approx(4.0 / 448)
    assert torch.equal(x_fp8.float()[[0, 2]], torch.zeros(2, 4))
    back = dequantize_rowwise(x_fp8, scale)
    assert torch.isfinite(back).all() and torch.equal(back[[0, 2]], torch.zeros(2, 4))
    torch.testing.assert_close(back[1], x[1])  # 1, -2, 0.5 and 4 are exact in e4m3 at this scale


def test_batched_inputs_are_quantized_per_last_dimension_row():
    x = torch.randn(2, 3, 16, generator=torch.Generator().manual_seed(1))
    x_fp8, scale = quantize_rowwise(x)
    assert x_fp8.shape == (2, 3, 16) and scale.shape == (2, 3, 1)
    flat_fp8, flat_scale = quantize_rowwise(x.reshape(6, 16))
    assert torch.equal(x_fp8.float().reshape(6, 16), flat_fp8.float())
    assert torch.equal(scale.reshape(6, 1), flat_scale)


# ---------------------------------------------------------------------------- the layer


@pytest.mark.parametrize("bias", [True, False])
def test_the_emulated_layer_is_close_to_the_linear_layer(bias):
    torch.manual_seed(0)
    linear = nn.Linear(64, 48, bias=bias)
    x = torch.randn(2, 5, 64)
    fp8 = Fp8Linear(linear, emulate=True)
    out, want = fp8(x), linear(x)
    assert out.shape == (2, 5, 48) and out.dtype == torch.float32
    relative = ((out - want).norm() / want.norm()).item()
    assert 1e-3 < relative < 0.05  # fp8 rounding of both operands: a few percent at most, never exact
    # exactly the dequantized operands multiplied in fp32
    xq, xs = quantize_rowwise(x.reshape(10, 64))
    wq, ws = quantize_rowwise(linear.weight.detach())
    expected = (xq.float() * xs) @ (wq.float() * ws).t()
    if bias:
        expected = expected + linear.bias.detach()
    torch.testing.assert_close(out.reshape(10, 48), expected, rtol=0, atol=0)


def test_the_weight_is_stored_in_fp8_per_output_row():
    torch.manual_seed(0)
    linear = nn.Linear(32, 16)
    fp8 = Fp8Linear(linear)
    assert fp8.weight_fp8.shape == (16, 32) and fp8.weight_fp8.dtype == torch.float8_e4m3fn
    assert fp8.weight_scale.shape == (16, 1) and fp8.weight_scale.dtype == torch.float32
    torch.testing.assert_close(fp8.weight_scale, linear.weight.detach().abs().amax(1, keepdim=True) / 448)
    assert fp8.bias.dtype == torch.float32 and torch.equal(fp8.bias, linear.bias.detach())
    assert not list(fp8.parameters())  # nothing to train: buffers only


def test_casting_the_model_keeps_fp8_weights_and_fp32_scales():
    linear = nn.Linear(32, 16)
    fp8 = Fp8Linear(linear, emulate=True)
    weight, scale = fp8.weight_fp8.float().clone(), fp8.weight_scale.clone()
    holder = nn.Sequential(fp8, nn.Linear(16, 16))
    holder.to(torch.bfloat16)
    assert holder[1].weight.dtype == torch.bfloat16  # the rest is cast as usual
    assert fp8.weight_fp8.dtype == torch.float8_e4m3fn and fp8.weight_scale.dtype == torch.float32
    assert fp8.bias.dtype == torch.float32
    assert torch.equal(fp8.weight_fp8.float(), weight) and torch.equal(fp8.weight_scale, scale)
    holder.double().to("cpu")
    assert fp8.weight_fp8.dtype == torch.float8_e4m3fn and fp8.weight_scale.dtype == torch.float32
    out = fp8(torch.ones(3, 32, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and out.shape == (3, 16)
    copied = copy.deepcopy(holder)
    assert torch.equal(copied[0].weight_fp8.float(), weight)


# ---------------------------------------------------------------------------- conversion


def linear_kinds(model: nn.Module) -> dict[str, str]:
    """``{module path: 'fp8' or 'linear'}`` of every linear layer of ``model``."""
    kinds = {}
    for name, module in model.named_modules():
        if isinstance(module, Fp8Linear):
            kinds[name] = "fp8"
        elif isinstance(module, nn.Linear):
            kinds[name] = "linear"
    return kinds


def test_convert_swaps_the_block_and_sync_linears_only():
    model = tiny_4d("soft")
    assert convert_to_fp8(model, emulate=True) == 2 * 4 + 2  # 2 blocks x (qkv, proj, w12, w3) + 2 soft syncs
    kinds = linear_kinds(model)
    fp8 = sorted(name for name, kind in kinds.items() if kind == "fp8")
    assert fp8 == sorted([f"base.blocks.{i}.{part}" for i in range(2)
                          for part in ("attn.qkv", "attn.proj", "mlp.w12", "mlp.w3")]
                         + ["syncs.0.linear", "syncs.1.linear"])
    kept = {name for name, kind in kinds.items() if kind == "linear"}
    assert kept == {"base.patch_embed", "base.time_mlp.0", "base.time_mlp.2", "base.ada_out.1", "base.out",
                    "base.blocks.0.ada.1", "base.blocks.1.ada.1", "syncs.0.scale.net.1", "syncs.1.scale.net.1"}
    assert all(isinstance(s, SoftSync) for s in model.syncs)
    assert convert_to_fp8(model) == 0  # already converted


def test_convert_covers_hard_syncs_and_the_sequential_attention_copies():
    hard = tiny_4d("hard")
    assert convert_to_fp8(hard) == 2 * 4 + 2 * 2
    assert all(isinstance(s, HardSync) and isinstance(s.w_v, Fp8Linear) and isinstance(s.w_t, Fp8Linear)
               for s in hard.syncs)
    sequential = tiny_4d("sequential", seq_attention="time")
    assert convert_to_fp8(sequential) == 2 * 4 + 2 * 2  # the blocks and each block's own attention copy
    assert all(isinstance(a.qkv, Fp8Linear) and isinstance(a.proj, Fp8Linear) for a in sequential.axis_attn)
    free = tiny_4d("soft_free")
    assert convert_to_fp8(free) == 2 * 4  # training-free syncs have no weights


def test_layers_not_divisible_by_16_stay_as_they_are():
    # hidden = 1.25 * 32 = 40: w12 (32 -> 80) converts, w3 (40 -> 32) cannot
    model = tiny_4d("soft", mlp_ratio=1.25)
    assert convert_to_fp8(model) == 2 * 3 + 2
    for block in model.base.blocks:
        assert isinstance(block.mlp.w12, Fp8Linear) and type(block.mlp.w3) is nn.Linear
    # dim 24: nothing of the blocks; the soft sync's [48, 48] does convert, the hard sync's [24, 24] not
    assert convert_to_fp8(tiny_4d("soft", dim=24)) == 2
    assert convert_to_fp8(tiny_4d("hard", dim=24)) == 0


# ---------------------------------------------------------------------------- the setting


def fake_gpu(monkeypatch, capability: tuple[int, int], name: str = "NVIDIA Test GPU", hip: str | None = None,
             fp8_error: str | None = None):
    """``cuda`` devices look like GPU ``name`` of ``capability``, on which the one-time FP8
    check gives ``fp8_error`` (None: it runs)."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.version, "hip", hip)
    monkeypatch.setattr(precision_module, "fp8_linear_error", lambda device: fp8_error)


def test_on_the_cpu_auto_is_fp32_and_fp8_falls_back_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="fourreal.sampling.precision"):
        assert resolve_precision("auto", "cpu") == "fp32"
        assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
        assert caplog.records == []
        assert resolve_precision("fp8", "cpu") == "fp32"
        assert resolve_precision("fp8", "cpu") == "fp32"  # warned once
    assert [r.getMessage() for r in caplog.records] == [
        "fp8 needs an NVIDIA GPU of compute capability 8.9+ (found cpu); sampling in fp32 instead — set "
        "sample_4d.precision: fp32 to silence this"]
    assert "\n" not in caplog.records[0].getMessage()


def test_bf16_on_the_cpu_falls_back_to_fp32_naming_the_key(caplog):
    with caplog.at_level(logging.WARNING, logger="fourreal.sampling.precision"):
        assert resolve_precision("bf16", "cpu", key="--precision") == "fp32"
    assert [r.getMessage() for r in caplog.records] == [
        "bf16 sampling needs a CUDA GPU (found cpu); sampling in fp32 instead — set --precision fp32 to silence this"]


@pytest.mark.parametrize("capability, auto, fp8", [((9, 0), "fp8", "fp8"), ((8, 9), "fp8", "fp8"),
                                                   ((10, 0), "fp8", "fp8"), ((8, 6), "bf16", "bf16"),
                                                   ((8, 0), "bf16", "bf16"), ((7, 5), "bf16", "bf16")])
def test_on_a_gpu_fp8_needs_compute_capability_8_9(monkeypatch, caplog, capability, auto, fp8):
    fake_gpu(monkeypatch, capability, "NVIDIA Fake")
    with caplog.at_level(logging.WARNING, logger="fourreal.sampling.precision"):
        assert fp8_supported("cuda") == (fp8 == "fp8")
        assert resolve_precision("auto", "cuda") == auto
        assert resolve_precision("bf16", "cuda:0") == "bf16"
        assert resolve_precision("fp32", "cuda") == "fp32"
        assert caplog.records == []  # auto never warns
        assert resolve_precision("fp8", torch.device("cuda", 0), key="video_to_4d.precision") == fp8
    if fp8 == "fp8":
        assert caplog.records == []
    else:
        assert [r.getMessage() for r in caplog.records] == [
            f"fp8 needs an NVIDIA GPU of compute capability 8.9+ (found NVIDIA Fake, compute capability "
            f"{capability[0]}.{capability[1]}); sampling in bf16 instead — set video_to_4d.precision: bf16 to "
            "silence this"]


def test_a_gpu_where_the_fp8_call_fails_samples_in_bf16_with_the_error(monkeypatch, caplog):
    error = "RuntimeError: Rowwise scaling is not currently supported on your device"
    fake_gpu(monkeypatch, (8, 9), "NVIDIA L4", fp8_error=error)
    with caplog.at_level(logging.WARNING, logger="fourreal.sampling.precision"):
        assert not fp8_supported("cuda")
        assert resolve_precision("auto", "cuda") == "bf16"
        assert resolve_precision("fp8", "cuda") == "bf16"
    assert [r.getMessage() for r in caplog.records] == [  # once: auto and fp8 fall back alike
        "fp8 needs torch._scaled_mm with row-wise scales, which failed here (found NVIDIA L4, compute capability "
        f"8.9; {error}); sampling in bf16 instead — set sample_4d.precision: bf16 to silence this"]


def test_the_fp8_check_compares_the_layer_with_its_emulation(monkeypatch):
    from fourreal.models import fp8 as fp8_module

    cpu = torch.device("cpu")
    fp8_module.fp8_linear_error.cache_clear()
    assert fp8_module.fp8_linear_error(cpu) is None  # on the CPU both are the emulation
    forward = Fp8Linear.forward

    def wrong(self, x):  # as a kernel that ignored the activation scales would
        out = forward(self, x)
        return out if self.emulate else out * 3

    def broken(self, x):
        if self.emulate:
            return forward(self, x)
        raise RuntimeError("Rowwise scaling is not currently supported on your device\nmore detail")

    for replacement, expected in ((wrong, "torch._scaled_mm disagrees with the emulated product"),
                                  (broken, "RuntimeError: Rowwise scaling is not currently supported on your device")):
        fp8_module.fp8_linear_error.cache_clear()
        monkeypatch.setattr(Fp8Linear, "forward", replacement)
        assert fp8_module.fp8_linear_error(cpu).startswith(expected)
        assert "\n" not in fp8_module.fp8_linear_error(cpu)
    fp8_module.fp8_linear_error.cache_clear()


def test_rocm_gpus_sample_in_bf16(monkeypatch, caplog):
    fake_gpu(monkeypatch, (9, 4), "AMD Instinct MI300X", hip="6.2")
    assert resolve_precision("auto", "cuda") == "bf16"
    with caplog.at_level(logging.WARNING, logger="fourreal.sampling.precision"):
        assert resolve_precision("fp8", "cuda") == "bf16"
    assert "(found AMD Instinct MI300X (ROCm))" in caplog.records[0].getMessage()


def test_an_unknown_precision_is_a_value_error_naming_the_key_and_the_values():
    with pytest.raises(ValueError, match=r"sample_4d\.precision = 'fp16'.*auto, fp32, bf16, fp8"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match=r"--precision = 'int8'"):
        resolve_precision("int8", "cpu", key="--precision")
    with pytest.raises(ConfigError):
        check_precision("FP8")
    assert PRECISIONS == ("auto", "fp32", "bf16", "fp8")


def test_the_configs_validate_precision_at_load_time(tmp_path):
    assert Sample4DConfig().precision == "auto" and VideoTo4DConfig().precision == "fp32"
    for cls in (Sample4DConfig, VideoTo4DConfig):
        for value in PRECISIONS:
            assert cls(precision=value).precision == value
        with pytest.raises(ConfigError) as exc:
            cls(precision="fp16")
        assert exc.value.key == "precision"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"sample_4d": {"precision": "half"}, "video_to_4d": {"precision": 8}}))
    with pytest.raises(ConfigError) as exc:
        load_section(Sample4DConfig, "sample_4d", params)
    assert str(exc.value) == ("params.yaml: sample_4d.precision = half: must be one of "
                              "['auto', 'fp32', 'bf16', 'fp8']")
    with pytest.raises(ConfigError, match=r"video_to_4d\.precision: expected a string"):
        load_section(VideoTo4DConfig, "video_to_4d", params)


def test_params_yaml_sets_the_defaults():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["sample_4d"]["precision"] == "auto" and params["video_to_4d"]["precision"] == "fp32"


def test_the_grid_command_takes_every_precision_and_defaults_to_fp32():
    assert GRID_PRECISIONS == list(PRECISIONS)
    args = build_parser().parse_args(["grid", "--row", "r.mp4", "--column", "c.mp4"])
    assert args.precision == "fp32"
    args = build_parser().parse_args(["grid", "--row", "r.mp4", "--column", "c.mp4", "--precision", "fp8"])
    assert args.precision == "fp8"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["grid", "--row", "r.mp4", "--column", "c.mp4", "--precision", "fp16"])


def test_sample_4d_resolves_its_precision_for_the_sampling_device(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert sampling_precision(Sample4DConfig()) == "fp32"  # auto on the CPU: today's fp32 outputs
    with caplog.at_level(logging.WARNING, logger="fourreal.sampling.precision"):
        assert sampling_precision(Sample4DConfig(precision="fp8")) == "fp32"
    assert "set sample_4d.precision: fp32 to silence this" in caplog.records[0].getMessage()


@pytest.mark.filterwarnings("ignore:CUDA is not available")  # a CUDA autocast made on a machine without one
def test_prepare_model_converts_for_fp8_only_and_autocast_is_for_cuda():
    model = tiny_4d("soft")
    for value in ("fp32", "bf16"):
        assert prepare_model(model, value) is model and "fp8" not in linear_kinds(model).values()
    assert prepare_model(model, "fp8", emulate=True) is model
    assert list(linear_kinds(model).values()).count("fp8") == 10
    assert all(m.emulate for m in model.modules() if isinstance(m, Fp8Linear))
    assert isinstance(autocast("cpu", "fp8"), type(autocast("cpu", "fp32")))  # nothing on the CPU
    assert isinstance(autocast("cuda", "fp8"), torch.autocast) and isinstance(autocast("cuda", "bf16"), torch.autocast)
    assert not isinstance(autocast("cuda", "fp32"), torch.autocast)


# ---------------------------------------------------------------------------- sampling


def grid_inputs(views: int = 4, times: int = 4, height: int = 16, width: int = 16) -> torch.Tensor:
    """A smooth truth grid ``[V, T, 3, H, W]`` in [-1, 1] (its first row and column are the inputs)."""
    v = torch.arange(views, dtype=torch.float32)[:, None, None, None, None]
    t = torch.arange(times, dtype=torch.float32)[None, :, None, None, None]
    y = torch.linspace(0, 1, height)[None, None, None, :, None]
    x = torch.linspace(0, 1, width)[None, None, None, None, :]
    c = torch.arange(3, dtype=torch.float32)[None, None, :, None, None]
    return 0.6 * torch.sin(3 * x + 2 * y + 0.3 * v + 0.2 * t + c)


def test_a_tiny_4d_model_sampled_in_emulated_fp8_is_close_to_fp32():
    model = tiny_4d("soft", std=0.05)
    fp8_model = prepare_model(copy.deepcopy(model), "fp8", emulate=True)
    truth = grid_inputs()
    grids = {}
    with torch.no_grad():
        for name, m, value in (("fp32", model, "fp32"), ("fp8", fp8_model, "fp8")):
            grids[name] = sample_grid(model_velocity(m, value), truth[0], truth[:, 0], (4, 4), steps=4, seed=3,
                                      progress=False)
    # the velocity itself: fp8 within a few percent of fp32
    x = torch.randn(1, 4, 4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    sigma, mask = torch.tensor([0.7]), torch.zeros(1, 4, 4)
    with torch.no_grad():
        v32, v8 = model(x, sigma, cond=x, mask=mask), fp8_model(x, sigma, cond=x, mask=mask)
    assert v32.abs().mean() > 0.05  # the random model moves the sample
    assert 1e-4 < ((v8 - v32).norm() / v32.norm()).item() < 0.05
    fp32, fp8 = grids["fp32"], grids["fp8"]
    assert torch.equal(fp8[0], fp32[0]) and torch.equal(fp8[:, 0], fp32[:, 0])  # the given row and column
    generated = psnr(fp8[1:, 1:], fp32[1:, 1:])
    assert 35 < generated < math.inf  # close, and fp8 really ran
    assert fp32[1:, 1:].std() > 0.1  # and the grid is not flat


# ---------------------------------------------------------------------------- the quality benchmark


def test_the_fp8_quality_benchmark_runs_emulated_on_the_cpu(tmp_path, capsys):
    bench = load_benchmark("fp8_quality")
    model = tiny_4d("soft", std=0.05)
    export_model(tmp_path / "bundle" / "model_4d", model,
                 model4d_config(model, OptimConfig(phases=[Phase(1, 16, 16, 4, 1)])), 15.0)
    truth = grid_inputs(views=5, times=5)
    for k in range(3):
        rgb = to_uint8(torch.roll(truth, k, dims=-1))
        save_grid(tmp_path / "grids" / f"g{k}.grid.npz", Grid(rgb=rgb, meta={"source": f"g{k}"}))
    out = tmp_path / "fp8_quality.jsonl"
    record = bench.main([str(tmp_path / "bundle"), str(tmp_path / "grids"), "--max-grids", "2", "--steps", "3",
                         "--out", str(out)])
    assert json.loads(capsys.readouterr().out.strip()) == record
    assert json.loads(out.read_text().strip()) == record  # appended
    assert record["device"] == "cpu" and record["reference"] == "fp32" and record["fp8"] == "fp8 (emulated)"
    assert record["grids"] == 2 and sorted(record["per_grid"]) == ["g0", "g1"]
    assert record["window"] == 4 and record["size"] == "16x16" and record["fp8_layers"] == 10
    per = record["per_grid"]
    assert record["fp8_vs_reference_psnr"] == pytest.approx(
        sum(g["fp8_vs_reference_psnr"] for g in per.values()) / 2, abs=1e-3)
    assert record["fp8_vs_reference_psnr_min"] == min(g["fp8_vs_reference_psnr"] for g in per.values())
    assert record["fp8_vs_reference_psnr"] > 35 and record["meets_target"] is True and record["target_db"] == 35.0
    for g in per.values():  # against the truth, fp8 and the reference are about as good
        assert abs(g["fp8_psnr"] - g["reference_psnr"]) < 1
    bench.main([str(tmp_path / "bundle" / "model_4d"), str(tmp_path / "grids"), "--max-grids", "1", "--steps", "2",
                "--out", str(out)])
    assert len(out.read_text().splitlines()) == 2  # a 4D model directory works too; one more line


def test_the_benchmark_compares_the_same_noise():
    """With nothing converted (dim 24, hard syncs), fp8 and the reference are the same model: the same grids."""
    bench = load_benchmark("fp8_quality")
    model = tiny_4d("hard", dim=24, std=0.05)
    result = bench.compare(model, {"a": grid_inputs()}, window=4, steps=2)
    assert result["fp8_layers"] == 0 and result["per_grid"]["a"]["fp8_vs_reference_psnr"] == math.inf
    assert bench.summary(result)["fp8_vs_reference_psnr"] == "inf"


# ---------------------------------------------------------------------------- where the setting is used


class Stop(Exception):
    """Ends a run once the 4D model's velocity is built (what comes after is not under test)."""


def test_video_to_4d_samples_its_grid_in_the_configured_precision(tmp_path, monkeypatch, caplog):
    import fourreal.sampling.sample_4d as sample_4d_module
    import fourreal.sampling.video_to_4d as v2
    from fourreal.models.depth import DepthNet, save_depth_model
    from fourreal.reconstruction.config import ReconstructConfig
    base = DiT(DiTConfig(patch=4, dim=32, depth=1, heads=2))
    export_model(tmp_path / "base", base, {"preset": "tiny", "dit": vars(base.cfg), "training_frames": 4}, 15.0)
    model = build_model4d(base, "soft")
    export_model(tmp_path / "soft", model, model4d_config(model, OptimConfig(phases=[Phase(1, 16, 16, 4, 1)])), 15.0)
    save_depth_model(tmp_path / "depth", DepthNet(4))
    write_video(tmp_path / "v.mp4", moving_square_frames(12, 48, 48), fps=8)
    seen = []

    def velocity(model, precision="fp32"):
        seen.append((precision, sum(isinstance(m, Fp8Linear) for m in model.modules())))
        raise Stop

    monkeypatch.setattr(sample_4d_module, "model_velocity", velocity)
    cfg = VideoTo4DConfig(input=str(tmp_path / "v.mp4"), base_model=str(tmp_path / "base"),
                          model_4d=str(tmp_path / "soft"), depth_model=str(tmp_path / "depth"), views=4, times=4,
                          height=16, width=16, chunk=4, overlap=1, steps=1, mp4=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="fourreal.sampling.precision"):
        for value in ("fp32", "auto", "fp8"):
            with pytest.raises(Stop):
                v2.video_to_4d(VideoTo4DConfig(**{**vars(cfg), "precision": value}), ReconstructConfig())
    assert seen == [("fp32", 0)] * 3  # the CPU samples in fp32 whatever was asked
    assert [r.getMessage() for r in caplog.records] == [
        "fp8 needs an NVIDIA GPU of compute capability 8.9+ (found cpu); sampling in fp32 instead — set "
        "video_to_4d.precision: fp32 to silence this"]
    monkeypatch.setattr(v2, "resolve_precision", lambda requested, device, key: "fp8")  # as on an H100
    with pytest.raises(Stop):
        v2.video_to_4d(VideoTo4DConfig(**{**vars(cfg), "precision": "fp8"}), ReconstructConfig())
    assert seen[-1] == ("fp8", 4 + 1)  # one block's qkv, proj, w12, w3 and the soft sync


def test_the_grid_command_falls_back_to_fp32_on_the_cpu_with_the_same_grid(tmp_path, monkeypatch, caplog):
    from fourreal.formats.grid import load_grid
    from fourreal.running.cli import main
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = tiny_4d("soft", std=0.05)
    export_model(tmp_path / "model", model, model4d_config(model, OptimConfig(phases=[Phase(1, 16, 16, 4, 1)])), 15.0)
    frames = moving_square_frames(8, 48, 48)
    write_video(tmp_path / "row.mp4", frames, fps=8)
    write_video(tmp_path / "col.mp4", frames.copy(), fps=8)
    args = ["grid", "--row", str(tmp_path / "row.mp4"), "--column", str(tmp_path / "col.mp4"), "--model",
            str(tmp_path / "model"), "--views", "4", "--times", "4", "--height", "16", "--width", "16", "--steps", "2"]
    assert main(args + ["--out", str(tmp_path / "fp32")]) == 0
    with caplog.at_level(logging.WARNING, logger="fourreal.sampling.precision"):
        assert main(args + ["--out", str(tmp_path / "fp8"), "--precision", "fp8"]) == 0
    assert [r.getMessage() for r in caplog.records] == [
        "fp8 needs an NVIDIA GPU of compute capability 8.9+ (found cpu); sampling in fp32 instead — set "
        "--precision fp32 to silence this"]
    fp32, fp8 = load_grid(tmp_path / "fp32" / "row.grid.npz"), load_grid(tmp_path / "fp8" / "row.grid.npz")
    assert fp32.shape == (4, 4, 16, 16) and (fp32.rgb == fp8.rgb).all()
