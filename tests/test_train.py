import csv
import json

import numpy as np
import pytest
import torch

from fourreal.formats.checkpoint import (CheckpointError, list_checkpoints, load_checkpoint, load_tensors, read_optimizer,
                                 save_checkpoint)
from fourreal.models.dit import DiT, DiTConfig
from fourreal.training.data import VideoSet, random_mask
from fourreal.training.losses import video_loss
from fourreal.training.optim import OptimConfig, Phase
from fourreal.training.parallel import load_optimizer_state, model_state, optimizer_state
from fourreal.training.train import ema_decay_at, train, update_ema
from fourreal.training.train_log import NonFiniteLoss


def small_model(seed=0) -> DiT:
    torch.manual_seed(seed)
    return DiT(DiTConfig(patch=4, dim=24, depth=1, heads=2))


def toy_videos() -> VideoSet:
    rng = np.random.default_rng(0)
    videos = VideoSet()
    base = rng.integers(0, 255, (8, 16, 3), dtype=np.uint8)
    for i in range(6):
        shift = [np.roll(base, k * (i % 3 + 1), axis=1) for k in range(6)]
        videos.add(np.stack(shift), "dynamic", f"dyn{i}", origin=f"video{i}")
        videos.add(np.stack([base] * 6), "freeze_time", f"ft{i}", origin=f"video{i}")
    return videos


