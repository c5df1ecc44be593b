"""Direct messages between members: local, private, blockable and reportable."""
