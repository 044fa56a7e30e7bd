"""A small client for the magma-som HTTP API, standard library only (urllib, json).

    from magma_som import Client

    with Client("http://127.0.0.1:8080", api_key=None, timeout=60) as client:
        answer = client.ask("scene.png", "What color is object #1?",
                            marks=[{"label": 1, "x1": 10, "y1": 10, "x2": 60, "y2": 50}])
        print(answer["answer"], answer["references"])
        for event in client.ask_stream("scene.png", "Describe the marked objects.", marks=[...]):
            if event["type"] == "token":
                print(event["text"], end="", flush=True)

Server faults (5xx), 429 and connection failures are retried with exponential backoff and
jitter, waiting at least what Retry-After says; other errors raise MagmaSomError at once.
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Dict, Iterator, List, Optional, Union

__all__ = ["Client", "MagmaSomError"]

ImageInput = Union[str, bytes, os.PathLike]


class MagmaSomError(Exception):
    """An error answer from the server, or a failure to reach it.

    `code` is the contract's error code (INVALID_MARKS, RATE_LIMITED, ...; CONNECTION_ERROR
    when no answer came), `status` the HTTP status (0 without one).
    """

    def __init__(self, code: str, message: str, status: int = 0, request_id: Optional[str] = None,
                 retryable: bool = False, retry_after: Optional[float] = None,
                 issues: Optional[List[Dict[str, Any]]] = None) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.retryable = retryable
        self.retry_after = retry_after
        self.issues = issues or []


class Client:
    """A session with one server: base URL, API key, timeouts and retry policy.

    Use it as a context manager; after close() it refuses new requests.
    """

    def __init__(self, base_url: str, api_key: Optional[str] = None, timeout: float = 120.0,
                 max_retries: int = 2, backoff: float = 0.5, max_backoff: float = 8.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.attempts = 0  # requests sent, retries included (for callers that want to know)
        # One opener for the session; it keeps its handlers (and any proxy settings) together.
        self._opener = urllib.request.build_opener()
        self._closed = False

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._opener.close()

    # -- the API ---------------------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        return self._json("GET", "/health")

    def ready(self) -> bool:
        try:
            return bool(self._json("GET", "/ready", retry=False)["ready"])
        except MagmaSomError:
            return False

    def models(self) -> List[str]:
        return [model["id"] for model in self._json("GET", "/v1/models")["data"]]

    def ask(self, image: ImageInput, prompt: str, marks: Optional[List[Dict[str, Any]]] = None,
            **fields: Any) -> Dict[str, Any]:
        """POST /v1/som/ask with the image inline (base64). Returns the AskResponse."""
        body = {"image": _image_string(image), "prompt": prompt, "marks": marks or [], **fields}
        return self._json("POST", "/v1/som/ask", body)

    def ask_upload(self, image: ImageInput, prompt: str,
                   marks: Optional[List[Dict[str, Any]]] = None, **fields: Any) -> Dict[str, Any]:
        """POST /v1/som/ask as multipart/form-data: the image bytes as a file, no base64."""
        parts: Dict[str, str] = {"prompt": prompt, "marks": json.dumps(marks or [])}
        for name, value in fields.items():
            parts[name] = json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)
        boundary = uuid.uuid4().hex
        body = _multipart(boundary, parts, _image_bytes(image))
        return self._request("POST", "/v1/som/ask", body,
                             f"multipart/form-data; boundary={boundary}", _read_json)

    def ask_stream(self, image: ImageInput, prompt: str,
                   marks: Optional[List[Dict[str, Any]]] = None,
                   **fields: Any) -> Iterator[Dict[str, Any]]:
        """POST /v1/som/ask/stream: yields token events, then the done event.

        An error before the stream starts raises (and is retried like any request); an error
        event during the stream raises MagmaSomError (never retried: text was already sent).
        """
        body = {"image": _image_string(image), "prompt": prompt, "marks": marks or [], **fields}
        response = self._request("POST", "/v1/som/ask/stream", _encode(body), "application/json",
                                 lambda r: r)
        with response:
            for name, data in _sse_events(response):
                event = json.loads(data)
                if name == "error":
                    raise _error_from_data(event["error"], response.status)
                yield event

    def chat(self, prompt: str, image: ImageInput, marks: Optional[List[Dict[str, Any]]] = None,
             model: Optional[str] = None, **params: Any) -> Dict[str, Any]:
        """POST /v1/chat/completions (OpenAI-compatible), marks in the `marks` extension."""
        url = "data:image/png;base64," + base64.b64encode(_image_bytes(image)).decode()
        body = {
            "model": model or self.models()[0],
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": url}},
            ]}],
            **({"marks": marks} if marks else {}),
            **params,
        }
        return self._json("POST", "/v1/chat/completions", body)

    # -- transport -------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: Any = None, retry: bool = True) -> Any:
        data = None if body is None else _encode(body)
        return self._request(method, path, data, "application/json", _read_json, retry)

    def _request(self, method: str, path: str, data: Optional[bytes], content_type: str,
                 read: Any, retry: bool = True) -> Any:
        if self._closed:
            raise RuntimeError("the client is closed")
        headers = {"accept": "application/json, text/event-stream",
                   # One id for every attempt, so the server's logs tie retries together.
                   "x-request-id": str(uuid.uuid4())}
        if data is not None:
            headers["content-type"] = content_type
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        attempt = 0
        while True:
            attempt += 1
            self.attempts += 1
            try:
                request = urllib.request.Request(self.base_url + path, data=data,
                                                 headers=headers, method=method)
                response = self._opener.open(request, timeout=self.timeout)
                return read(response)
            except urllib.error.HTTPError as http_error:
                error = _error_from_response(http_error)
            except (urllib.error.URLError, socket.timeout, ConnectionError) as failure:
                reason = getattr(failure, "reason", failure)
                error = MagmaSomError("CONNECTION_ERROR", str(reason), retryable=True)
            if not (retry and error.retryable and attempt <= self.max_retries):
                raise error
            time.sleep(self._delay(attempt, error.retry_after))

    def _delay(self, attempt: int, retry_after: Optional[float]) -> float:
        """Exponential backoff with jitter, but never shorter than the server asked for."""
        backoff = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
        backoff *= random.uniform(0.75, 1.0)
        return max(backoff, retry_after or 0.0)


# -- helpers -------------------------------------------------------------------------------

def _encode(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8")


def _read_json(response: Any) -> Any:
    with response:
        return json.loads(response.read().decode("utf-8"))


def _image_bytes(image: ImageInput) -> bytes:
    if isinstance(image, bytes):
        return image
    with open(image, "rb") as file:
        return file.read()


def _image_string(image: ImageInput) -> str:
    if isinstance(image, str) and image.startswith("data:"):
        return image
    return base64.b64encode(_image_bytes(image)).decode("ascii")


def _multipart(boundary: str, fields: Dict[str, str], image: bytes) -> bytes:
    chunks: List[bytes] = []
    for name, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                      f"{value}\r\n".encode("utf-8"))
    chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                  f'filename="image"\r\nContent-Type: application/octet-stream\r\n\r\n'
                  .encode("utf-8"))
    chunks.append(image)
    chunks.append(f"\r\n--{boundary}--\r\n".encode("utf-8"))
    return b"".join(chunks)


def _sse_events(response: Any) -> Iterator[tuple]:
    """(event name, data) pairs of a text/event-stream, as they arrive."""
    name: Optional[str] = None
    data: List[str] = []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                yield name, "\n".join(data)
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    if data:
        yield name, "\n".join(data)


def _retry_after(headers: Any) -> Optional[float]:
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    seconds = headers.get("retry-after")
    try:
        return float(seconds) if seconds else None
    except ValueError:
        return None  # an HTTP date; the backoff applies instead


def _error_from_data(data: Dict[str, Any], status: int, retry_after: Optional[float] = None,
                     ) -> MagmaSomError:
    ms = data.get("retryAfterMs")
    return MagmaSomError(
        data.get("code", "INTERNAL"), data.get("message", ""), data.get("httpStatus", status),
        data.get("requestId"), bool(data.get("retryable", status >= 500 or status == 429)),
        retry_after if retry_after is not None else (ms / 1000 if ms is not None else None),
        data.get("issues"),
    )


def _error_from_response(error: urllib.error.HTTPError) -> MagmaSomError:
    status = error.code
    retry_after = _retry_after(error.headers)
    try:
        body = json.loads(error.read().decode("utf-8"))
    except (ValueError, OSError):
        body = {}
    finally:
        error.close()
    # REST answers ErrorData; the OpenAI-compatible routes {"error": {...}}.
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        inner = body["error"]
        return MagmaSomError(str(inner.get("code") or "INTERNAL"), inner.get("message", ""), status,
                             inner.get("request_id"), status >= 500 or status == 429, retry_after)
    if isinstance(body, dict) and "code" in body:
        return _error_from_data(body, status, retry_after)
    # No contract body (a proxy's 502, say): judge by the status.
    return MagmaSomError("INTERNAL" if status >= 500 else "HTTP_ERROR", f"HTTP {status}", status,
                         error.headers.get("x-request-id"), status >= 500 or status == 429,
                         retry_after)
