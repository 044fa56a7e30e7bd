"""Tests of magma_som.py. The vitest test packages/server/test/http-api/python-client.test.ts
runs them against real servers (the real tiny model); it passes their addresses in:

    MAGMA_URL          a server without auth
    MAGMA_LIMITED_URL  a server with API key MAGMA_API_KEY and a rate limit of 1 request a window
    MAGMA_IMAGE        a 160x120 PNG with a red square at (20,20)-(60,60)

The retry test also uses a local stub that fails twice with 503, to count attempts exactly.
"""

import json
import os
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from magma_som import Client, MagmaSomError

URL = os.environ["MAGMA_URL"]
LIMITED_URL = os.environ["MAGMA_LIMITED_URL"]
API_KEY = os.environ["MAGMA_API_KEY"]
IMAGE = os.environ["MAGMA_IMAGE"]
MARKS = [{"label": 1, "x1": 15, "y1": 15, "x2": 65, "y2": 65}]
PROMPT = "What colour is the shape in #1?"
OPTIONS = {"maxTokens": 4}


class AgainstTheServer(unittest.TestCase):
    def setUp(self):
        self.client = Client(URL, timeout=60)

    def tearDown(self):
        self.client.close()

    def test_health_ready_models(self):
        self.assertEqual(self.client.health()["status"], "ok")
        self.assertTrue(self.client.ready())
        self.assertEqual(self.client.models(), ["magma-tiny-som"])

    def test_ask_upload_stream_and_chat_agree(self):
        answer = self.client.ask(IMAGE, PROMPT, marks=MARKS, options=OPTIONS)
        self.assertIsInstance(answer["answer"], str)
        self.assertGreater(answer["usage"]["completionTokens"], 0)
        uploaded = self.client.ask_upload(IMAGE, PROMPT, marks=MARKS, options=OPTIONS)
        self.assertEqual(uploaded["answer"], answer["answer"])
        events = list(self.client.ask_stream(IMAGE, PROMPT, marks=MARKS, options=OPTIONS))
        self.assertEqual(events[-1]["type"], "done")
        text = "".join(event["text"] for event in events if event["type"] == "token")
        self.assertEqual(text, answer["answer"])
        chat = self.client.chat(PROMPT, IMAGE, marks=MARKS, max_tokens=4)
        self.assertEqual(chat["choices"][0]["message"]["content"], answer["answer"])
        self.assertEqual(chat["usage"]["completion_tokens"], answer["usage"]["completionTokens"])

    def test_bad_input_raises_at_once_with_the_contract_code(self):
        outside = [{"label": 1, "x1": 0, "y1": 0, "x2": 999, "y2": 10}]
        with self.assertRaises(MagmaSomError) as caught:
            self.client.ask(IMAGE, PROMPT, marks=outside)
        self.assertEqual(caught.exception.code, "INVALID_MARKS")
        self.assertEqual(caught.exception.status, 400)
        self.assertEqual(caught.exception.issues[0]["path"], ["marks", 0])
        self.assertTrue(caught.exception.request_id)
        attempts = self.client.attempts
        with self.assertRaises(MagmaSomError) as caught:
            self.client.ask(b"not an image", PROMPT)
        self.assertEqual(caught.exception.code, "INVALID_IMAGE")
        self.assertEqual(self.client.attempts, attempts + 1)  # 4xx: no retry

    def test_closed_client_refuses(self):
        self.client.close()
        with self.assertRaises(RuntimeError):
            self.client.health()

    def test_unreachable_server_is_a_connection_error_after_retries(self):
        with Client("http://127.0.0.1:9", timeout=2, max_retries=1, backoff=0.01) as client:
            with self.assertRaises(MagmaSomError) as caught:
                client.models()
            self.assertEqual(caught.exception.code, "CONNECTION_ERROR")
            self.assertEqual(client.attempts, 2)


class AgainstTheLimitedServer(unittest.TestCase):
    def test_wrong_key_is_unauthorized(self):
        with Client(LIMITED_URL, api_key="wrong", max_retries=0) as client:
            with self.assertRaises(MagmaSomError) as caught:
                client.models()
            self.assertEqual((caught.exception.code, caught.exception.status), ("UNAUTHORIZED", 401))

    def test_429_is_retried_after_retry_after(self):
        with Client(LIMITED_URL, api_key=API_KEY, max_retries=0) as client:
            client.models()  # uses the window's one request
            with self.assertRaises(MagmaSomError) as caught:
                client.models()
            self.assertEqual(caught.exception.code, "RATE_LIMITED")
            self.assertGreater(caught.exception.retry_after, 0)
        with Client(LIMITED_URL, api_key=API_KEY, max_retries=3, backoff=0.01) as client:
            started = time.monotonic()
            self.assertEqual(client.models(), ["magma-tiny-som"])
            # The backoff alone would be milliseconds: the wait came from Retry-After.
            self.assertGreaterEqual(time.monotonic() - started, 0.2)
            self.assertGreaterEqual(client.attempts, 2)


class RetryPolicy(unittest.TestCase):
    """A stub answering 503 (with Retry-After: 0) twice, then 200."""

    def setUp(self):
        self.calls = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                calls.append(self.headers.get("x-request-id"))
                status = 503 if len(calls) <= 2 else 200
                body = json.dumps({"code": "OVERLOADED", "message": "busy", "httpStatus": 503,
                                   "retryable": True} if status == 503 else {"status": "ok"})
                self.send_response(status)
                self.send_header("content-type", "application/json")
                if status == 503:
                    self.send_header("retry-after", "0")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_args):
                pass

        self.stub = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.stub.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.stub.server_address[1]}"

    def tearDown(self):
        self.stub.shutdown()
        self.stub.server_close()

    def test_backs_off_exponentially_and_keeps_the_request_id(self):
        with Client(self.url, max_retries=2, backoff=0.1) as client:
            started = time.monotonic()
            self.assertEqual(client.health(), {"status": "ok"})
            elapsed = time.monotonic() - started
        self.assertEqual(len(self.calls), 3)
        self.assertEqual(len(set(self.calls)), 1)
        # 0.1 s then 0.2 s, each with up to 25% jitter off.
        self.assertGreaterEqual(elapsed, 0.22)

    def test_gives_up_after_max_retries(self):
        with Client(self.url, max_retries=1, backoff=0.01) as client:
            with self.assertRaises(MagmaSomError) as caught:
                client.health()
        self.assertEqual(caught.exception.code, "OVERLOADED")
        self.assertEqual(len(self.calls), 2)


if __name__ == "__main__":
    unittest.main()
