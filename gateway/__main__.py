"""``python -m gateway`` is the ``gateway`` command."""

import sys

from .cli import main

sys.exit(main())
