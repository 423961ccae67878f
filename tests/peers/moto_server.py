"""moto's server on 127.0.0.1, with the two S3 answers the Rust SDK rejects put right, and
bucket policies that see the transport.

moto 5.2.5 answers GetBucketVersioning and GetBucketNotificationConfiguration with the root elements
`GetBucketVersioningResponse` / `GetBucketNotificationResponse`; S3 (and the SDK's deserializer) use
`VersioningConfiguration` / `NotificationConfiguration`. This wraps moto's WSGI app and renames the
root of exactly those two answers; everything else passes through untouched.

moto evaluates a bucket policy's Deny without its condition: `aws:SecureTransport` is never set,
the `Bool` operator is ignored, and a statement whose condition does not hold counts as a denial.
So a TLS-only policy denies every object request. Here each request's scheme is passed as
`aws:SecureTransport`, `Bool` is compared, and a Deny applies only when its condition holds, as
in S3: plain HTTP is denied, HTTPS is not. Allow statements keep moto's own evaluation.

S3 answers a notification filter rule's name capitalised (`Prefix`, `Suffix`) whatever case it
was written in, and accepts either case on PUT (https://github.com/aws/aws-sdk/issues/389, the
answer of the S3 API to the AWS SDK team); moto echoes the lowercase name and refuses the
capitalised one. Here GET answers `Prefix`/`Suffix` and PUT takes both.

S3 checks every destination of a notification configuration on each PUT and refuses the whole
configuration when one fails: 400 InvalidArgument "Unable to validate the following destination
configurations", naming each failing destination in ArgumentName1, ArgumentValue1, …
(https://repost.aws/knowledge-center/unable-validate-destination-s3); moto stores anything. Here a
Lambda function destination must exist and its resource policy must let s3.amazonaws.com invoke it
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-how-to-event-types-and-destinations.html#supported-notification-destinations).
Queues and topics are not checked: the tests' queues are Snowflake's, in accounts moto does not hold.

S3 sends an event to the queue the destination ARN names, in that ARN's account: Snowpipe's queue
is in Snowflake's account, not the bucket owner's
(https://docs.snowflake.com/en/user-guide/data-load-snowpipe-auto-s3). moto 5.2.5 looks the queue
up in the bucket owner's account, so no notification would reach it; here it is delivered to the
queue's own account (tests/peers/fakesnow_server.py consumes it, as Snowflake does).

moto's CloudWatch Logs filter knows one term or one quoted phrase; `?a ?"b c"` (any of the terms)
counts as match-all. Here it selects the events holding any of them, as CloudWatch does.

Lambda's concurrency answers as AWS gives them. The account's "Concurrent executions" quota is
MOTO_LAMBDA_CONCURRENCY_QUOTA (moto's own variable; 1000, AWS's default, when unset; tests set 10,
the quota of many new accounts). PutFunctionConcurrency keeps min(100, quota) unreserved, as Lambda
does ("You can reserve up to the Unreserved account concurrency value minus 100",
https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html; accounts below 100
are refused with "minimum value of [10]" or "[50]", their whole quota), where moto always says
[100] and enforces nothing unless the variable is set. GetAccountSettings, which moto lacks, answers
the quota and what is left unreserved
(https://docs.aws.amazon.com/lambda/latest/api/API_GetAccountSettings.html, API_AccountLimit.html).

moto's PutFunctionEventInvokeConfig appends a second configuration and GetFunctionEventInvokeConfig
keeps answering the first, so a changed configuration never shows. Here Put overwrites ("If a
configuration already exists for a function, version, or alias, this operation overwrites it. If
you exclude any settings, they are removed.",
https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html) and Update
changes only the settings it names (API_UpdateFunctionEventInvokeConfig.html); LastModified is the
time of that change.

With TLS_PORT and CERT_DIR, the same moto (one state) is also served over HTTPS on TLS_PORT, with
a throwaway CA written to CERT_DIR/ca.pem (clients trust it through SSL_CERT_FILE) and a
certificate for 127.0.0.1 signed by it.

Usage: python moto_server.py PORT [TLS_PORT CERT_DIR]   (binds 127.0.0.1 only)
"""

