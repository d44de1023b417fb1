"""``python -m mlotel.cli``: the ``mlotel`` command."""

from . import main

raise SystemExit(main())
