"""Drafts of requests: saved, edited and published later by their author alone."""
