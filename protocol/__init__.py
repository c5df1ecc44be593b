"""WhiteBalloon protocol library: records, manifests, signatures, bundles, verification.

Pure: bytes and values in, bytes and values out. No network, no database, no file
system, no globals. ``tests/protocol/test_purity.py`` enforces the import rules.
"""

from protocol.errors import ERROR_CODES, ProtocolError

__all__ = ["ERROR_CODES", "ProtocolError"]
