"""Skins: CSS files of variables (and a few component rules) in web_templates/static/skins,
checked (parses, every variable defined, WCAG AA contrast) and served fingerprinted."""
