"""The node's sync engine: signed incremental bundles out, verified bundles in."""
