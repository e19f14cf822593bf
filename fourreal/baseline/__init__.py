"""The 4Real baseline: 4Real's optimisation pipeline, which the 4D model replaces.

- :mod:`~fourreal.baseline.baseline_4real`  canonical Gaussians and temporal deformation fitted with SDS
- :mod:`~fourreal.baseline.sds`             score distillation sampling from the base video model
"""
