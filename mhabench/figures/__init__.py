"""Figures read across a run's results: break-even padding per shape, and the gate's figures as
``mhabench run --json`` names them.

In: results docs (:mod:`mhabench.measure.results`' JSON layout). Out: tables and per-figure
values. Imports only from :mod:`mhabench.measure`.
"""
