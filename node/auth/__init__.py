"""Trust onboarding: first admin, invites, registration, device-approved login, sessions."""