import datetime as dt
import io
import ipaddress
import json
import os
import re
import shutil
import sys
import threading
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from moto.awslambda import models as lambda_models
from moto.awslambda import urls as lambda_urls
from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.responses import LambdaResponse
from moto.awslambda.models import lambda_backends
from moto.iam import access_control, policy_conditions
from moto.s3 import models as s3_models
from moto.s3 import notifications as s3_notifications
from moto.s3.exceptions import AccessDeniedByLock
from moto.s3.responses import S3Response
from moto.logs import models as logs_models

from moto.server import DomainDispatcherApplication, create_backend_app
from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

import lifeline

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
        if right == b"NotificationConfiguration":
            body = re.sub(rb"<Name>(prefix|suffix)</Name>", lambda m: b"<Name>" + m.group(1).capitalize() + b"</Name>", body)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]

    return wrapped


def accept_capitalised_names(from_body):
    """PUT notification: `Prefix`/`Suffix` are read as moto's `prefix`/`suffix`."""

    def patched(self):
        body = self.body if isinstance(self.body, bytes) else self.body.encode()
        self.body = re.sub(rb"<Name>(Prefix|Suffix)</Name>", lambda m: b"<Name>" + m.group(1).lower() + b"</Name>", body)
        return from_body(self)

    return patched


def lambda_refusal(arn):
    """Why S3 would not notify this function, or None when it would."""
    parts = arn.split(":")
    if len(parts) < 7:
        return "The destination is not a valid Lambda function ARN"
    region, account, name = parts[3], parts[4], parts[6]
    try:
        policy = lambda_backends[account][region].get_policy(name)
    except Exception:
        return f"Not authorized to invoke function [{arn}]: the function does not exist or has no resource policy"
    if "s3.amazonaws.com" not in str(policy):
        return f"Not authorized to invoke function [{arn}]: its resource policy does not allow s3.amazonaws.com"
    return None


def validate_destinations(app):
    def wrapped(environ, start_response):
        keys = {part.split("=", 1)[0] for part in environ.get("QUERY_STRING", "").split("&")}
        if environ.get("REQUEST_METHOD") != "PUT" or "notification" not in keys:
            return app(environ, start_response)
        length = environ.get("CONTENT_LENGTH")
        body = environ["wsgi.input"].read(int(length)) if length else environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        functions = [arn.decode() for arn in re.findall(rb"<CloudFunction>([^<]+)</CloudFunction>", body)]
        refused = [(arn, why) for arn in dict.fromkeys(functions) if (why := lambda_refusal(arn))]
        if not refused:
            return app(environ, start_response)
        named = "".join(
            f"<ArgumentName{n}>{escape(arn)}</ArgumentName{n}><ArgumentValue{n}>{escape(why)}</ArgumentValue{n}>"
            for n, (arn, why) in enumerate(refused, start=1)
        )
        error = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code>'
            f"<Message>Unable to validate the following destination configurations</Message>{named}"
            "<RequestId>flixops-moto</RequestId><HostId>flixops-moto</HostId></Error>"
        ).encode()
        start_response("400 Bad Request", [("Content-Type", "application/xml"), ("Content-Length", str(len(error)))])
        return [error]

    return wrapped


# S3 answers a conditional PUT that races another write to the same key with 409
# ConditionalRequestConflict ("retry the request"), which moto never does
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-requests.html). A test arms it:
# POST /_flixops/s3-conflict?bucket=B&key=K&times=N makes the next N conditional PUTs to B/K answer so.
CONFLICTS = {}
CONFLICTS_LOCK = threading.Lock()


