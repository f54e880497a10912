"""Tracking torch builds through asv: builds as commits, the generated asv config, the one
reader of asv's result files, the gate between two builds and ``confirm``.

In: build specs, and asv's results of the suite (:mod:`mhabench.suite`). Out: asv results and
report, gate verdicts. Imports from the stages below (suite, run, figures, measure), never
from :mod:`mhabench.report`.
"""
