"""What Snowflake does in AWS, done against moto for tests/peers/fakesnow_server.py.

Snowflake's side of a storage integration and of Snowpipe auto-ingest lives in Snowflake's own
AWS account (here 999999999999, as DESC INTEGRATION reports it):

- one SQS queue per account and region, the `notification_channel` SHOW PIPES gives every
  auto-ingest pipe (https://docs.snowflake.com/en/user-guide/data-load-snowpipe-auto-s3): S3 event
  notifications of the customer's bucket arrive there, and Snowflake routes each one to the pipes
  whose stage covers the object;
- reading the bucket: Snowflake's IAM user assumes the integration's role with its external ID,
  which works only while the role's trust policy allows exactly that principal and ID
  (https://docs.snowflake.com/en/user-guide/data-load-s3-config-storage-integration); otherwise
  Snowflake answers "Error assuming AWS_ROLE ...". moto's STS does not evaluate trust policies,
  so the trust is read with IAM GetRole and evaluated here as STS would.

Objects are read over moto's HTTPS endpoint (the bucket's TLS-only policy refuses plain HTTP, as
it refuses Snowflake's requests over it). Each call names the moto account it is made in.
"""

import json
import threading
import urllib.parse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

SNOWFLAKE_ACCOUNT = "999999999999"
IAM_USER_ARN = f"arn:aws:iam::{SNOWFLAKE_ACCOUNT}:user/fake-sf-user"
REGION = "us-east-1"
QUEUE_NAME = "sf-snowpipe-FAKE-queue"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{SNOWFLAKE_ACCOUNT}:{QUEUE_NAME}"
# Snowflake's answer when it cannot assume the role (the page above, "Step 6").
ASSUME_ERROR = ("Error assuming AWS_ROLE. Please verify the role and externalId are configured correctly in your "
                "AWS policy.")


class Refused(Exception):
    """Snowflake cannot read the bucket through the integration."""


class Missing(Exception):
    """The notified object is gone."""


class Aws:
    """Clients on moto, one per service and account, and the calls Snowflake makes."""

    def __init__(self, endpoint, ca_file):
        self.endpoint, self.ca_file = endpoint, ca_file
        self.clients, self.lock, self.queue_url = {}, threading.Lock(), None

    def client(self, service, account):
        with self.lock:
            key = (service, account)
            if key not in self.clients:
                config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})
                client = boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, verify=self.ca_file,
                                      aws_access_key_id="testing", aws_secret_access_key="testing", config=config)
                client.meta.events.register(
                    "before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
                self.clients[key] = client
            return self.clients[key]

    def ensure_queue(self):
        """Snowflake's queue for the account, created with its first auto-ingest pipe."""
        if self.queue_url is None:
            self.queue_url = self.client("sqs", SNOWFLAKE_ACCOUNT).create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
        return self.queue_url

    def receive(self, wait_seconds=1):
        """Up to ten messages: [(receipt handle, [S3 event record, ...])]."""
        if self.queue_url is None:
            return []
        answer = self.client("sqs", SNOWFLAKE_ACCOUNT).receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds)
        out = []
        for message in answer.get("Messages", []):
            try:
                records = json.loads(message["Body"]).get("Records", [])
            except ValueError:
                records = []
            out.append((message["ReceiptHandle"], records))
        return out

    def delete(self, receipts):
        sqs = self.client("sqs", SNOWFLAKE_ACCOUNT)
        for receipt in receipts:
            sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)

    def assume(self, role_arn, external_id):
        """The account to read the bucket in, if the role trusts Snowflake's user with this external ID."""
        parts = (role_arn or "").split(":")
        if len(parts) < 6 or "/" not in parts[5]:
            raise Refused(ASSUME_ERROR)
        account, role = parts[4], parts[5].split("/")[-1]
        try:
            trust = self.client("iam", account).get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        except ClientError:
            raise Refused(ASSUME_ERROR) from None
        if isinstance(trust, str):
            trust = json.loads(urllib.parse.unquote(trust))
        if not trusts(trust, IAM_USER_ARN, external_id):
            raise Refused(ASSUME_ERROR)
        return account

    def get(self, account, bucket, key):
        """(bytes, LastModified, ETag) of an object, read as the integration's role."""
        try:
            got = self.client("s3", account).get_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if e.response["Error"].get("Code") in ("NoSuchKey", "404"):
                raise Missing(f"Remote file 's3://{bucket}/{key}' was not found.") from None
            raise Refused(f"Failed to access remote file: {e.response['Error'].get('Message', e)}") from None
        return got["Body"].read(), got["LastModified"], got["ETag"].strip('"')

    def list(self, account, bucket, prefix):
        """[(key, size, etag, LastModified)] under a prefix."""
        out = []
        try:
            pages = self.client("s3", account).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for o in page.get("Contents", []):
                    out.append((o["Key"], o["Size"], o["ETag"].strip('"'), o["LastModified"]))
        except ClientError as e:
            raise Refused(f"Failed to access remote location: {e.response['Error'].get('Message', e)}") from None
        return out


def listed(value):
    return value if isinstance(value, list) else [value]


def trusts(policy, principal, external_id):
    """True when an Allow statement lets `principal` call sts:AssumeRole with `external_id`."""
    for statement in listed(policy.get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in listed(statement.get("Action", []))]
        if not any(a in ("sts:assumerole", "sts:*", "*") for a in actions):
            continue
        principals = statement.get("Principal", {})
        aws = listed(principals.get("AWS", [])) if isinstance(principals, dict) else listed(principals)
        account_root = f"arn:aws:iam::{principal.split(':')[4]}:root"
        if not any(p in (principal, account_root, "*") for p in aws):
            continue
        wanted = (statement.get("Condition", {}).get("StringEquals", {}) or {}).get("sts:ExternalId")
        if wanted is None or external_id in listed(wanted):
            return True
    return False


def object_of(record):
    """(bucket, key, size, event time) of an S3 event record; keys arrive URL-encoded."""
    s3 = record.get("s3", {})
    key = urllib.parse.unquote_plus(s3.get("object", {}).get("key", ""))
    return s3.get("bucket", {}).get("name", ""), key, s3.get("object", {}).get("size", 0), record.get("eventTime")
