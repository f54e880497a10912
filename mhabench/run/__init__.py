"""A run that loses nothing: a sweep's points measured in supervised workers, each journaled
before the next, the run's files rebuilt from the journal.

In: points and a worker spec (from the CLI or the asv suite). Out: the journal, and from it the
CSV, errors JSON, full JSON and break-even CSV. Imports from :mod:`mhabench.measure` and
:mod:`mhabench.figures`; the worker runs as ``python -m mhabench.run.worker``.
"""
