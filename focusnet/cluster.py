"""Measuring a batch on a Dask cluster: a local one (N worker processes) or a running scheduler.

Each worker process loads the model once (focusnet's model cache) and runs
:func:`focusnet.batch.measure_entry`, the same function a run on one machine
uses, so the tables are the same; the caller commits each entry to the
journal as it arrives, so interruption and resuming work as they do here.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidParameterError


def _model_reference(model):
    """What workers load: the model's folder or bundle path (the shipped model when None)."""
    if model is None or isinstance(model, (str, Path)):
        return None if model is None else str(model)
    directory = getattr(model, "directory", None)
    if directory is None:
        raise InvalidParameterError("a model given as an object needs a folder or bundle path to run on workers")
    return str(directory)


def check_cluster(workers: int | None, scheduler: str | None) -> None:
    """Refuse, before anything starts, what cannot run on a cluster.

    Raises
    ------
    InvalidParameterError
        Both or a bad count given, or Dask's distributed scheduler missing.
    """
    if workers is not None and scheduler is not None:
        raise InvalidParameterError("give a number of workers or a scheduler, not both", setting="scheduler")
    if scheduler is None and not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
        raise InvalidParameterError(f"the number of workers must be a whole number >= 1, got {workers!r}",
                                    setting="workers")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InvalidParameterError("measuring on a cluster needs Dask's distributed scheduler: "
                                    "pip install 'dask[distributed]'") from None


def measure_on_cluster(task, files, output_of, model, options: dict, workers: int | None = None,
                       scheduler: str | None = None):
    """Yield each file's entry as a worker finishes it (in finishing order).

    Parameters
    ----------
    task : callable
        :func:`focusnet.batch.measure_entry` (given, so this module does not import the batch module).
    files : list of str
    output_of : callable
        The file a task writes for a path, passed as ``task``'s third argument (an overlay, or None).
    model : loaded model or path
    options : dict
        Keyword arguments of ``task``.
    workers : int, optional
        Start a local cluster of this many processes (one thread each).
    scheduler : str, optional
        Address of a running scheduler (e.g. ``tcp://10.0.0.5:8786``).

    Raises
    ------
    InvalidParameterError
        Dask's distributed scheduler is not installed, no workers were asked
        for, or the scheduler cannot be reached.
    """
    check_cluster(workers, scheduler)
    from distributed import Client, LocalCluster, as_completed

    reference = _model_reference(model)
    cluster = None
    try:
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout=30)
            except OSError as error:
                raise InvalidParameterError(f"cannot reach the scheduler {scheduler} ({error})",
                                            setting="scheduler") from None
        with client:
            futures = [client.submit(task, path, reference, output_of(path), pure=False, **options)
                       for path in files]
            try:
                for future in as_completed(futures):
                    yield future.result()
            finally:
                client.cancel(futures)
    finally:
        if cluster is not None:
            cluster.close()
