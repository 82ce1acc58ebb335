"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: chat completions, files and batches.

Each test scripts its replies with `server.script = fn(body, n) -> Reply`, where n counts chat
requests from 1. The server counts requests and the most requests ever in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # assistant message content (for 200 chat replies)
    json_body: Any = None  # a whole body instead of a chat completion
    raw: bytes | None = None  # bytes instead of JSON (malformed HTTP body)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    usage: bool = True


def completion(body: dict, content: str, usage: bool = True) -> dict:
    out = {"id": f"chatcmpl-{uuid.uuid4().hex[:8]}", "object": "chat.completion", "created": int(time.time()),
           "model": body.get("model", "m"),
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    if usage:
        out["usage"] = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    return out


class FakeOpenAI:
    def __init__(self, script: Callable[[dict, int], Reply] | None = None):
        self.script = script or (lambda body, n: Reply(content="{}"))
        self.requests = 0
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.batch_line = None  # fn(request line dict) -> output line dict | None (None = expired)
        self.auth_headers: list[str] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- chat ------------------------------------------------------------------------------------
    def chat(self, body: dict) -> Reply:
        with self._lock:
            self.requests += 1
            n = self.requests
            self.bodies.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = self.script(body, n)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            return reply
        finally:
            with self._lock:
                self.in_flight -= 1

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: don't wait for delayed ACKs

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: Any = None, raw: bytes | None = None, headers=None) -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:
                server.auth_headers.append(self.headers.get("Authorization", ""))
                if self.path.endswith("/chat/completions"):
                    body = json.loads(self._body())
                    r = server.chat(body)
                    if r.raw is not None or r.json_body is not None or r.status != 200:
                        err = r.json_body if r.json_body is not None else {"error": {"message": f"status {r.status}"}}
                        return self._send(r.status, err, raw=r.raw, headers=r.headers)
                    return self._send(200, completion(body, r.content or "", r.usage), headers=r.headers)
                if self.path.endswith("/files"):
                    raw = self._body()
                    msg = BytesParser(policy=HTTP).parsebytes(
                        b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw)
                    content = next(p.get_payload(decode=True) for p in msg.iter_parts() if p.get_filename())
                    fid = f"file-{uuid.uuid4().hex[:10]}"
                    server.files[fid] = content
                    return self._send(200, {"id": fid, "object": "file", "bytes": len(content), "created_at": 0,
                                            "filename": "requests.jsonl", "purpose": "batch", "status": "processed"})
                if self.path.endswith("/batches"):
                    req = json.loads(self._body())
                    bid = f"batch_{uuid.uuid4().hex[:10]}"
                    out, err = [], []
                    for line in server.files[req["input_file_id"]].decode().splitlines():
                        result = server.batch_line(json.loads(line))
                        if result is not None:
                            (err if result.get("error") else out).append(json.dumps(result))
                    out_id, err_id = f"file-out-{bid}", f"file-err-{bid}"
                    server.files[out_id] = ("\n".join(out) + "\n").encode()
                    server.files[err_id] = ("\n".join(err) + "\n").encode() if err else b""
                    server.batches[bid] = {"id": bid, "object": "batch", "endpoint": req["endpoint"],
                                           "input_file_id": req["input_file_id"], "completion_window": "24h",
                                           "created_at": 0, "status": "in_progress", "_out": out_id,
                                           "_err": err_id if err else None}
                    return self._send(200, _public(server.batches[bid]))
                return self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_GET(self) -> None:
                if self.path.endswith("/_stats"):
                    return self._send(200, {"requests": server.requests, "max_in_flight": server.max_in_flight})
                if "/files/" in self.path and self.path.endswith("/content"):
                    fid = self.path.split("/files/")[1].split("/")[0]
                    return self._send(200, raw=server.files[fid])
                if "/batches/" in self.path:
                    bid = self.path.rsplit("/", 1)[1]
                    b = server.batches[bid]
                    b.update(status="completed", output_file_id=b["_out"], error_file_id=b["_err"])
                    return self._send(200, _public(b))
                return self._send(404, {"error": {"message": f"no route {self.path}"}})

        return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the default backlog of 5 drops bursts of connects
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):  # a killed client is expected
            super().handle_error(request, client_address)


def _public(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


if __name__ == "__main__":  # a standalone server for benches: fixed latency, valid Rewrite replies
    import argparse
    import sys

    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.5)
    args = ap.parse_args()
    good = json.dumps({"title": "Your cart is waiting", "body": "Check out now!"})
    with FakeOpenAI(lambda body, n: Reply(content=good, delay_s=args.latency)) as fake:
        print(fake.base_url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
