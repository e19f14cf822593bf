"""Training: data, objectives, the loop and what it writes.

- :mod:`~fourreal.training.optim`          optimizer, schedule and bookkeeping settings
- :mod:`~fourreal.training.train_configs`  the training stages' parameters
- :mod:`~fourreal.training.flow_matching`  rectified-flow pieces: noise, interpolation, target, loss
- :mod:`~fourreal.training.losses`         each model's objective, built from them
- :mod:`~fourreal.training.data`           training videos and grid windows, batches, tensor helpers
- :mod:`~fourreal.training.video_data`     the videos a video model trains and is evaluated on
- :mod:`~fourreal.training.train`          the training loop (resume, EMA, checkpoints)
- :mod:`~fourreal.training.train_log`      loss curves and TensorBoard
- :mod:`~fourreal.training.parallel`       DDP/FSDP, autocast, collectives
- :mod:`~fourreal.training.flops`          model FLOPs and MFU
- :mod:`~fourreal.training.faults`         fault points for crash tests
- :mod:`~fourreal.training.model_files`    export and loading of model directories
"""
