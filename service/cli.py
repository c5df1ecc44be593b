"""Deprecated: ``python3 -m service.cli`` and ``from service.cli import root`` forward to
``ops.cli`` for one release (the root ``wb`` group moved to the operations package, the
floor above node and hub). Use ``python3 -m ops.cli`` / ``ops.cli.root``."""

from __future__ import annotations

from ops.cli import main, root

__all__ = ["main", "root"]

if __name__ == "__main__":
    main()
