"""Tags of requests from a per-community list kept by admins; the feed filters by tag."""
