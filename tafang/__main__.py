"""`python -m tafang` is the `tafang` command."""

from tafang.console.cli import main

raise SystemExit(main())
