"""``python -m handdgp_models``: the ``handdgp`` command line."""

import sys

from .cli import main

sys.exit(main())
