"""``python -m fluvial.cli`` is the ``fluvial`` command."""

from fluvial.cli import main

main()
