"""A static HTTPS file server on 127.0.0.1, standing in for a release's download host.

Usage: file_server.py PORT DIR CERT KEY. Serves DIR with the certificate moto_server.py made for
127.0.0.1 (clients trust its CA), and exits when the test process that started it is gone.
"""

import functools
import http.server
import ssl
import sys

import lifeline


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def main():
    port, directory, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    lifeline.hold()
    handler = functools.partial(Quiet, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
