"""``python -m fwsim``: the same as the ``firmware-sim`` command."""

from .cli import main

raise SystemExit(main())