def run(out, steps=8, interrupt_at=None, lr=3e-3, batch=4, phases=None):
    videos = toy_videos()
    phases = phases or [Phase(steps // 2, 8, 8, 3, batch), Phase(steps - steps // 2, 8, 16, 4, batch)]
    cfg = OptimConfig(phases=phases, lr=lr, warmup=2, checkpoint_every=2, log_every=1, ema_decay=0.9)
    calls = {"n": 0}

    def make_batch(phase, rng, device):
        calls["n"] += 1
        if interrupt_at is not None and calls["n"] == interrupt_at:
            raise KeyboardInterrupt("killed")
        return videos.batch(phase.batch_size, phase.frames, phase.height, phase.width, rng)

    model = small_model()
    summary = train(model, cfg, out, make_batch, lambda m, b, g: video_loss(m, b, g, cfg), run_key="k")
    return model, summary


def test_resume_after_a_kill_is_bit_identical(tmp_path):
    ref, _ = run(tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", interrupt_at=6)  # dies during step 6, after the step-4 checkpoint
    assert [p.name for p in list_checkpoints(tmp_path / "cut" / "checkpoints")][-1] == "step_0000004"
    resumed, summary = run(tmp_path / "cut")
    assert summary.steps == 8
    for a, b in zip(ref.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    rows = list(csv.DictReader(open(tmp_path / "cut" / "loss.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 9))  # no duplicated steps after resume


def test_a_finished_run_rerun_reports_the_same_final_loss(tmp_path):
    _, first = run(tmp_path / "run")
    _, again = run(tmp_path / "run")  # nothing left to train: the final loss is read back from loss.csv
    assert again.resumed_from == 8 and again.final_loss == first.final_loss
    last = (tmp_path / "run" / "loss.csv").read_text().splitlines()[-1].split(",")[1]
    assert first.final_loss == float(last)  # as loss.csv records it, so rounding it again agrees too


def test_a_time_limit_stops_a_run_before_its_end_but_not_at_it(tmp_path, caplog):
    """A run past its time limit stops at its next log step and says to rerun; one whose
    limit passes only by its last step has finished and says nothing of the kind."""
    videos = toy_videos()
    for steps, log_every, expected in ((4, 2, 2), (2, 2, 2)):
        cfg = OptimConfig(phases=[Phase(steps, 8, 8, 3, 2)], warmup=1, checkpoint_every=2, log_every=log_every,
                          time_limit_s=1e-6)
        caplog.clear()
        summary = train(small_model(), cfg, tmp_path / str(steps), lambda p, r, d: videos.batch(2, 3, 8, 8, r),
                        lambda m, b, g: video_loss(m, b, g, cfg))
        assert summary.steps == expected
        assert ("rerun to continue" in caplog.text) == (expected < steps)


def test_loss_falls_on_the_logged_curve(tmp_path):
    run(tmp_path, lr=1e-2, phases=[Phase(60, 8, 8, 3, 8)])
    losses = [float(r["loss"]) for r in csv.DictReader(open(tmp_path / "loss.csv"))]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_checkpoint_round_trip_and_refusals(tmp_path):
    model, ema = small_model(1), small_model(2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(1, 2, 3, 8, 8), torch.rand(1), torch.tensor([0])).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path, 3, model_state(model), model_state(ema), optimizer_state(model, opt), {"note": "x"},
                           max_shard_mb=0.01)
    assert len(list(path.glob("model-*.safetensors"))) > 1  # sharded
    m2, e2 = small_model(5), small_model(6)
    o2 = torch.optim.AdamW(m2.parameters())
    state = load_checkpoint(path, m2, e2)
    load_optimizer_state(m2, o2, read_optimizer(path, state))
    assert state["step"] == 3 and state["note"] == "x"
    for a, b in zip(model.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    torch.testing.assert_close(o2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    torch.testing.assert_close(o2.state_dict()["state"][3]["exp_avg_sq"], opt.state_dict()["state"][3]["exp_avg_sq"])
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_checkpoint(path, DiT(DiTConfig(patch=4, dim=48, depth=1, heads=2)))
    torch.save({"x": 1}, path / "evil.pt")
    with pytest.raises(CheckpointError, match="pickle"):
        load_tensors(path, "model")
    (path / "evil.pt").unlink()
    shard = sorted(path.glob("model-*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated"):
        load_tensors(path, "model")


def test_ema_update():
    model, ema = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        ema.weight.fill_(0.0)
    update_ema(ema, model, 0.9)
    torch.testing.assert_close(ema.weight, torch.full((1, 2), 0.1))


def test_ema_warm_up_forgets_the_initial_weights():
    """After n steps toward constant weights, the start's share in the EMA is prod(decay_t):
    with the warm-up it is ~10/(n+10) (here 0.012 after 800 steps, decay 0.998), without it
    0.998^800 = 0.20 -- enough to shrink a short run's adaLN-Zero model toward zero output."""
    assert ema_decay_at(0.998, 1) == pytest.approx(2 / 11)
    assert ema_decay_at(0.998, 10_000) == 0.998
    share = float(np.prod([ema_decay_at(0.998, t) for t in range(1, 801)]))
    assert share < 0.02 and 0.998**800 > 0.19


def test_nan_loss_stops_with_the_step(tmp_path):
    videos = toy_videos()
    cfg = OptimConfig(phases=[Phase(4, 8, 8, 3, 2)], checkpoint_every=1, ema_decay=0.0)
    calls = {"n": 0}

    def loss_fn(m, b, g):
        calls["n"] += 1
        loss = video_loss(m, b, g, cfg)
        return loss * float("nan") if calls["n"] == 3 else loss

    with pytest.raises(NonFiniteLoss, match="at step 3.*step_0000002"):
        train(small_model(), cfg, tmp_path, lambda p, r, d: videos.batch(2, 3, 8, 8, r), loss_fn)
    assert json.loads((list_checkpoints(tmp_path / "checkpoints")[-1] / "state.json").read_text())["step"] == 2


def test_masks_and_batches():
    rng = np.random.default_rng(0)
    kinds = [random_mask(6, rng, (0.25, 0.25, 0.25, 0.25)) for _ in range(200)]
    assert all(0 <= int(m.sum()) < 6 for m in kinds)
    assert any(m.sum() == 0 for m in kinds) and any(m[0] == 1 and m.sum() == 1 for m in kinds)
    batch = toy_videos().batch(5, 4, 8, 16, rng, freeze_time_share=1.0)
    assert batch.x0.shape == (5, 4, 3, 8, 16) and batch.context.tolist() == [1] * 5
    assert -1 <= batch.x0.min() and batch.x0.max() <= 1
    held = toy_videos()
    out = held.split_holdout(0.5, seed=0)
    assert out.counts() == {"dynamic": 3, "freeze_time": 3} and held.counts() == {"dynamic": 3, "freeze_time": 3}
    # whole origins move: a held-out video's clips of both modes, none left in training
    assert sorted(set(out.origins["dynamic"])) == sorted(out.origins["freeze_time"])
    assert not set(out.origins["dynamic"]) & set(held.origins["dynamic"] + held.origins["freeze_time"])
    assert toy_videos().split_holdout(0.01, seed=0).counts() == {"dynamic": 1, "freeze_time": 1}  # at least one
    assert toy_videos().split_holdout(0.0, seed=0).counts() == {"dynamic": 0, "freeze_time": 0}
    with pytest.raises(ValueError, match="no training video has 9 frames"):
        toy_videos().batch(1, 9, 8, 8, rng)


def test_sources_of_other_sizes_are_cropped_and_resized():
    from fourreal.training.data import fit_video

    videos = toy_videos()
    videos.add(np.zeros((6, 12, 12, 3), np.uint8), "dynamic", "square")
    for _ in range(5):
        assert videos.batch(6, 3, 8, 16, np.random.default_rng(0)).x0.shape == (6, 3, 3, 8, 16)
    wide = torch.zeros(1, 3, 4, 16)
    wide[..., 6:10] = 1.0  # the central square of the wide frame
    assert fit_video(wide, 4, 4).min() == 1.0


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path):
    """torch.compile (optim.compile) gives the same losses as eager PyTorch, within tolerance."""
    videos = toy_videos()
    losses = {}
    for compiled in (False, True):
        cfg = OptimConfig(phases=[Phase(3, 8, 8, 3, 2)], checkpoint_every=3, log_every=1, ema_decay=0.0, compile=compiled)
        model = small_model()
        for p in model.parameters():  # non-zero output layers, so the loss depends on every weight
            torch.nn.init.normal_(p, std=0.05)
        train(model, cfg, tmp_path / str(compiled), lambda p, r, d: videos.batch(2, 3, 8, 8, r),
              lambda m, b, g: video_loss(m, b, g, cfg))
        losses[compiled] = [float(r["loss"]) for r in csv.DictReader(open(tmp_path / str(compiled) / "loss.csv"))]
    assert len(losses[True]) == 3
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-3)


def test_activation_checkpointing_trains_the_same_weights(tmp_path):
    videos = toy_videos()
    finals = []
    for on in (False, True):
        cfg = OptimConfig(phases=[Phase(3, 8, 8, 3, 2)], lr=3e-3, warmup=1, ema_decay=0.0, activation_checkpointing=on)
        torch.manual_seed(0)
        model = small_model(0)
        train(model, cfg, tmp_path / str(on), lambda p, r, d: videos.batch(2, 3, 8, 8, r), lambda m, b, g: video_loss(m, b, g, cfg))
        assert model.checkpointing is on
        finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(finals[0], finals[1])


def test_the_run_reports_its_own_model_flop_rate(tmp_path):
    """With a FLOP count per batch, the summary carries the median model FLOP/s of the log intervals:
    consistent with the count and the wall time, and no MFU without a GPU."""
    from fourreal.training.flops import dit_forward_flops

    videos, seen = toy_videos(), []
    cfg = OptimConfig(phases=[Phase(6, 8, 16, 4, 2)], lr=1e-3, warmup=1, checkpoint_every=100, log_every=1)
    model = small_model()

    def flops(batch):
        b, f, _, h, w = batch.x0.shape
        seen.append((b, f, h, w))
        return 3 * dit_forward_flops(model.cfg, b, f, h, w)

    summary = train(model, cfg, tmp_path, lambda p, rng, d: videos.batch(p.batch_size, p.frames, p.height, p.width, rng),
                    lambda m, b, g: video_loss(m, b, g, cfg), run_key="k", flops_fn=flops)
    assert seen == [(2, 4, 8, 16)] * 6
    step_flops = 3 * dit_forward_flops(model.cfg, 2, 4, 8, 16)
    rate = summary.model_tflops_per_s * 1e12
    assert 0 < rate and step_flops / rate < summary.seconds  # a step's time is below the whole run's
    assert summary.mfu is None


def test_tokens_done_counts_videos_or_grid_windows():
    cfg = OptimConfig(phases=[Phase(2, 8, 16, 4, 3), Phase(5, 16, 16, 2, 1)])
    # 2 steps of 3 videos of 4 frames of 2x4 patches, then 1 step of 1 video of 2 frames of 4x4
    assert cfg.tokens_done(3, 4) == 2 * 3 * 4 * 8 + 1 * 1 * 2 * 16
    assert cfg.tokens_done(3, 4, grid=True) == 2 * 3 * 16 * 8 + 1 * 1 * 4 * 16  # frames x frames cells
    assert cfg.tokens_done(3, 4, start=1) == 1 * 3 * 4 * 8 + 1 * 1 * 2 * 16  # a run resumed at step 1 did these
