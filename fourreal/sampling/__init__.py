"""Sampling: generating videos and 4D grids with the trained models.

- :mod:`~fourreal.sampling.flow_solver`     the Euler/Heun ODE solver with guidance
- :mod:`~fourreal.sampling.video_sampling`  base-model videos (first frame, context, extension), upsampling
- :mod:`~fourreal.sampling.grid_windows`    a 4D grid by sliding windows
- :mod:`~fourreal.sampling.precision`       the precision a 4D model samples in (fp32, bf16, fp8, auto)
- :mod:`~fourreal.sampling.sample_4d`       the ablation variants on held-out grids, scores, copy baselines
- :mod:`~fourreal.sampling.video_to_4d`     one video in, a 4D scene out
"""
