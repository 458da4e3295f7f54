"""``python -m assistant`` is the ``stdnews`` command."""

from assistant.cli import main

raise SystemExit(main())