def conditional_conflicts(app):
    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        query = dict(part.split("=", 1) for part in environ.get("QUERY_STRING", "").split("&") if "=" in part)
        if path == "/_flixops/s3-conflict" and environ.get("REQUEST_METHOD") == "POST":
            with CONFLICTS_LOCK:
                CONFLICTS[(query["bucket"], query["key"])] = int(query.get("times", "1"))
            start_response("204 No Content", [])
            return [b""]
        conditional = environ.get("HTTP_IF_MATCH") or environ.get("HTTP_IF_NONE_MATCH")
        if environ.get("REQUEST_METHOD") == "PUT" and conditional:
            bucket, _, key = path.lstrip("/").partition("/")
            with CONFLICTS_LOCK:
                left = CONFLICTS.get((bucket, key), 0)
                if left:
                    CONFLICTS[(bucket, key)] = left - 1
            if left:
                environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                body = (
                    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ConditionalRequestConflict</Code>'
                    b"<Message>A conflicting conditional operation is currently in progress against this resource. "
                    b"Please try again.</Message><RequestId>flixops-moto</RequestId></Error>"
                )
                start_response("409 Conflict", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
                return [body]
        return app(environ, start_response)

    return wrapped


TRANSPORT = threading.local()


def bool_equals(expected, actual):
    expected = expected if isinstance(expected, list) else [expected]
    return str(actual).lower() in [str(e).lower() for e in expected]


def with_transport(is_action_permitted):
    def patched(self, action, resource="*", principal=None, incoming_condition_values=None):
        secure = "true" if getattr(TRANSPORT, "secure", False) else "false"
        values = {"aws:SecureTransport": secure, **(incoming_condition_values or {})}
        return is_action_permitted(self, action, resource, principal, values)

    return patched


def deny_only_when_its_condition_holds(is_action_permitted):
    def patched(self, action, resource="*", principal=None, incoming_condition_values=None):
        statement = self._statement
        if statement.get("Effect") == "Deny" and statement.get("Condition"):
            if not self._check_conditions(incoming_condition_values):
                return access_control.PermissionResult.NEUTRAL
        return is_action_permitted(self, action, resource, principal, incoming_condition_values)

    return patched


def with_any_term(event_filter):
    class AnyTerm:
        def __init__(self, pattern):
            self.terms = None
            if pattern and pattern.lstrip().startswith("?"):
                self.terms = [quoted or word for quoted, word in re.findall(r'\?(?:"([^"]*)"|(\S+))', pattern)]
            self.inner = event_filter(pattern)

        def matches(self, message):
            if self.terms is None:
                return self.inner.matches(message)
            return any(term in message for term in self.terms)

    return AnyTerm


def send_event(account_id, event_name, bucket, key):
    """moto's send_event, with a queue destination reached in the account its ARN names."""
    n = s3_notifications
    config = bucket.notification_configuration
    if config is None:
        return
    for notification in config.cloud_function:
        if notification.matches(event_name, key.name):
            body = n._get_s3_event(event_name, bucket, key, notification.id)
            n._invoke_awslambda(account_id, body, notification.arn, notification.arn.split(":")[3])
    for notification in config.queue:
        if notification.matches(event_name, key.name):
            body = n._get_s3_event(event_name, bucket, key, notification.id)
            _, _, _, region, owner, queue = notification.arn.split(":", 5)
            n._send_sqs_message(owner, body, queue, region)
    for notification in config.topic:
        if notification.matches(event_name, key.name):
            body = n._get_s3_event(event_name, bucket, key, notification.id)
            n._send_sns_message(account_id, body, notification.arn, notification.arn.split(":")[3])
    if config.event_bridge is not None:
        n._send_event_bridge_message(account_id, bucket, event_name, key)


def note_transport(app):
    # In-process test clients cannot trust the throwaway CA without a process-wide setting, so they
    # mark their plain-HTTP requests as a TLS-terminating proxy does (X-Forwarded-Proto: https); the
    # binary reaches the HTTPS port itself. A request with neither is plain HTTP and is denied.
    def wrapped(environ, start_response):
        forwarded = environ.get("HTTP_X_FORWARDED_PROTO", "").lower() == "https"
        TRANSPORT.secure = environ.get("wsgi.url_scheme") == "https" or forwarded
        return app(environ, start_response)

    return wrapped


def concurrency_quota():
    return int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", "1000"))


def reserved_elsewhere(backend, function_name=None):
    """Executions reserved by the account's functions in the region, but `function_name`."""
    return sum(int(fn.reserved_concurrency or 0) for fn in backend.list_functions()
               if fn.function_name != function_name)


def put_function_concurrency(self, function_name, reserved_concurrency):
    fn = self.get_function(function_name)
    quota = concurrency_quota()
    minimum = min(100, quota)
    if quota - reserved_elsewhere(self, fn.function_name) - int(reserved_concurrency) < minimum:
        raise InvalidParameterValueException(
            "Specified ReservedConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{minimum}].")
    fn.reserved_concurrency = reserved_concurrency
    return fn.reserved_concurrency


def get_account_settings(self):
    functions = list(self.backend.list_functions())
    quota = concurrency_quota()
    body = {
        "AccountLimit": {
            "TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": quota, "UnreservedConcurrentExecutions": quota - reserved_elsewhere(self.backend),
        },
        "AccountUsage": {"TotalCodeSize": sum(fn.code_size for fn in functions), "FunctionCount": len(functions)},
    }
    return 200, {}, json.dumps(body)


def put_function_event_invoke_config(self, function_name, config):
    fn = self.get_function(function_name)
    event_config = lambda_models.EventInvokeConfig(fn.function_arn, dt.datetime.now(dt.timezone.utc).timestamp(),
                                                   config)
    fn.event_invoke_config = [event_config]
    return event_config.response()


def update_function_event_invoke_config(self, function_name, config):
    fn = self.get_function(function_name)
    current = fn.event_invoke_config[0].config if fn.event_invoke_config else {}
    return put_function_event_invoke_config(self, function_name, {**current, **config})


def head_elsewhere_is_forbidden(head_bucket):
    """HeadBucket on a bucket another account owns answers 403, as S3 does without a bucket policy
    granting this account (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html:
    "403 Forbidden" when the bucket exists and you lack permission); moto lets every account see
    every bucket."""
    def patched(self, bucket_name):
        if bucket_name not in self.buckets and bucket_name in s3_models.s3_backends.bucket_accounts:
            raise AccessDeniedByLock()
        return head_bucket(self, bucket_name)
    return patched


def patch_lambda():
    backend = lambda_models.LambdaBackend
    backend.put_function_concurrency = put_function_concurrency
    backend.put_function_event_invoke_config = put_function_event_invoke_config
    backend.update_function_event_invoke_config = update_function_event_invoke_config
    LambdaResponse.get_account_settings = get_account_settings
    lambda_urls.url_paths[r"{0}/(?P<api_version>[^/]+)/account-settings/?$"] = LambdaResponse.dispatch


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_certificates(cert_dir):
    """A CA and a server certificate for 127.0.0.1 it signs; returns (cert, key) paths."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("flixops test CA")).issuer_name(name("flixops test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = {file: os.path.join(cert_dir, file) for file in ("ca.pem", "cert.pem", "key.pem")}
    for path, data in ((paths["ca.pem"], ca.public_bytes(pem)), (paths["cert.pem"], leaf.public_bytes(pem)),
                       (paths["key.pem"], key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))):
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    return paths["cert.pem"], paths["key.pem"]


def main():
    port = int(sys.argv[1])
    cert_dir = sys.argv[3] if len(sys.argv) > 3 else None
    # The harness's certificate directory outlives it (kept in a static): remove it here.
    lifeline.hold(on_exit=cert_dir and (lambda: shutil.rmtree(cert_dir, ignore_errors=True)))
    policy_conditions.CONDITION_OPERATIONS["Bool"] = bool_equals
    access_control.IAMPolicy.is_action_permitted = with_transport(access_control.IAMPolicy.is_action_permitted)
    logs_models.EventMessageFilter = with_any_term(logs_models.EventMessageFilter)
    S3Response._notification_config_from_body = accept_capitalised_names(S3Response._notification_config_from_body)
    statement = access_control.IAMPolicyStatement
    statement.is_action_permitted = deny_only_when_its_condition_holds(statement.is_action_permitted)
    patch_lambda()
    s3_notifications.send_event = send_event
    s3_models.S3Backend.head_bucket = head_elsewhere_is_forbidden(s3_models.S3Backend.head_bucket)
    app = note_transport(conditional_conflicts(validate_destinations(fix_roots(DomainDispatcherApplication(create_backend_app)))))
    if cert_dir:
        tls = write_certificates(cert_dir)
        server = make_server("127.0.0.1", int(sys.argv[2]), app, threaded=True,
                             request_handler=MotoRequestHandler, ssl_context=tls)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler).serve_forever()


if __name__ == "__main__":
    main()
