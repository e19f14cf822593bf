"""Evaluation: the paper's tables and the metrics in them.

- :mod:`~fourreal.evaluation.tables`       Tables 1-3 (the evaluate stage's parameters, rows, files, charts)
- :mod:`~fourreal.evaluation.metrics`      PSNR and SSIM, also over masked pixels
- :mod:`~fourreal.evaluation.consistency`  reference-free multi-view matching, structure from motion, warping errors
- :mod:`~fourreal.evaluation.fvd`          FVD, CLIP score and VideoScore from local weights
"""
