"""Reachability checks for the servers mmupt can be pointed at (Prefect, MLflow)."""

from __future__ import annotations

import urllib.error
import urllib.request

from mmupt.errors import MmuptError


def require_reachable(url: str, what: str, hint: str) -> None:
    """Fail with one line naming ``what`` and ``url`` when ``url/health`` does not answer."""
    try:
        urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=5).read()
    except (urllib.error.URLError, OSError) as err:
        raise MmuptError(f"{what} at {url} is not reachable ({err}); {hint}") from None
