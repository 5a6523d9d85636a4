#!/usr/bin/env python3
"""A tiny OpenAI-compatible embeddings endpoint for the rehearsal (standard
library only). Letta needs an embedding model to store archival passages and
file chunks; the rehearsal has no API keys, so this serves deterministic
vectors instead:

- POST /v1/embeddings: hashed bag of words (lowercased words, each adding +-1
  to a few dimensions chosen by a SHA-256 of the word), L2-normalised. The same
  text always gives the same vector, and texts sharing words are close, so a
  similarity search finds the passage it should. `encoding_format: base64`
  (the OpenAI Python client's default) is honoured. Dimensions: the request's
  `dimensions`, else $EMBEDDING_DIM (default 1536).
- GET /v1/models: one model per name in $EMBEDDING_MODELS.
- Chat/completions/responses: 400 "embeddings only". Nothing here pretends to
  be a language model.
- GET /health: 200.

Never use this outside a rehearsal: the vectors carry no meaning.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_DIM = int(os.environ.get("EMBEDDING_DIM", "1536"))
MODELS = os.environ.get("EMBEDDING_MODELS", "text-embedding-3-small,text-embedding-ada-002").split(",")
WORD = re.compile(r"[a-z0-9]+")


def embed(text: str, dim: int) -> list[float]:
    vec = [0.0] * dim
    words = WORD.findall(text.lower()) or [text]
    for word in words:
        digest = hashlib.sha256(word.encode("utf-8")).digest()
        for k in range(3):  # three slots per word: fewer collisions between words
            index = int.from_bytes(digest[4 * k:4 * k + 4], "big") % dim
            vec[index] += 1.0 if digest[12 + k] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


class Handler(BaseHTTPRequestHandler):
    server_version = "embeddings-stub/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: object) -> None:  # one short line per request, no bodies
        sys.stderr.write("%s %s\n" % (self.command, self.path.split("?")[0]))

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reject(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": None}})

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path in ("/health", "/healthz", ""):
            self._send(200, {"status": "ok"})
        elif path == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "embeddings-stub"} for m in MODELS]})
        else:
            self._reject(404, f"no route {path}")

    def do_POST(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path != "/v1/embeddings":
            self._reject(400 if path.startswith("/v1/") else 404,
                         "this is an embeddings-only stub: chat and completions are not served")
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._reject(400, "body is not JSON")
            return
        inputs = body.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            self._reject(400, "input must be a string or a non-empty list")
            return
        dim = int(body.get("dimensions") or DEFAULT_DIM)
        b64 = body.get("encoding_format") == "base64"
        data, tokens = [], 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += max(1, len(text.split()))
            vec = embed(text, dim)
            value = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": value})
        self._send(200, {"object": "list", "data": data, "model": body.get("model") or MODELS[0],
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"embeddings-stub: listening on :{port}, dim {DEFAULT_DIM}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
