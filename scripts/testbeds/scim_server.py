"""Runs scim2-server (PyPI) with a test-control layer in front of it.

The real server answers every SCIM request; this layer only adds what the
connector tests need and the server lacks, per tenant (the first path segment):

  POST /_control/<tenant>/faults     {"status": 429, "count": 2, "retry_after": 1,
                                      "methods": ["POST"]}  the next matching requests
                                      get that status with a SCIM error body
  POST /_control/<tenant>/no-patch   PATCH answers 501 and ServiceProviderConfig
                                      says patch.supported = false
  GET  /_control/<tenant>/requests   every request the tenant received (method, path,
                                      query, If-Match, whether Authorization was set, body)
  POST /_control/<tenant>/latency    {"ms": 200}: every request waits that long (a slow app)

Arguments are those of the `scim2-server` command. SIGTERM stops it cleanly.
"""

import io
import json
import signal
import sys
import threading
import time

from scim2_server.testserver import cli

_lock = threading.Lock()
_faults: dict[str, list[dict]] = {}
_no_patch: set[str] = set()
# Seconds each request to a tenant waits before it is answered (a slow application).
_latency: dict[str, float] = {}
_requests: dict[str, list[dict]] = {}


def _json(start_response, status: str, body, headers=()):
    data = json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/scim+json"), ("Content-Length", str(len(data)))]
        + list(headers),
    )
    return [data]


def _scim_error(start_response, code: int, detail: str, headers=()):
    phrases = {429: "Too Many Requests", 500: "Internal Server Error",
               501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable"}
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(code),
        "detail": detail,
    }
    return _json(start_response, f"{code} {phrases.get(code, 'Error')}", body, headers)


def _control(environ, start_response, parts):
    tenant, action = parts[0], parts[1] if len(parts) > 1 else ""
    method = environ["REQUEST_METHOD"]
    if action == "faults" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        spec = json.loads(environ["wsgi.input"].read(length) or b"{}")
        with _lock:
            _faults.setdefault(tenant, []).append(spec)
        return _json(start_response, "200 OK", {"queued": spec})
    if action == "latency" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        spec = json.loads(environ["wsgi.input"].read(length) or b"{}")
        with _lock:
            _latency[tenant] = float(spec.get("ms", 0)) / 1000.0
        return _json(start_response, "200 OK", {"latency_ms": spec.get("ms", 0)})
    if action == "no-patch" and method == "POST":
        with _lock:
            _no_patch.add(tenant)
        return _json(start_response, "200 OK", {"no_patch": tenant})
    if action == "requests" and method == "GET":
        with _lock:
            seen = list(_requests.get(tenant, []))
        return _json(start_response, "200 OK", seen)
    return _json(start_response, "404 Not Found", {"error": "unknown control action"})


def _next_fault(tenant: str, method: str):
    with _lock:
        queue = _faults.get(tenant, [])
        for spec in queue:
            methods = spec.get("methods")
            if methods and method not in methods:
                continue
            spec["count"] = int(spec.get("count", 1)) - 1
            if spec["count"] <= 0:
                queue.remove(spec)
            return spec
    return None


def with_control(app):
    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["_control"]:
            return _control(environ, start_response, parts[1:])
        tenant = parts[0] if parts else ""
        method = environ["REQUEST_METHOD"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with _lock:
            _requests.setdefault(tenant, []).append({
                "body": body,
                "method": method,
                "path": path,
                "query": environ.get("QUERY_STRING", ""),
                "if_match": environ.get("HTTP_IF_MATCH"),
                "authorization": bool(environ.get("HTTP_AUTHORIZATION")),
                "content_type": environ.get("CONTENT_TYPE"),
            })
        fault = _next_fault(tenant, method)
        if fault is not None:
            code = int(fault.get("status", 503))
            headers = []
            if "retry_after" in fault:
                headers.append(("Retry-After", str(fault["retry_after"])))
            return _scim_error(start_response, code, f"injected {code} for the test", headers)
        with _lock:
            no_patch = tenant in _no_patch
            latency = _latency.get(tenant, 0.0)
        if latency:
            time.sleep(latency)
        if no_patch and method == "PATCH":
            return _scim_error(start_response, 501, "PATCH is not supported by this server")
        if no_patch and path.rstrip("/").endswith("/ServiceProviderConfig"):
            captured = {}

            def capture(status, headers, exc_info=None):
                captured["status"], captured["headers"] = status, headers

            body = json.loads(b"".join(app(environ, capture)) or b"{}")
            body.setdefault("patch", {})["supported"] = False
            headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
            return _json(start_response, captured["status"], body, headers)
        return app(environ, start_response)

    return wrapped


def main():
    original = cli.make_server

    def make_server(host, port, app, **kwargs):
        return original(host, port, with_control(app), **kwargs)

    cli.make_server = make_server
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sys.argv[0] = "scim2-server"
    cli.main()


if __name__ == "__main__":
    main()
