"""``python -m handdgp_models.data preview --out PATH.png``."""

import sys

from .preview import main

sys.exit(main())
