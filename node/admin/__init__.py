"""Admin pages: the /admin index and /admin/sessions."""
