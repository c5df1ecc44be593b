"""Container health check: exit 0 when GET WB_HEALTH_URL (or the node's /healthz) is 200."""

import os
import sys
import urllib.request

url = os.environ.get("WB_HEALTH_URL") or (
    f"http://127.0.0.1:{os.environ.get('WB_PORT', '8080')}/healthz")
try:
    with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 (local URL)
        sys.exit(0 if response.status == 200 else 1)
except OSError as exc:
    print(f"unhealthy: {url}: {exc}", file=sys.stderr)
    sys.exit(1)
