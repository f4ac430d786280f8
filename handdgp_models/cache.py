"""Where the project's caches go: one policy, one environment variable, one config key.

Every cache lives under the *cache root*: the run config's ``cache_dir`` when set, else
``$HANDDGP_CACHE``, else ``~/.cache/handdgp``. Under it:

- ``hierarchy/``: mesh hierarchies (up-sampling maps and spirals of a template mesh);
- ``synthetic/``: rendered synthetic samples;
- ``<dataset>-<hash of the dataset root>/``: a real dataset's annotation arrays. When neither
  the key nor the variable is set, these go inside the dataset copy instead
  (``ROOT/.handdgp_cache``, when it is writable), so every run on that copy shares them.

Each entry is keyed by a hash of what produced it and carries a format version, so caches can
be shared between runs and deleted at any time (the next use rebuilds what is missing).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "HIERARCHY", "SYNTHETIC", "cache_dir", "cache_root"]

#: The environment variable that moves every cache (unless the run config's ``cache_dir`` does).
CACHE_ENV = "HANDDGP_CACHE"
#: Sub-folders of the cache root.
HIERARCHY = "hierarchy"
SYNTHETIC = "synthetic"


def cache_root(configured: str | os.PathLike | None = None) -> Path:
    """``configured`` (a run config's ``cache_dir``), else ``$HANDDGP_CACHE``, else
    ``~/.cache/handdgp``."""
    if configured is not None:
        return Path(configured)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "handdgp"


def cache_dir(kind: str, configured: str | os.PathLike | None = None) -> Path:
    """The folder of one kind of cache (:data:`HIERARCHY`, :data:`SYNTHETIC`) under
    :func:`cache_root`."""
    return cache_root(configured) / kind
