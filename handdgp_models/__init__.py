"""handdgp_models: a trainable reimplementation of HandDGP (camera-space hand mesh prediction
with differentiable global positioning)."""

__version__ = "0.1.0"
