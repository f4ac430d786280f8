"""Micro-benchmarks of the dgp_ops kernels (run as ``python -m benchmarks.<name>``)."""
