import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from fourreal.data_making.videos import (
    VideoReadError, VideosConfig, center_crop_resize, ingest_directory, probe_video, read_video, shot_boundaries,
    split_clips,
)
from fourreal.running.config import ConfigError, from_dict

from conftest import REPO, moving_square_frames, write_video


def test_resampling_fps_and_size(tmp_path):
    path = write_video(tmp_path / "v.mp4", moving_square_frames(48), fps=24)  # 2 seconds
    frames = read_video(path, fps=8, height=16, width=32)
    assert frames.shape == (16, 16, 32, 3) and frames.dtype == np.uint8
    frames12 = read_video(path, fps=12, height=16, width=32)
    assert len(frames12) == 24
    # at 8 fps every output frame is every third source frame: the square moves 6 px/frame
    full = read_video(path, fps=24, height=48, width=80)
    assert len(full) == 48
    np.testing.assert_array_equal(read_video(path, 8, 48, 80)[3], full[9])


def test_center_crop_keeps_the_middle():
    frame = np.zeros((40, 100, 3), np.uint8)
    frame[:, 30:70] = 255  # central band, 40 wide
    out = center_crop_resize(frame, 16, 16)  # square crop = columns 30..70
    assert out.shape == (16, 16, 3) and out.min() == 255


def test_corrupt_file_is_skipped_and_counted(video_dir):
    cfg = VideosConfig(input_dir=str(video_dir), fps=8, height=16, width=32, clip_frames=4, clip_stride=4)
    report = ingest_directory(cfg)
    assert report.videos_used == ["a.mp4", "b.avi"]
    assert list(report.skipped) == ["broken.mp4"] and "broken.mp4" in report.skipped["broken.mp4"]
    assert len(report.clips) == 8  # 16 frames per video -> 4 clips each
    with pytest.raises(VideoReadError, match="broken.mp4"):
        read_video(video_dir / "broken.mp4", 8, 16, 32)


def test_too_short_videos_and_excludes(video_dir):
    cfg = VideosConfig(input_dir=str(video_dir), fps=8, height=16, width=32, clip_frames=40, exclude=["b.*"])
    report = ingest_directory(cfg)
    assert report.clips == [] and set(report.skipped) == {"a.mp4", "broken.mp4"}
    assert "a clip needs 40" in report.skipped["a.mp4"]


def test_missing_input_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="videos.input_dir"):
        ingest_directory(VideosConfig(input_dir=str(tmp_path / "nope")))


def test_clips_never_span_a_shot_cut():
    frames = np.zeros((20, 8, 8, 3), np.uint8)
    frames[7:] = 200  # a cut at frame 7
    assert shot_boundaries(frames, 25.0) == [7]
    clips = split_clips(frames, clip_frames=4, stride=2, max_clips=0, cut_threshold=25.0)
    starts = [s for s, _ in clips]
    assert starts == [0, 2, 7, 9, 11, 13, 15]
    assert all(len(np.unique(c)) == 1 for _, c in clips)
    capped = split_clips(frames, 4, 2, max_clips=3, cut_threshold=25.0)
    assert [s for s, _ in capped] == [0, 9, 15]


def test_held_out_videos_give_test_clips_only(video_dir):
    cfg = VideosConfig(input_dir=str(video_dir), fps=8, height=16, width=32, clip_frames=4, clip_stride=4,
                       test_videos=["b.avi"])
    report = ingest_directory(cfg)
    assert report.videos_used == ["a.mp4", "b.avi"] and report.test_videos_used == ["b.avi"]
    assert {stem for stem, _, _ in report.clips} == {"a"} and len(report.clips) == 4
    assert {stem for stem, _, _ in report.test_clips} == {"b"} and len(report.test_clips) == 4
    # the held-out video's frames are exactly its clips, none of them among the training clips
    b = read_video(video_dir / "b.avi", 8, 16, 32)
    np.testing.assert_array_equal(np.concatenate([f for _, _, f in report.test_clips]), b)
    assert not any(np.array_equal(f, t) for _, _, f in report.clips for _, _, t in report.test_clips)


def test_unknown_test_video_is_a_one_line_config_error(video_dir):
    cfg = VideosConfig(input_dir=str(video_dir), test_videos=["a.mp4", "nope.mp4"])
    with pytest.raises(ConfigError) as info:
        ingest_directory(cfg)
    message = str(info.value)
    assert "\n" not in message and message.startswith("videos.test_videos: 'nope.mp4' is not among the videos")
    assert "a.mp4, b.avi, broken.mp4" in message and "remove it from videos.test_videos" in message
    # an excluded video cannot be held out either
    with pytest.raises(ConfigError, match="'b.avi' is not among"):
        ingest_directory(VideosConfig(input_dir=str(video_dir), exclude=["b.*"], test_videos=["b.avi"]))


@pytest.mark.parametrize("names, message", [(["sub/a.mp4"], "no directory"), (["a.mp4", "a.mp4"], "twice")])
def test_test_videos_must_be_distinct_file_names(names, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(VideosConfig, {"input_dir": "x", "test_videos": names}, "params.yaml: videos")


def test_stage_writes_test_clips_apart_and_counts_them(video_dir, tmp_path):
    """`python -m stages.videos` on two tiny videos, one held out; then a bad name."""
    params = {"videos": {"input_dir": str(video_dir), "height": 16, "width": 32, "clip_frames": 4, "clip_stride": 4,
                         "test_videos": ["a.mp4"], "preview": {"max_items": 2, "cell_height": 16, "mp4": False, "html": False}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "data/videos"
    cmd = [sys.executable, "-m", "stages.videos", "--params", str(tmp_path / "params.yaml"), "--out", str(out)]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    assert sorted(p.name for p in (out / "test_clips").iterdir()) == [f"a_{s:05d}.clip.npz" for s in (0, 4, 8, 12)]
    assert sorted(p.name for p in (out / "clips").iterdir()) == [f"b_{s:05d}.clip.npz" for s in (0, 4, 8, 12)]
    details = json.loads((out / "details.json").read_text())
    assert (details["clips"], details["test_clips"], details["test_videos"], details["videos_used"]) == (4, 4, 1, 2)
    assert (details["frames"], details["test_frames"]) == (16, 16)
    assert json.loads((out / "metrics.json").read_text()) == {"clips": 4, "held_out": 4, "skipped": 1}
    params["videos"]["test_videos"] = ["c.mp4"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    bad = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: videos.test_videos: 'c.mp4' is not among the videos found in {video_dir} (after videos.exclude): "
        "a.mp4, b.avi, broken.mp4; name one of those files or remove it from videos.test_videos"]
    assert len(list((out / "clips").iterdir())) == 4  # the earlier outputs are untouched


def test_probe_video_measures_and_names_broken_files(video_dir):
    info = probe_video(video_dir / "a.mp4")
    assert (info.frames, info.fps, info.width, info.height) == (48, 24.0, 80, 48)
    assert info.duration_s == pytest.approx(2.0, abs=0.01) and info.codec == "mpeg4"
    with pytest.raises(VideoReadError, match="broken.mp4"):
        probe_video(video_dir / "broken.mp4")
