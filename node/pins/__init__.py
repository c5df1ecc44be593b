"""Pinned requests: admins keep a few requests above the feed (local, never exported)."""
