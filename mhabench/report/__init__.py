"""Looking at results: the table ``mhabench run`` prints, plots of a run and of asv history, the
published report served offline, and its view check in a browser.

In: results docs, asv results (through :mod:`mhabench.track.asv_results`) and asv's html.
Out: tables, PNGs, a local server. Nothing below imports from here.
"""
