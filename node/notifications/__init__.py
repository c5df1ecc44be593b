"""Notifications: e-mail through a relay, Atom feeds, /llms.txt."""
