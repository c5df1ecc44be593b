from tests.node.auth.conftest import devices  # noqa: F401  (the same devices fixture)
