"""A local fake Gen3 commons (fence + guppy + indexd/DRS) for the unmodified SDK.

Serves on ``127.0.0.1`` at an ephemeral port, over HTTP or HTTPS, from a
thread. Emulates MIDRC's private tier: records outside the caller's
``auth_resource_path`` set are filtered out silently. Fault switches make the
next requests fail with a status, hang, drop the connection, or reject the
tokens issued so far as expired. Every request is logged (method, path,
Authorization header, body) so tests can assert on traffic.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fake_gen3.filters import FilterError, field_kinds, matches
from tests.fake_gen3.graphql import BadUserInput, ValidationFailed, execute

SERVICE_FAILURE = {"error": "service failure - try again later"}


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT (the SDK never verifies signatures)."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@dataclass
class Fault:
    """Applied to the next ``times`` requests whose path starts with ``prefix``."""

    kind: str  # "status", "delay", "drop"
    times: int
    prefix: str = "/guppy/"
    status: int = 500
    seconds: float = 0.0


@dataclass
class Blob:
    """A file behind DRS: its name (may contain ``/``) and bytes."""

    name: str
    content: bytes
    package: bool = False


@dataclass
class LoggedRequest:
    method: str
    path: str
    authorization: str | None
    body: bytes


@dataclass
class FakeCommons:
    """State of the fake commons; start it with :meth:`start`.

    Args:
        records: index name → records.
        allowed_resources: ``auth_resource_path`` values any valid token may see
            (``None``: all).
    """

    records: dict[str, list[dict[str, Any]]]
    allowed_resources: set[str] | None = None
    base_url: str = ""
    blobs: dict[str, Blob] = field(default_factory=dict)
    requests: list[LoggedRequest] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    api_keys: dict[str, str] = field(default_factory=dict)
    issued_tokens: list[str] = field(default_factory=list)
    revoked_tokens: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self.kinds = {name: field_kinds(rows) for name, rows in self.records.items()}

    # -- lifecycle -------------------------------------------------------
    def start(self, tls: tuple[Path, Path] | None = None) -> FakeCommons:
        """Serve on 127.0.0.1:<free port>; ``tls`` = (cert, key) for HTTPS."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        self._server = server
        self.base_url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, the form ``gen3 --endpoint`` and DRS want."""
        return self.base_url.split("://", 1)[1]

    # -- credentials -----------------------------------------------------
    def write_credentials(self, path: Path, *, expires_in: float = 86400.0,
                          issuer: str | None = None) -> dict[str, str]:
        """Write a credentials.json for a new API key; returns its content."""
        key_id = uuid.uuid4().hex
        api_key = make_jwt({
            "iss": f"{issuer or self.base_url}/user", "sub": "1", "jti": key_id,
            "pur": "api_key", "exp": int(time.time() + expires_in), "aud": ["fence"],
        })
        self.api_keys[key_id] = api_key
        credentials = {"api_key": api_key, "key_id": key_id}
        path.write_text(json.dumps(credentials))
        return credentials

    def expire_tokens(self) -> None:
        """Reject every access token issued so far with 401 (as if expired)."""
        with self._lock:
            self.revoked_tokens.update(self.issued_tokens)

    def _issue_token(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or self.api_keys.get(str(body.get("key_id"))) != body.get(
            "api_key"
        ):
            return 401, "<html><body>401 Unauthorized: invalid API key</body></html>"
        token = make_jwt({
            "iss": f"{self.base_url}/user", "sub": "1", "jti": uuid.uuid4().hex,
            "pur": "access", "iat": int(time.time()), "exp": int(time.time() + 1200),
            "scope": ["openid", "user", "data"],
        })
        with self._lock:
            self.issued_tokens.append(token)
        return 200, {"access_token": token}

    # -- faults ----------------------------------------------------------
    def fail_next(self, status: int = 500, times: int = 1, prefix: str = "/guppy/") -> None:
        self.faults.append(Fault("status", times, prefix, status=status))

    def slow_next(self, seconds: float, times: int = 1, prefix: str = "/guppy/") -> None:
        self.faults.append(Fault("delay", times, prefix, seconds=seconds))

    def drop_next(self, times: int = 1, prefix: str = "/guppy/") -> None:
        self.faults.append(Fault("drop", times, prefix))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if path.startswith(fault.prefix) and fault.times:
                    fault.times -= 1
                    return fault
        return None

    # -- data ------------------------------------------------------------
    def visible(self, index: str, token: str | None) -> list[dict[str, Any]]:
        """Records ``token`` may see: private tier, so none for unknown tokens."""
        if token is None or token not in self.issued_tokens:
            return []
        rows = self.records.get(index, [])
        if self.allowed_resources is None:
            return rows
        return [r for r in rows if r.get("auth_resource_path") in self.allowed_resources]

    def add_blob(self, object_id: str, name: str, content: bytes, package: bool = False) -> None:
        self.blobs[object_id] = Blob(name, content, package)

    def download(self, body: Any, token: str | None) -> tuple[int, Any]:
        """``POST /guppy/download``: every match, absent keys omitted, dotted fields kept nested."""
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return 400, "Invalid request body"
        index = body["type"]
        if index not in self.records:
            return 400, f'Invalid es type: "{index}"'
        kinds = self.kinds[index]
        fields = body.get("fields")
        if fields:
            bad = [f for f in fields if kinds.get(f) in (None, "nested")]
            if bad:
                return 400, "Invalid fields: " + ", ".join(f'"{f}"' for f in bad)
        try:
            rows = [r for r in self.visible(index, token) if matches(r, body.get("filter"), kinds)]
        except FilterError as error:
            return 400, f"Invalid filter: {error}"
        return 200, [_select(r, fields) for r in rows] if fields else rows

    def graphql(self, body: Any, token: str | None) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return 400, {"errors": [{"message": "Must provide query string."}]}
        try:
            data = execute(body["query"], body.get("variables"),
                           lambda index: self.visible(index, token), self.kinds)
        except ValidationFailed as error:
            return 400, {"errors": [{"message": str(error),
                                     "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}
        except BadUserInput as error:
            return 200, {"errors": [{"message": str(error), "path": [error.type_name],
                                     "extensions": {"code": "BAD_USER_INPUT"}}],
                         "data": {error.type_name: None}}
        return 200, {"data": data}


def _select(record: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in fields:
        parent, _, child = name.partition(".")
        if parent not in record:
            continue
        if not child:
            out[parent] = record[parent]
            continue
        items = record[parent] if isinstance(record[parent], list) else [record[parent]]
        selected = out.setdefault(parent, [{} for _ in items])
        for target, item in zip(selected, items, strict=True):
            if isinstance(item, dict) and child in item:
                target[child] = item[child]
    return out


def _handler(commons: FakeCommons) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _token(self) -> str | None:
            header = self.headers.get("Authorization") or ""
            return header[7:] if header.lower().startswith("bearer ") else None

        def _dispatch(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            commons.requests.append(
                LoggedRequest(method, path, self.headers.get("Authorization"), raw))
            fault = commons._take_fault(path)
            if fault and fault.kind == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if fault and fault.kind == "delay":
                commons._stop.wait(fault.seconds)
            if fault and fault.kind == "status":
                self._send(fault.status, SERVICE_FAILURE if fault.status >= 500 else
                           {"error": "forced"})
                return
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._send(400, {"errors": [{"message": "invalid JSON body"}]})
                return
            token = self._token()
            if (path.startswith("/guppy/") or "/access/" in path) and token in commons.revoked_tokens:
                self._send(401, {"error": "token expired"})
                return
            status, payload = self._route(method, path, body, token)
            if isinstance(payload, Blob):
                self._send_bytes(status, payload.content, "application/octet-stream")
            else:
                self._send(status, payload)

        def _route(self, method: str, path: str, body: Any, token: str | None
                   ) -> tuple[int, Any]:
            if method == "POST" and path in ("/user/credentials/cdis/access_token",
                                             "/user/credentials/api/access_token"):
                return commons._issue_token(body)
            if method == "POST" and path == "/guppy/graphql":
                return commons.graphql(body, token)
            if method == "POST" and path == "/guppy/download":
                return commons.download(body, token)
            if path == "/guppy/_status":
                return 200, {"statusCode": 200, "warnings": None, "indices": list(commons.records)}
            if path == "/wts/external_oidc/":
                return 200, {"providers": []}
            if path.startswith("/mds/aggregate/info/"):
                return 200, {"host": commons.base_url + "/"}
            if path.startswith("/mds/metadata/"):
                blob = commons.blobs.get(path[len("/mds/metadata/"):])
                if blob and blob.package:
                    return 200, {"type": "package"}
                return 404, {"error": "not found"}
            if path.startswith("/ga4gh/drs/v1/objects/"):
                return self._drs(path[len("/ga4gh/drs/v1/objects/"):], token)
            if path.startswith("/blob/"):
                blob = commons.blobs.get(path[len("/blob/"):])
                return (200, blob) if blob else (404, {"error": "no such blob"})
            return 404, {"error": f"no route {method} {path}"}

        def _drs(self, rest: str, token: str | None) -> tuple[int, Any]:
            object_id, _, access = rest.partition("/access/")
            blob = commons.blobs.get(object_id)
            if blob is None:
                return 404, {"msg": f"{object_id} not found", "status_code": 404}
            if access:
                if token not in commons.issued_tokens:
                    return 401, {"msg": "unauthorized", "status_code": 401}
                return 200, {"url": f"{commons.base_url}/blob/{object_id}"}
            return 200, {
                "id": object_id, "name": blob.name, "size": len(blob.content), "form": "object",
                "self_uri": f"drs://{commons.host}/{object_id}",
                "checksums": [{"type": "md5", "checksum": "0" * 32}],
                "access_methods": [{"type": "s3", "access_id": "s3",
                                    "access_url": {"url": f"s3://bucket/{object_id}"}}],
                "created_time": "2024-01-01T00:00:00", "updated_time": None,
            }

        def _send(self, status: int, payload: Any) -> None:
            if isinstance(payload, str):
                self._send_bytes(status, payload.encode(), "text/html; charset=utf-8")
            else:
                self._send_bytes(status, json.dumps(payload).encode(), "application/json")

        def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

    return Handler
