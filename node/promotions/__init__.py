"""A comment promoted to its own request, by its author or an admin, linked both ways."""
