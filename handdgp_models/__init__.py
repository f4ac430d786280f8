"""handdgp_models: a trainable reimplementation of HandDGP (camera-space hand mesh prediction
with differentiable global positioning)."""

#: The version of the handdgp distribution (dgp_ops and handdgp_models), declared here only.
__version__ = "0.1.0"
