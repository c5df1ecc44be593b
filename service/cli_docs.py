"""Deprecated: forwards to ``ops.cli_docs`` for one release; use ``python3 -m ops.cli_docs``."""

from __future__ import annotations

import sys

from ops.cli_docs import cli_markdown

__all__ = ["cli_markdown"]

if __name__ == "__main__":
    sys.stdout.write(cli_markdown())
