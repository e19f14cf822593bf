"""Running the pipeline: parameters, paths, provenance, stage entry points and commands.

- :mod:`~fourreal.running.config`      typed loading and validation of configs
- :mod:`~fourreal.running.params`      the sections of ``params.yaml`` and their config classes
- :mod:`~fourreal.running.layout`      every path under ``data/``
- :mod:`~fourreal.running.provenance`  import closures and run keys (what a result depends on)
- :mod:`~fourreal.running.errors`      user errors: one line on stderr, the traceback with ``--debug``
- :mod:`~fourreal.running.stage`       what every stage entry point shares
- :mod:`~fourreal.running.bundle`      shipped model folders with a model card
- :mod:`~fourreal.running.cli`         the ``fourreal`` command
- :mod:`~fourreal.running.viewer`      a reconstruction in the browser
"""
