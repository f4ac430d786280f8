"""Defaults of prediction, in a module that imports nothing, so the command line shows them
without importing numpy or torch."""

#: Hands per network call (across images).
BATCH_SIZE = 16
#: One-Euro smoothing: cut-off frequency at rest, Hz.
SMOOTH_MIN_CUTOFF = 1.0
#: One-Euro smoothing: speed coefficient, 1/m (a hand moving at 0.1 m/s is filtered at
#: ``1 + 20 · 0.1 = 3`` Hz).
SMOOTH_BETA = 20.0
#: One-Euro smoothing: cut-off frequency of the speed estimate, Hz.
SMOOTH_D_CUTOFF = 1.0
