import numpy as np
import pytest

from fourreal.videos import (
    VideoReadError, VideosConfig, center_crop_resize, ingest_directory, read_video, shot_boundaries, split_clips,
)

from conftest import moving_square_frames, write_video


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
