"""The market of Avellaneda & Stoikov (2008), section 4: the defaults of the paper's own
experiment (`models.as_experiment`), of the simulated market that streams it as events
(`connectors.simulated_market`) and of `quoteflow simulate`.

Kept apart from the experiment so the CLI can show them without importing numpy.
"""

from __future__ import annotations

S0 = 100.0  # initial mid
T = 1.0  # horizon
SIGMA = 2.0  # volatility, price per √(time unit)
DT = 0.005  # time step
K = 1.5  # decay of the fill intensity with depth, per price unit
A = 140.0  # fill intensity at the mid, per time unit
