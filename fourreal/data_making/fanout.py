"""Fan rendering out over a Dask cluster through Prefect: one Prefect task per batch of
assets, run by a ``DaskTaskRunner`` (a local cluster of processes, or a remote scheduler).

Kept apart from :mod:`fourreal.data_making.render` so render workers never import Prefect.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.futures import as_completed
from prefect_dask import DaskTaskRunner

from fourreal.data_making.render import RenderConfig, RenderJob, render_batch


def _render_batch(batch: list[RenderJob], cfg: RenderConfig, keys: dict[str, str]) -> list[tuple[str, str | None]]:
    return render_batch(batch, cfg, keys)


render_batch_task = task(_render_batch, name="render-batch")


@flow(name="render-assets", validate_parameters=False)
def render_flow(batches: list[list[RenderJob]], cfg: RenderConfig, keys: dict[str, str]) -> list[tuple[str, str | None]]:
    """Submit one task per batch and collect ``[(name, error or None)]`` as they finish."""
    logger = get_run_logger()
    futures = [render_batch_task.submit(b, cfg, keys) for b in batches]
    results: list[tuple[str, str | None]] = []
    for fut in as_completed(futures):
        part = fut.result()
        results += part
        logger.info("rendered %d/%d assets", len(results), sum(map(len, batches)))
    return results


def render_on_dask(batches: list[list[RenderJob]], cfg: RenderConfig, keys: dict[str, str]) -> list[tuple[str, str | None]]:
    """Render ``batches`` on Dask: the scheduler at ``cfg.dask_address``, or a local cluster
    of ``cfg.workers`` single-threaded processes. Returns ``[(name, error or None)]``."""
    if cfg.dask_address:
        runner = DaskTaskRunner(address=cfg.dask_address)
    else:
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": cfg.workers, "threads_per_worker": 1, "processes": True})
    return render_flow.with_options(task_runner=runner)(batches, cfg, keys)
