"""A small JSON-over-HTTP helper shared by the app clients (requests, which the
docker SDK already brings). Errors become AppError with the app, method, path
and status, never a header, a cookie or a key."""

from __future__ import annotations

import time
from typing import Any

import requests
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from migrator.apps import AppError
from migrator.redact import redact


UNAVAILABLE_SECONDS = 60


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
            response = self._send(method, path, **kwargs)
        except requests.RequestException as exc:
            raise AppError(self.app, f"{method} {path}: {type(exc).__name__}: "
                                     f"{redact(str(exc))[:200]}") from None
        if expect and response.status_code not in expect:
            raise AppError(self.app, f"{method} {path}: HTTP {response.status_code}: "
                                     f"{redact(response.text[:300])}")
        return response

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; a read answered 503 (n8n's "Database is not ready!" while its pool
        reconnects, right after it turned healthy on a busy host) is asked again for up to
        UNAVAILABLE_SECONDS: the answer, not the question, is what gets compared."""
        send = lambda: self.session.request(method, self.base_url + path, **kwargs)   # noqa: E731
        if method.upper() not in ("GET", "HEAD"):
            return send()
        return Retrying(retry=retry_if_result(lambda r: r.status_code == 503),
                        stop=stop_after_delay(UNAVAILABLE_SECONDS), wait=wait_fixed(1),
                        retry_error_callback=lambda state: state.outcome.result())(send)

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
