"""``python -m sketchlearn``: see :mod:`sketchlearn.cli`."""

import sys

from .cli import main

sys.exit(main())
