"""A small JSON-over-HTTP helper shared by the app clients (requests, which the
docker SDK already brings). Errors become AppError with the app, method, path
and status, never a header, a cookie or a key."""

from __future__ import annotations

import time
from typing import Any

import requests

from migrator.apps import AppError
from migrator.redact import redact


class HttpApp:
    app = "app"

    def __init__(self, base_url: str, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201),
                **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, self.base_url + path, **kwargs)
        except requests.RequestException as exc:
            raise AppError(self.app, f"{method} {path}: {type(exc).__name__}: "
                                     f"{redact(str(exc))[:200]}") from None
        if expect and response.status_code not in expect:
            raise AppError(self.app, f"{method} {path}: HTTP {response.status_code}: "
                                     f"{redact(response.text[:300])}")
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise AppError(self.app, f"{method} {path}: answer is not JSON") from None

    def wait_until(self, path: str, seconds: float, ok=lambda r: r.status_code == 200) -> float:
        """Poll GET path until ok(response); returns the seconds waited."""
        start = time.monotonic()
        last = "no answer"
        while True:
            try:
                response = self.session.get(self.base_url + path, timeout=5)
                if ok(response):
                    return time.monotonic() - start
                last = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            if time.monotonic() - start > seconds:
                raise AppError(self.app, f"not ready after {seconds:.0f} s at {self.base_url}{path} ({last})")
            time.sleep(1)
