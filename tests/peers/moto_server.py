"""moto's server on 127.0.0.1, with the two S3 answers the Rust SDK rejects put right.

moto 5.2.5 answers GetBucketVersioning and GetBucketNotificationConfiguration with the root elements
`GetBucketVersioningResponse` / `GetBucketNotificationResponse`; S3 (and the SDK's deserializer) use
`VersioningConfiguration` / `NotificationConfiguration`. This wraps moto's WSGI app and renames the
root of exactly those two answers; everything else passes through untouched.

Usage: python moto_server.py PORT   (binds 127.0.0.1 only)
"""

import re
import sys

from moto.server import DomainDispatcherApplication, create_backend_app
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import run_simple

ROOTS = {
    "versioning": (b"GetBucketVersioningResponse", b"VersioningConfiguration"),
    "notification": (b"GetBucketNotificationResponse", b"NotificationConfiguration"),
}


def fix_roots(app):
    def wrapped(environ, start_response):
        query = environ.get("QUERY_STRING", "")
        keys = {part.split("=", 1)[0] for part in query.split("&")}
        fix = None
        if environ.get("REQUEST_METHOD") == "GET":
            fix = next((ROOTS[k] for k in ROOTS if k in keys), None)
        if fix is None:
            return app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(app(environ, capture))
        wrong, right = fix
        body = re.sub(rb"<(/?)" + wrong, rb"<\1" + right, body)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]

    return wrapped


def main():
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, fix_roots(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
