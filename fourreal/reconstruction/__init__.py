"""Reconstruction of a 4D grid as deformable isotropic 3D Gaussians (supplementary Sec. 6).

Import from the submodules:

- :mod:`~fourreal.reconstruction.config`       ``ReconstructConfig`` and the compute device
- :mod:`~fourreal.reconstruction.geometry`     pinhole cameras, projections, rigid fits
- :mod:`~fourreal.reconstruction.optical_flow` dense optical flow between frames
- :mod:`~fourreal.reconstruction.tracking`     dense 2D tracks through the freeze-time column
- :mod:`~fourreal.reconstruction.init`         tracks + depth -> canonical cloud and per-view offsets
- :mod:`~fourreal.reconstruction.gaussians`    isotropic Gaussians: rendering (color, depth), the 3DGS PLY file
- :mod:`~fourreal.reconstruction.points`       open3d: outliers, voxel de-duplication, normals, TSDF meshes, files
- :mod:`~fourreal.reconstruction.prune`        floater removal by opacity optimisation
- :mod:`~fourreal.reconstruction.deformation`  the temporal MLP and the deformable model (Eq. 11)
- :mod:`~fourreal.reconstruction.loss`         the fit's loss (L1 + SSIM + temporal smoothness)
- :mod:`~fourreal.reconstruction.fit`          the deformable fit loop
- :mod:`~fourreal.reconstruction.scoring`      held-out cells and PSNR/SSIM
- :mod:`~fourreal.reconstruction.output`       re-rendered grid, previews, the written files and reading them
- :mod:`~fourreal.reconstruction.export`       per-frame 3DGS PLY, point cloud, TSDF mesh and sweep mp4
- :mod:`~fourreal.reconstruction.pipeline`     ``reconstruct``: all of the above for one grid
- :mod:`~fourreal.reconstruction.sources`      the ``reconstruct`` stage's grids, their depth, per-source means
"""
