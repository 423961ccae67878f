"""fakesnow's server on 127.0.0.1, adapted for the Rust connector (snowflake-connector-rs).

fakesnow 0.12.1 runs Snowflake SQL on DuckDB. Between it and our client this launcher:

1. Answers query results as the JSON rowset the Rust connector reads (`queryResultFormat: json`:
   every cell a string in Snowflake's wire form) instead of fakesnow's Arrow; the result is taken
   before fakesnow encodes it.
2. Answers the account-level objects flixops deploys, which fakesnow does not have, from a small
   in-memory catalog that behaves as Snowflake's documentation says (IF NOT EXISTS, ALTER … SET,
   SHOW/DESC columns, "does not exist" error 002003): storage integrations, external stages,
   pipes with their execution states, `SYSTEM$PIPE_STATUS`, `SYSTEM$PIPE_FORCE_RESUME`,
   `SYSTEM$VALIDATE_STORAGE_INTEGRATION`, `LIST @stage`, `ALTER FILE FORMAT`, `EXPLAIN`, roles
   and grants (`GRANT`, `REVOKE`, `SHOW GRANTS TO ROLE`, `CURRENT_ROLE()`; a role owns what it
   creates), and the session's warehouse and parameters. The exact SQL text of these statements is
   checked separately by golden files parsed with sqlglot.
   Auto-ingest runs for real, with Snowflake's side in AWS on moto (tests/peers/snowflake_aws.py):
   an auto-ingest pipe's notification channel is a real SQS queue; a background task consumes
   it, routes each S3 event to the pipes whose stage covers the object, reads the object through
   the storage integration (the role's trust decides) and runs the pipe's COPY on it into the
   table. SYSTEM$PIPE_STATUS, COPY_HISTORY, VALIDATE_PIPE_LOAD, LIST and ALTER PIPE … REFRESH
   come from what happened. COPY_HISTORY and DYNAMIC_TABLES() are tables the peer keeps in
   DuckDB, and a query over the table function runs in fakesnow over them. Dynamic tables refresh
   from their SELECT on ALTER DYNAMIC TABLE … REFRESH or their target lag. What only time or
   Snowflake itself produces a test asks for with emulator-only `CALL FAKESNOW_…` statements,
   documented where they are answered (FAKESNOW_PASS_TIME, FAKESNOW_SET_PIPE_STATUS, …).
3. Serves one request at a time: fakesnow's one DuckDB connection per session is not safe for
   concurrent statements.
4. Applies what fakesnow cannot parse: DROP FILE FORMAT (to fakesnow's own file-format catalog),
   DROP DATABASE (the database is detached from DuckDB), DROP DYNAMIC TABLE (the table fakesnow
   created).
5. Lets a session without a current database use fakesnow's helper macros, which fakesnow
   resolves in the session's database (Snowflake needs none for fully qualified names): such a
   session is pointed at the database its statement names, and the macros are also installed in
   DuckDB's default catalog for statements that name none (EXPLAIN of a model before its
   database exists).

Sessions: the login's `roleName` (else FLIXOPS, the emulated user's default role), `warehouse`
and SESSION_PARAMETERS are kept per session token. As on Snowflake, a statement that reads or
writes a table (DML, a SELECT with a FROM) fails without a current warehouse (error 000606,
https://docs.snowflake.com/en/sql-reference/sql/use-warehouse).

Every statement received is appended to the file named by FAKESNOW_STATEMENT_LOG, if set.

Usage: python fakesnow_server.py PORT [AWS_ENDPOINT CA_FILE]   (binds 127.0.0.1 only; AWS_ENDPOINT is
moto over HTTPS and CA_FILE the CA it is signed with; without them no file is ever loaded)
"""

import asyncio
import calendar
import contextlib
import datetime as dt
import gzip
import json
import os
import re
import sys
import tempfile
import traceback
from base64 import b64decode
from decimal import Decimal

import duckdb
import fakesnow.server as fs
from fakesnow import macros
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import lifeline
import snowflake_aws
from snowflake_aws import IAM_USER_ARN, QUEUE_ARN

LOCK = asyncio.Lock()
# Snowflake's side in AWS (tests/peers/snowflake_aws.py), on the moto given on the command line.
AWS = None


# ---- 1. results as Snowflake's JSON rowset -------------------------------------------------------

def wire(value, column):
    """One cell in the JSON result format's string form."""
    if value is None:
        return None
    kind = column.get("type")
    if kind == "boolean":
        return "1" if value else "0"
    if kind == "date":
        return str((value - dt.date(1970, 1, 1)).days)
    if kind in ("timestamp_ntz", "timestamp_ltz", "timestamp_tz"):
        return timestamp(value, kind)
    if kind == "time":
        micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
        return f"{micros // 1_000_000}.{micros % 1_000_000 * 1000:09d}"
    if kind in ("variant", "object", "array"):
        return value if isinstance(value, str) else json.dumps(value)
    if kind == "real":
        return repr(float(value))
    if kind == "fixed" and isinstance(value, (Decimal, float)):
        return format(Decimal(str(value)), "f")
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def timestamp(value, kind):
    if isinstance(value, dt.datetime):
        naive = value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
        seconds = calendar.timegm(naive.timetuple())
        text = f"{seconds}.{naive.microsecond * 1000:09d}"
    else:
        text = str(value)
    if kind == "timestamp_tz":
        offset = value.utcoffset() if isinstance(value, dt.datetime) and value.tzinfo else dt.timedelta(0)
        text += f" {int(offset.total_seconds() // 60) + 1440}"
    return text


def to_sf(table, rowtype):
    return table, rowtype


def to_ipc(pair):
    table, rowtype = pair
    columns = [c.to_pylist() for c in table.columns]
    rows = [[wire(v, rowtype[i]) for i, v in enumerate(row)] for row in zip(*columns)]
    return json.dumps(rows).encode()


fs.to_sf = to_sf
fs.to_ipc = to_ipc


def as_json_rowset(response):
    body = json.loads(response.body)
    data = body.get("data") or {}
    if not body.get("success") and isinstance(body.get("data"), dict):
        # Snowflake names the failed query in its errors too; the Rust connector requires it.
        data.setdefault("queryId", "failed")
    if data.get("queryResultFormat") == "arrow":
        encoded = data.pop("rowsetBase64", "")
        data["rowset"] = json.loads(b64decode(encoded)) if encoded else []
        data["queryResultFormat"] = "json"
    return JSONResponse(body, status_code=response.status_code)


# ---- 2. the account objects fakesnow does not have -----------------------------------------------

# The emulated user's role holds CREATE INTEGRATION, as README's setup has ACCOUNTADMIN grant it.
CATALOG = {"integration": {}, "stage": {}, "pipe": {}, "dynamic": {}, "lost": {},
           "grants": [{"privilege": "CREATE INTEGRATION", "on": "ACCOUNT", "name": "FAKE", "role": "FLIXOPS"}],
           "refresh_error": None}
SESSIONS = {}
NAME = r'((?:"[^"]+"\.)*"[^"]+")'
# A name as statements write it: "QUOTED" or plain parts, dotted.
ANY_NAME = r'((?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))*)'
ACCOUNT = "FAKE"
DEFAULT_ROLE = "FLIXOPS"
STALE_AFTER = dt.timedelta(days=14)


def now():
    return dt.datetime.now(dt.timezone.utc)


def iso(at):
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def unquote(name):
    return ".".join(part.strip('"') for part in re.findall(r'"[^"]+"', name))


def unquote_all(name):
    """`"DB"."RAW"."T"` and `DB.RAW.T` name the same table."""
    return ".".join(part.strip('"') for part in re.findall(r'"[^"]+"|[^.]+', name))


def resolve(name):
    """A name as Snowflake resolves it: quoted parts as written, plain parts in upper case."""
    return ".".join(p[1:-1] if p.startswith('"') else p.upper() for p in re.findall(r'"[^"]+"|[^.]+', name.strip()))


def properties(text):
    """`KEY = value` pairs: 'strings', ( 'lists' ), "identifiers", (nested = options), words."""
    found = {}
    pattern = r"(\w+)\s*=\s*('(?:[^']|'')*'|\([^)]*\)|\"[^\"]+\"|[\w.$]+)"
    for key, value in re.findall(pattern, text):
        found[key.upper()] = value
    return found


def text_of(value):
    if value.startswith("("):
        return ",".join(v.strip().strip("'") for v in value[1:-1].split(",") if v.strip())
    return value.strip("'").strip('"')


def error(message, code="002003"):
    return {"error": (code, message)}


def rows(names, values):
    return {"columns": names, "rows": values}


def status(message):
    return rows(["status"], [[message]])


def own(kind, name, session):
    """The role that creates an object owns it (SHOW GRANTS lists OWNERSHIP)."""
    if not any(g["privilege"] == "OWNERSHIP" and g["on"] == kind and g["name"] == name for g in CATALOG["grants"]):
        CATALOG["grants"].append({"privilege": "OWNERSHIP", "on": kind, "name": name, "role": session["role"]})


def holds(role, privilege, kind):
    """True when `role`, or a role granted to it, holds `privilege` on an object of `kind`."""
    seen, queue = {role}, [role]
    while queue:
        current = queue.pop()
        for g in CATALOG["grants"]:
            if g["role"] != current:
                continue
            if g["privilege"] == privilege and g["on"] == kind:
                return True
            if g["on"] == "ROLE" and g["name"] not in seen:
                seen.add(g["name"])
                queue.append(g["name"])
    return False


def integration_statement(sql, session):
    if m := re.match(r"CREATE\s+(OR\s+REPLACE\s+)?STORAGE\s+INTEGRATION\s+(IF\s+NOT\s+EXISTS\s+)?" + NAME + r"(.*)$", sql, re.S | re.I):
        name = unquote(m[3])
        # https://docs.snowflake.com/en/sql-reference/sql/create-storage-integration#access-control-requirements
        if session["role"] != "ACCOUNTADMIN" and not holds(session["role"], "CREATE INTEGRATION", "ACCOUNT"):
            return error(f"SQL access control error:\nInsufficient privileges to operate on account '{ACCOUNT}'",
                         "003001")
        if name in CATALOG["integration"] and not m[1]:
            if m[2]:
                return status(f"{name} already exists, statement succeeded.")
            return error(f"SQL compilation error:\nObject '{name}' already exists.", "002002")
        props = {k: text_of(v) for k, v in properties(m[4]).items()}
        CATALOG["integration"][name] = props
        own("INTEGRATION", name, session)
        return status(f"Integration {name} successfully created.")
    if m := re.match(r"ALTER\s+STORAGE\s+INTEGRATION\s+(IF\s+EXISTS\s+)?" + NAME + r"\s+SET\s+(.*)$", sql, re.S | re.I):
        name = unquote(m[2])
        if name not in CATALOG["integration"]:
            return error(f"SQL compilation error:\nIntegration '{name}' does not exist or not authorized.")
        props = properties(m[3])
        # https://docs.snowflake.com/en/sql-reference/sql/alter-storage-integration: the external ID
        # is an option of STORAGE_AWS_ROLE_ARN in cloudProviderParams, never set alone.
        if "STORAGE_AWS_EXTERNAL_ID" in props and "STORAGE_AWS_ROLE_ARN" not in props:
            return error("SQL compilation error:\nsyntax error: STORAGE_AWS_EXTERNAL_ID needs STORAGE_AWS_ROLE_ARN",
                         "001003")
        CATALOG["integration"][name].update({k: text_of(v) for k, v in props.items()})
        return status("Statement executed successfully.")
    if m := re.match(r"(?:DESC|DESCRIBE)\s+(?:STORAGE\s+)?INTEGRATION\s+" + NAME + r"\s*$", sql, re.I):
        name = unquote(m[1])
        props = CATALOG["integration"].get(name)
        if props is None:
            return error(f"SQL compilation error:\nIntegration '{name}' does not exist or not authorized.")
        listed = [
            ("ENABLED", "Boolean", props.get("ENABLED", "TRUE").lower()),
            ("STORAGE_PROVIDER", "String", props.get("STORAGE_PROVIDER", "")),
            ("STORAGE_ALLOWED_LOCATIONS", "List", props.get("STORAGE_ALLOWED_LOCATIONS", "")),
            ("STORAGE_BLOCKED_LOCATIONS", "List", props.get("STORAGE_BLOCKED_LOCATIONS", "")),
            ("STORAGE_AWS_IAM_USER_ARN", "String", IAM_USER_ARN),
            ("STORAGE_AWS_ROLE_ARN", "String", props.get("STORAGE_AWS_ROLE_ARN", "")),
            ("STORAGE_AWS_EXTERNAL_ID", "String", props.get("STORAGE_AWS_EXTERNAL_ID", "GENERATED_ID")),
            ("COMMENT", "String", props.get("COMMENT", "")),
        ]
        return rows(["property", "property_type", "property_value", "property_default"], [[k, t, v, ""] for k, t, v in listed])
    if m := re.match(r"DROP\s+(?:STORAGE\s+)?INTEGRATION\s+(IF\s+EXISTS\s+)?" + NAME + r"\s*$", sql, re.I):
        return drop("integration", unquote(m[2]), m[1])
    if m := re.match(r"SELECT\s+SYSTEM\$VALIDATE_STORAGE_INTEGRATION\(\s*'([^']+)'", sql, re.I):
        name = m[1].strip('"')
        if name not in CATALOG["integration"]:
            return error(f"SQL compilation error:\nIntegration '{name}' does not exist or not authorized.")
        answer = {"status": "success", "actions": {"READ": {"status": "success"}, "LIST": {"status": "success"}}}
        return rows(["RESULT"], [[json.dumps(answer)]])
    return None


def drop(kind, name, if_exists):
    if name in CATALOG[kind]:
        del CATALOG[kind][name]
        return status(f"{name.split('.')[-1]} successfully dropped.")
    if if_exists:
        return status("Drop statement executed successfully (object already dropped).")
    return error(f"SQL compilation error:\nObject '{name}' does not exist or not authorized.")


def show(kind, pattern, scope):
    like = re.compile("^" + re.escape(pattern).replace("%", ".*").replace("_", ".") + "$", re.I) if pattern else None
    prefix = unquote(scope) + "." if scope else ""
    found = []
    for name, obj in CATALOG[kind].items():
        if name.startswith(prefix) and (like is None or like.match(name.split(".")[-1])):
            found.append((name, obj))
    return found


def stop_pipes(uses, name, state):
    """Stops every pipe whose COPY uses `name` (its stage, or its file format), as Snowflake does:
    https://docs.snowflake.com/en/user-guide/data-load-snowpipe-ts#label-snowpipe-ts-execution-states."""
    for pipe in CATALOG["pipe"].values():
        if uses(pipe["definition"]) == name:
            pipe["state"] = state


def stage_of(definition):
    m = re.search(r"@" + ANY_NAME, definition)
    return unquote_all(m[1]) if m else None


def format_of(definition):
    m = re.search(r"FORMAT_NAME\s*=\s*'([^']+)'", definition, re.I)
    return unquote_all(m[1]) if m else None


def stage_statement(sql, session):
    if m := re.match(r"CREATE\s+(OR\s+REPLACE\s+)?STAGE\s+(IF\s+NOT\s+EXISTS\s+)?" + NAME + r"(.*)$", sql, re.S | re.I):
        name = unquote(m[3])
        if name in CATALOG["stage"] and not m[1]:
            if m[2]:
                return status(f"{name} already exists, statement succeeded.")
            return error(f"SQL compilation error:\nObject '{name}' already exists.", "002002")
        if name in CATALOG["stage"]:
            stop_pipes(stage_of, name, "STOPPED_STAGE_DROPPED")
        CATALOG["stage"][name] = {k: text_of(v) for k, v in properties(m[4]).items()}
        return status(f"Stage area {name.split('.')[-1]} successfully created.")
    if m := re.match(r"ALTER\s+STAGE\s+(IF\s+EXISTS\s+)?" + NAME + r"\s+SET\s+(.*)$", sql, re.S | re.I):
        name = unquote(m[2])
        if name not in CATALOG["stage"]:
            return error(f"SQL compilation error:\nStage '{name}' does not exist or not authorized.")
        changes = {k: text_of(v) for k, v in properties(m[3]).items()}
        # A new URL stops every pipe on the stage until it is recreated; the same URL again, or a
        # new integration, does not (the pipe uses the stage's current settings for each load).
        if "URL" in changes and changes["URL"] != CATALOG["stage"][name].get("URL"):
            stop_pipes(stage_of, name, "STOPPED_STAGE_ALTERED")
        CATALOG["stage"][name].update(changes)
        return status("Statement executed successfully.")
    if m := re.match(r"SHOW\s+STAGES(?:\s+LIKE\s+'([^']*)')?(?:\s+IN\s+SCHEMA\s+" + NAME + r")?\s*$", sql, re.I):
        columns = ["created_on", "name", "database_name", "schema_name", "url", "has_credentials",
                   "has_encryption_key", "owner", "comment", "region", "type", "cloud",
                   "notification_channel", "storage_integration", "endpoint", "owner_role_type", "directory_enabled"]
        out = []
        for name, s in show("stage", m[1], m[2]):
            db, schema, short = name.split(".")
            out.append(["0", short, db, schema, s.get("URL", ""), "N", "N", "SYSADMIN", "", "us-east-1",
                        "EXTERNAL", "AWS", None, s.get("STORAGE_INTEGRATION"), None, "ROLE", "N"])
        return rows(columns, out)
    if m := re.match(r"(?:LIST|LS)\s+'?@" + NAME + r"(/[^'\s]*)?", sql, re.I):
        # The stage's files under the path, read through the integration's role (LIST,
        # https://docs.snowflake.com/en/sql-reference/sql/list).
        if unquote(m[1]) not in CATALOG["stage"]:
            return error(f"SQL compilation error:\nStage '{unquote(m[1])}' does not exist or not authorized.")
        try:
            account, bucket, prefix, _ = stage_read(unquote(m[1]))
            found = AWS.list(account, bucket, prefix + (m[2] or "/")[1:])
        except snowflake_aws.Refused as e:
            return error(str(e), "091003")
        listed = [[f"s3://{bucket}/{key}", str(size), etag, modified.strftime("%a, %d %b %Y %H:%M:%S GMT")]
                  for key, size, etag, modified in found]
        return rows(["name", "size", "md5", "last_modified"], listed)
    if m := re.match(r"DROP\s+STAGE\s+(IF\s+EXISTS\s+)?" + NAME + r"\s*$", sql, re.I):
        stop_pipes(stage_of, unquote(m[2]), "STOPPED_STAGE_DROPPED")
        return drop("stage", unquote(m[2]), m[1])
    return None


def new_pipe(definition, props):
    return {"definition": definition, "paused": False, "paused_at": None, "state": None, "queue": [], "drain": None,
            "refreshed": [], "times": {}, "error": None, "stalled_here": False, "loaded": {}, **props}


def pipe_state(pipe):
    return pipe["state"] or ("PAUSED" if pipe["paused"] else "RUNNING")


def auto_ingest(pipe):
    return pipe.get("AUTO_INGEST", "").upper() == "TRUE"


def pipe_status(name, pipe):
    """SYSTEM$PIPE_STATUS (https://docs.snowflake.com/en/sql-reference/functions/system_pipe_status),
    from what the pipe really did: its queue of notified files, its loads, the notifications it got.
    A pipe throttled to `drainPerRead` loads that many queued files per status read instead of as
    they arrive; a paused one loads nothing more
    (https://docs.snowflake.com/en/user-guide/data-load-snowpipe-manage#label-snowpipe-manage-pause-resume)."""
    if pipe_state(pipe) == "RUNNING" and pipe["drain"] is not None:
        for _ in range(min(pipe["drain"], len(pipe["queue"]))):
            load_next(name, pipe)
    answer = {"executionState": pipe_state(pipe), "pendingFileCount": len(pipe["queue"]),
              "notificationChannelName": QUEUE_ARN, "numOutstandingMessagesOnChannel": 0,
              **{key: iso(at) for key, at in pipe["times"].items()}}
    if pipe["queue"]:
        answer["oldestFileTimestamp"] = iso(pipe["queue"][0]["queued_at"])
    if pipe["error"]:
        answer["error"] = pipe["error"]
    return answer


def stale(pipe):
    return pipe["paused"] and pipe["paused_at"] is not None and now() - pipe["paused_at"] > STALE_AFTER


def set_pipe_status(pipe, wanted):
    """`CALL FAKESNOW_SET_PIPE_STATUS('<pipe>', '<json>')`: what only Snowflake itself does to a pipe.
    Keys: executionState (a state Snowflake puts a pipe in: STOPPED_…, STALLED_…; PAUSED and RUNNING
    are ALTER PIPE's), error, and drainPerRead (load that many queued files per SYSTEM$PIPE_STATUS
    read instead of as they arrive; null: as they arrive), for a test that needs files to wait."""
    if (state := wanted.get("executionState")) is not None:
        pipe["state"] = None if state in ("PAUSED", "RUNNING") else state
        pipe["paused"] = state == "PAUSED"
        pipe["paused_at"] = now() if state == "PAUSED" else None
        pipe["stalled_here"] = False
    if "drainPerRead" in wanted:
        pipe["drain"] = wanted["drainPerRead"]
    pipe["error"] = wanted.get("error", pipe["error"])


def pipe_statement(sql, session):
    if m := re.match(r"CREATE\s+(OR\s+REPLACE\s+)?PIPE\s+(IF\s+NOT\s+EXISTS\s+)?" + NAME + r"(.*?)\bAS\s+(COPY\s.*)$", sql, re.S | re.I):
        name = unquote(m[3])
        if name in CATALOG["pipe"] and not m[1]:
            if m[2]:
                return status(f"{name} already exists, statement succeeded.")
            return error(f"SQL compilation error:\nObject '{name}' already exists.", "002002")
        if old := CATALOG["pipe"].get(name):
            # The queue and load metadata go with the old pipe: a file still queued is not loaded.
            CATALOG["lost"][name] = CATALOG["lost"].get(name, 0) + len(old["queue"])
        props = {k: text_of(v) for k, v in properties(m[4]).items()}
        CATALOG["pipe"][name] = new_pipe(m[5].strip(), props)
        if auto_ingest(CATALOG["pipe"][name]) and AWS is not None:
            AWS.ensure_queue()
        own("PIPE", name, session)
        return status(f"Pipe {name.split('.')[-1]} successfully created.")
    if m := re.match(r"ALTER\s+PIPE\s+(IF\s+EXISTS\s+)?" + NAME + r"\s+(SET|UNSET|REFRESH)\b(.*)$", sql, re.S | re.I):
        name = unquote(m[2])
        pipe = CATALOG["pipe"].get(name)
        if pipe is None:
            return error(f"SQL compilation error:\nPipe '{name}' does not exist or not authorized.")
        if m[3].upper() == "REFRESH":
            if failure := CATALOG["refresh_error"]:
                CATALOG["refresh_error"] = None
                return error(failure, "000000")
            pipe["refreshed"].append(m[4].strip())
            return refresh_pipe(name, pipe, m[4])
        # https://docs.snowflake.com/en/sql-reference/sql/alter-pipe: SET/UNSET COMMENT.
        if m[3].upper() == "UNSET":
            if re.fullmatch(r"\s*COMMENT\s*", m[4], re.I):
                pipe.pop("COMMENT", None)
            return status("Statement executed successfully.")
        if "COMMENT" in (props := properties(m[4])):
            pipe["COMMENT"] = text_of(props["COMMENT"]).replace("''", "'")
        paused = props.get("PIPE_EXECUTION_PAUSED", "").upper()
        if paused == "TRUE" and not pipe["paused"]:
            pipe["paused"], pipe["paused_at"] = True, now()
        if paused == "FALSE":
            # https://docs.snowflake.com/en/user-guide/data-load-snowpipe-manage#label-snowpipe-resume-stale-pipe:
            # setting PIPE_EXECUTION_PAUSED = FALSE does not resume a pipe paused for over 14 days.
            if stale(pipe):
                return error(f"Pipe '{name}' has been paused for more than 14 days and is stale; resume it with "
                             f"SYSTEM$PIPE_FORCE_RESUME('{name}', 'staleness_check_override').", "091091")
            pipe["paused"], pipe["paused_at"] = False, None
        return status("Statement executed successfully.")
    if m := re.match(r"SHOW\s+PIPES(?:\s+LIKE\s+'([^']*)')?(?:\s+IN\s+SCHEMA\s+" + NAME + r")?\s*$", sql, re.I):
        columns = ["created_on", "name", "database_name", "schema_name", "definition", "owner",
                   "notification_channel", "comment", "integration", "pattern", "error_integration",
                   "owner_role_type", "invalid_reason", "kind"]
        out = []
        for name, p in show("pipe", m[1], m[2]):
            db, schema, short = name.split(".")
            channel = QUEUE_ARN if auto_ingest(p) else None
            out.append(["0", short, db, schema, p["definition"], "SYSADMIN", channel, p.get("COMMENT", ""), None, None, None,
                        "ROLE", None, "STAGE"])
        return rows(columns, out)
    if m := re.match(r"SELECT\s+SYSTEM\$PIPE_STATUS\(\s*'([^']+)'\s*\)(?:\s+AS\s+(\w+))?", sql, re.I):
        name = unquote_all(m[1])
        pipe = CATALOG["pipe"].get(name)
        if pipe is None:
            return error(f"SQL compilation error:\nPipe '{name}' does not exist or not authorized.")
        return rows([m[2] or "SYSTEM$PIPE_STATUS"], [[json.dumps(pipe_status(name, pipe))]])
    if m := re.match(r"SELECT\s+SYSTEM\$PIPE_FORCE_RESUME\(\s*'([^']+)'\s*(?:,\s*'([^']*)'\s*)?\)", sql, re.I):
        # https://docs.snowflake.com/en/sql-reference/functions/system_pipe_force_resume
        name = unquote_all(m[1])
        pipe = CATALOG["pipe"].get(name)
        if pipe is None:
            return error(f"SQL compilation error:\nPipe '{name}' does not exist or not authorized.")
        if stale(pipe) and "STALENESS_CHECK_OVERRIDE" not in (m[2] or "").upper():
            return error(f"Pipe '{name}' is stale; pass 'staleness_check_override' to resume it.", "091091")
        pipe["paused"], pipe["paused_at"] = False, None
        return rows(["SYSTEM$PIPE_FORCE_RESUME"], [["Pipe execution resumed"]])
    if m := re.match(r"CALL\s+FAKESNOW_SET_PIPE_STATUS\(\s*'([^']+)'\s*,\s*'([^']*)'\s*\)", sql, re.I):
        pipe = CATALOG["pipe"].get(unquote_all(m[1]))
        if pipe is None:
            return error(f"Pipe '{m[1]}' does not exist.")
        set_pipe_status(pipe, json.loads(m[2]))
        return status("Pipe status set.")
    if m := re.match(r"CALL\s+FAKESNOW_FAIL_NEXT_REFRESH\(\s*'([^']*)'\s*\)", sql, re.I):
        # The next ALTER PIPE … REFRESH fails with this message: a deploy stopped between the
        # replace and the refresh (a crash, a lost connection).
        CATALOG["refresh_error"] = m[1]
        return status("Refresh failure set.")
    if m := re.match(r"CALL\s+FAKESNOW_LOST_FILES\(\s*'([^']+)'\s*\)", sql, re.I):
        # Files a replaced pipe still had queued: a test proves the safe replace lost none.
        return rows(["LOST"], [[str(CATALOG["lost"].get(unquote_all(m[1]), 0))]])
    if m := re.match(r"CALL\s+FAKESNOW_PASS_TIME\(\s*'([^']+)'\s*,\s*(\d+)\s*\)", sql, re.I):
        pass_time(resolve(m[1]), dt.timedelta(minutes=int(m[2])))
        return status("Time passed.")
    if m := re.match(r"DROP\s+PIPE\s+(IF\s+EXISTS\s+)?" + NAME + r"\s*$", sql, re.I):
        return drop("pipe", unquote(m[2]), m[1])
    return None


# ---- auto-ingest: notifications → the pipe's queue → its COPY → the table -------------------------

PEER_SCHEMA = "_fs_global.flixops_peer"
COPY_HISTORY_COLUMNS = [
    ("FILE_NAME", "VARCHAR"), ("STAGE_LOCATION", "VARCHAR"), ("LAST_LOAD_TIME", "TIMESTAMPTZ"),
    ("ROW_COUNT", "BIGINT"), ("ROW_PARSED", "BIGINT"), ("FILE_SIZE", "BIGINT"), ("FIRST_ERROR_MESSAGE", "VARCHAR"),
    ("FIRST_ERROR_LINE_NUMBER", "BIGINT"), ("FIRST_ERROR_CHARACTER_POS", "BIGINT"),
    ("FIRST_ERROR_COLUMN_NAME", "VARCHAR"), ("ERROR_COUNT", "BIGINT"), ("ERROR_LIMIT", "BIGINT"),
    ("STATUS", "VARCHAR"), ("TABLE_CATALOG_NAME", "VARCHAR"), ("TABLE_SCHEMA_NAME", "VARCHAR"),
    ("TABLE_NAME", "VARCHAR"), ("PIPE_CATALOG_NAME", "VARCHAR"), ("PIPE_SCHEMA_NAME", "VARCHAR"),
    ("PIPE_NAME", "VARCHAR"), ("PIPE_RECEIVED_TIME", "TIMESTAMPTZ"), ("FIRST_COMMIT_TIME", "TIMESTAMPTZ"),
]
DYNAMIC_TABLE_COLUMNS = [
    ("NAME", "VARCHAR"), ("SCHEMA_NAME", "VARCHAR"), ("DATABASE_NAME", "VARCHAR"), ("QUALIFIED_NAME", "VARCHAR"),
    ("TARGET_LAG_SEC", "BIGINT"), ("SCHEDULING_STATE", "VARCHAR"), ("LATEST_DATA_TIMESTAMP", "TIMESTAMPTZ"),
    ("LAST_COMPLETED_REFRESH_STATE", "VARCHAR"), ("LAST_COMPLETED_REFRESH_STATE_MESSAGE", "VARCHAR"),
]


def peer_tables():
    """The tables behind COPY_HISTORY and DYNAMIC_TABLES(): flixops's queries over them run in
    fakesnow, so their WHERE, DATEADD and DATEDIFF are computed, not answered here."""
    duck = fs.shared_fs.duck_conn.cursor()
    duck.execute(f"CREATE SCHEMA IF NOT EXISTS {PEER_SCHEMA}")
    for table, columns in (("copy_history", COPY_HISTORY_COLUMNS), ("dynamic_tables", DYNAMIC_TABLE_COLUMNS)):
        duck.execute(f"CREATE TABLE IF NOT EXISTS {PEER_SCHEMA}.{table} ({', '.join(f'{c} {t}' for c, t in columns)})")


def duck():
    return fs.shared_fs.duck_conn.cursor()


def record_load(table, pipe_name, item, status_text, rows_loaded, rows_parsed, first_error, at):
    db, schema, short = table.split(".")
    pdb, pschema, pshort = pipe_name.split(".")
    values = {"FILE_NAME": item["key"], "STAGE_LOCATION": item["stage_url"], "LAST_LOAD_TIME": at,
              "ROW_COUNT": rows_loaded, "ROW_PARSED": rows_parsed, "FILE_SIZE": item["size"],
              "FIRST_ERROR_MESSAGE": first_error, "FIRST_ERROR_LINE_NUMBER": None, "FIRST_ERROR_CHARACTER_POS": None,
              "FIRST_ERROR_COLUMN_NAME": None, "ERROR_COUNT": 1 if first_error else 0, "ERROR_LIMIT": 1,
              "STATUS": status_text, "TABLE_CATALOG_NAME": db, "TABLE_SCHEMA_NAME": schema, "TABLE_NAME": short,
              "PIPE_CATALOG_NAME": pdb, "PIPE_SCHEMA_NAME": pschema, "PIPE_NAME": pshort,
              "PIPE_RECEIVED_TIME": item["queued_at"], "FIRST_COMMIT_TIME": at if rows_loaded else None}
    columns = [c for c, _ in COPY_HISTORY_COLUMNS]
    duck().execute(f"INSERT INTO {PEER_SCHEMA}.copy_history VALUES ({', '.join('?' for _ in columns)})",
                   [values[c] for c in columns])


class CopyError(Exception):
    """The pipe's COPY cannot load the file (its first error, as COPY_HISTORY records it)."""


COPY = re.compile(r"COPY\s+INTO\s+" + ANY_NAME + r"\s*(?:\(([^)]*)\))?\s+FROM\s+(?:\(\s*SELECT\s+(.*?)\s+FROM\s+@"
                  + ANY_NAME + r"\s*\)|@" + ANY_NAME + r")\s*(.*)$", re.S | re.I)


def parse_copy(definition):
    """(table, columns, select expressions or None, stage, format name) of a pipe's COPY."""
    m = COPY.match(definition)
    if not m:
        raise CopyError(f"SQL compilation error: cannot run the pipe's COPY: {definition[:80]}")
    columns = [c.strip().strip('"').upper() for c in m[2].split(",")] if m[2] else None
    select = [e.strip() for e in split_top(m[3])] if m[3] else None
    fmt = re.search(r"FORMAT_NAME\s*=\s*'([^']+)'", m[6] or "", re.I)
    return unquote_all(m[1]), columns, select, unquote_all(m[4] or m[5]), unquote_all(fmt[1]) if fmt else None


def split_top(text):
    """`a, f(b, c), d` → ['a', 'f(b, c)', 'd']: commas outside parentheses and quotes."""
    parts, depth, current, quoted = [], 0, "", False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        if not quoted and ch in "(":
            depth += 1
        if not quoted and ch in ")":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    return parts + [current] if current.strip() else parts


def logical_types(format_name):
    """USE_LOGICAL_TYPE of a parquet file format: without it Snowflake loads a timestamp as its
    physical integer (https://docs.snowflake.com/en/sql-reference/sql/create-file-format)."""
    if not format_name:
        return False
    db, schema, name = format_name.split(".")
    found = duck().execute(f"SELECT options FROM {FILE_FORMATS} WHERE database_name = ? AND schema_name = ? AND "
                           "name = ?", [db, schema, name]).fetchone()
    options = json.loads(found[0]) if found else {}
    return str(options.get("USE_LOGICAL_TYPE", "")).upper() == "TRUE"


def select_of(expression, path, key, modified, started, logical):
    """One expression of the pipe's SELECT over `read_parquet(path, file_row_number = true)`."""
    word = expression.upper()
    if word == "$1":
        columns = duck().execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
        fields = [f'"{c}" := ' + (f'epoch_us("{c}")' if "TIMESTAMP" in t and not logical else f'"{c}"')
                  for c, t, *_ in columns]
        return f"to_json(struct_pack({', '.join(fields)}))"
    if word == "METADATA$FILENAME":
        return "'" + key.replace("'", "''") + "'"
    if word == "METADATA$FILE_ROW_NUMBER":
        return "file_row_number + 1"
    if word == "METADATA$FILE_LAST_MODIFIED":
        return f"TIMESTAMP '{modified.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat()}'"
    if word == "METADATA$START_SCAN_TIME":
        return f"TIMESTAMPTZ '{started.isoformat()}'"
    raise CopyError(f"SQL compilation error: the emulator cannot run `{expression}` of the pipe's COPY")


def copy_file(pipe, item, body, modified, started):
    """Runs the pipe's COPY for one file; returns the rows loaded. Snowpipe's ON_ERROR is SKIP_FILE
    (https://docs.snowflake.com/en/sql-reference/sql/create-pipe): a file that fails loads nothing."""
    table, columns, select, _, format_name = parse_copy(pipe["definition"])
    if select is None:
        raise CopyError("SQL compilation error:\nPARQUET file format can produce one and only one column of type "
                        "variant, object, or array. Load data into separate columns using the MATCH_BY_COLUMN_NAME "
                        "copy option or copy with transformation.")
    with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
        f.write(body)
        f.flush()
        try:
            logical = logical_types(format_name)
            exprs = [select_of(e, f.name, item["key"], modified, started, logical) for e in select]
            target = ".".join(f'"{p}"' for p in table.split("."))
            listed = f" ({', '.join(chr(34) + c + chr(34) for c in columns)})" if columns else ""
            cursor = duck()
            cursor.execute(f"INSERT INTO {target}{listed} SELECT {', '.join(exprs)} "
                           f"FROM read_parquet('{f.name}', file_row_number = true)")
            return cursor.fetchone()[0]
        except duckdb.Error as e:
            first = str(e).split("\n")[0].replace(f.name, item["key"])
            raise CopyError(f"Error parsing the parquet file: {first}" if "parquet" in first.lower() else first)


def stage_read(stage_name):
    """(account, bucket, prefix, url) to read a stage through its integration, or raises Refused."""
    stage = CATALOG["stage"].get(stage_name)
    if stage is None:
        raise snowflake_aws.Refused(f"Stage '{stage_name}' does not exist or not authorized.")
    url = stage.get("URL", "")
    integration = CATALOG["integration"].get((stage.get("STORAGE_INTEGRATION") or "").strip('"'))
    if integration is None or AWS is None:
        raise snowflake_aws.Refused(f"Stage '{stage_name}' has no storage integration Snowflake can use.")
    account = AWS.assume(integration.get("STORAGE_AWS_ROLE_ARN"), integration.get("STORAGE_AWS_EXTERNAL_ID"))
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return account, bucket, prefix, url


def load_next(name, pipe):
    """Loads the pipe's oldest queued file. A stage Snowflake cannot read stalls the pipe, the file
    stays queued and the state clears once a read works again (STALLED_STAGE_PERMISSION_ERROR,
    https://docs.snowflake.com/en/user-guide/data-load-snowpipe-ts#label-snowpipe-ts-execution-states)."""
    item = pipe["queue"][0]
    try:
        table, _, _, stage, _ = parse_copy(pipe["definition"])
        account, bucket, _, _ = stage_read(stage)
        body, modified, etag = AWS.get(account, item["bucket"], item["key"])
    except snowflake_aws.Refused as e:
        pipe["state"], pipe["error"], pipe["stalled_here"] = "STALLED_STAGE_PERMISSION_ERROR", str(e), True
        return False
    except snowflake_aws.Missing as e:
        pipe["queue"].pop(0)
        record_load(table, name, item, "Load failed", 0, 0, str(e), now())
        return True
    except CopyError:
        pipe["queue"].pop(0)
        return True
    if pipe["stalled_here"]:
        pipe["state"], pipe["error"], pipe["stalled_here"] = None, None, False
    pipe["queue"].pop(0)
    started = now()
    try:
        loaded = copy_file(pipe, item, body, modified, started)
        record_load(table, name, item, "Loaded", loaded, loaded, None, now())
        pipe["times"]["lastIngestedTimestamp"] = now()
    except CopyError as e:
        record_load(table, name, item, "Load failed", 0, 0, str(e), now())
    pipe["loaded"][item["key"]] = etag
    return True


def queue_file(name, pipe, bucket, key, size, stage_url):
    at = now()
    pipe["queue"].append({"bucket": bucket, "key": key, "size": size, "queued_at": at, "stage_url": stage_url})
    pipe["times"]["lastForwardedMessageTimestamp"] = at


def route(records):
    """Each notified object goes to the auto-ingest pipes whose stage covers it, as Snowflake routes
    the messages of its shared queue by stage location."""
    at = now()
    for record in records:
        bucket, key, size, _ = snowflake_aws.object_of(record)
        for name, pipe in CATALOG["pipe"].items():
            if not auto_ingest(pipe):
                continue
            pipe["times"]["lastReceivedMessageTimestamp"] = at
            url = CATALOG["stage"].get(stage_of(pipe["definition"]) or "", {}).get("URL", "")
            if url and f"s3://{bucket}/{key}".startswith(url) and not pipe_state(pipe).startswith("STOPPED_"):
                queue_file(name, pipe, bucket, key, size, url)


def refresh_pipe(name, pipe, options):
    """ALTER PIPE … REFRESH: the stage's files modified after MODIFIED_AFTER (at most 7 days back)
    that this pipe has not loaded are queued (https://docs.snowflake.com/en/sql-reference/sql/alter-pipe)."""
    after = re.search(r"MODIFIED_AFTER\s*=\s*'([^']+)'", options, re.I)
    since = dt.datetime.fromisoformat(after[1]) if after else now() - dt.timedelta(days=7)
    try:
        account, bucket, prefix, url = stage_read(stage_of(pipe["definition"]) or "")
        found = AWS.list(account, bucket, prefix)
    except snowflake_aws.Refused as e:
        return error(str(e), "091003")
    sent = []
    for key, size, etag, modified in found:
        queued = any(item["key"] == key for item in pipe["queue"])
        if modified >= since and pipe["loaded"].get(key) != etag and not queued:
            queue_file(name, pipe, bucket, key, size, url)
            sent.append([key, "SENT"])
    return rows(["File", "Status"], sent)


def load_queued():
    """Running pipes load what is queued (a stalled one retries its read)."""
    for name, pipe in CATALOG["pipe"].items():
        if pipe["drain"] is not None or not pipe["queue"]:
            continue
        if pipe_state(pipe) != "RUNNING" and not pipe["stalled_here"]:
            continue
        while pipe["queue"] and load_next(name, pipe):
            pass


def pass_time(database, delta):
    """`CALL FAKESNOW_PASS_TIME('<database>', <minutes>)`: that much time passes for everything
    Snowflake recorded in the database (pipe timestamps and pauses, loads, refreshes and the rows'
    load times), so a test sees a pipe idle for hours or a model's data grow old without waiting."""
    for name, pipe in CATALOG["pipe"].items():
        if name.split(".")[0] != database:
            continue
        pipe["times"] = {k: at - delta for k, at in pipe["times"].items()}
        pipe["paused_at"] = pipe["paused_at"] and pipe["paused_at"] - delta
        for item in pipe["queue"]:
            item["queued_at"] -= delta
        table, columns, select, _, _ = parse_copy_or_none(pipe["definition"])
        if table and columns and select and "METADATA$START_SCAN_TIME" in [e.upper() for e in select]:
            column = columns[[e.upper() for e in select].index("METADATA$START_SCAN_TIME")]
            target = ".".join(f'"{p}"' for p in table.split("."))
            duck().execute(f'UPDATE {target} SET "{column}" = "{column}" - ?', [delta])
    seconds = int(delta.total_seconds())
    duck().execute(f"UPDATE {PEER_SCHEMA}.copy_history SET LAST_LOAD_TIME = LAST_LOAD_TIME - to_seconds(?), "
                   "PIPE_RECEIVED_TIME = PIPE_RECEIVED_TIME - to_seconds(?), "
                   "FIRST_COMMIT_TIME = FIRST_COMMIT_TIME - to_seconds(?) WHERE TABLE_CATALOG_NAME = ?",
                   [seconds, seconds, seconds, database])
    duck().execute(f"UPDATE {PEER_SCHEMA}.dynamic_tables SET LATEST_DATA_TIMESTAMP = LATEST_DATA_TIMESTAMP - "
                   "to_seconds(?) WHERE DATABASE_NAME = ?", [seconds, database])


def parse_copy_or_none(definition):
    try:
        return parse_copy(definition)
    except CopyError:
        return None, None, None, None, None


def table_function(sql, name):
    """The `TABLE(<db>.INFORMATION_SCHEMA.<name>(<args>))` of a query: (start, end, args) or None."""
    m = re.search(r"\bTABLE\(\s*(?:" + ANY_NAME + r"\.)?INFORMATION_SCHEMA\." + name + r"\(", sql, re.I)
    if not m:
        return None
    depth, at = 1, m.end()
    while depth and at < len(sql):
        depth += {"(": 1, ")": -1}.get(sql[at], 0)
        at += 1
    inner = sql[m.end():at - 1]
    close = sql.index(")", at)
    args = {}
    for part in split_top(inner):
        if "=>" in part:
            key, value = part.split("=>", 1)
            args[key.strip().upper()] = value.strip()
    return m.start(), close + 1, args


def rewrite_table_functions(sql):
    """COPY_HISTORY, DYNAMIC_TABLES() and VALIDATE_PIPE_LOAD as subqueries over the peer's tables,
    with the function's own filters: the rest of the query runs in fakesnow. Returns (sql, error)."""
    if found := table_function(sql, "COPY_HISTORY"):
        # https://docs.snowflake.com/en/sql-reference/functions/copy_history: TABLE_NAME and
        # START_TIME are required, END_TIME defaults to now.
        start, end, args = found
        if "TABLE_NAME" not in args or "START_TIME" not in args:
            return sql, error("SQL compilation error: COPY_HISTORY needs TABLE_NAME and START_TIME", "001044")
        db, schema, table = resolve(text_of(args["TABLE_NAME"]).replace("''", "'")).split(".")
        where = (f"TABLE_CATALOG_NAME = '{db}' AND TABLE_SCHEMA_NAME = '{schema}' AND TABLE_NAME = '{table}' "
                 f"AND LAST_LOAD_TIME >= ({args['START_TIME']})")
        if "END_TIME" in args:
            where += f" AND LAST_LOAD_TIME <= ({args['END_TIME']})"
        return sql[:start] + f"(SELECT * FROM {PEER_SCHEMA}.copy_history WHERE {where})" + sql[end:], None
    if found := table_function(sql, "DYNAMIC_TABLES"):
        # https://docs.snowflake.com/en/sql-reference/functions/dynamic_tables: the whole account,
        # RESULT_LIMIT rows (100 by default), failed ones first.
        start, end, args = found
        limit = int(args.get("RESULT_LIMIT", "100"))
        order = "CASE LAST_COMPLETED_REFRESH_STATE " + " ".join(
            f"WHEN '{state}' THEN {i}" for i, state in enumerate(REFRESH_ORDER)) + " ELSE 9 END"
        inner = f"(SELECT * FROM {PEER_SCHEMA}.dynamic_tables ORDER BY {order}, QUALIFIED_NAME LIMIT {limit})"
        return sql[:start] + inner + sql[end:], None
    if found := table_function(sql, "VALIDATE_PIPE_LOAD"):
        start, end, args = found
        name = resolve(text_of(args.get("PIPE_NAME", "''")))
        pipe = CATALOG["pipe"].get(name)
        if pipe is None:
            return sql, error(f"SQL compilation error:\nPipe '{name}' does not exist or not authorized.")
        # "If the COPY statement in the pipe definition includes a query to further transform the
        # data during loading (i.e. COPY transformation), the function currently returns a user
        # error." (https://docs.snowflake.com/en/sql-reference/functions/validate_pipe_load)
        if re.search(r"\bFROM\s*\(\s*SELECT\b", pipe["definition"], re.I):
            return sql, error(f"VALIDATE_PIPE_LOAD does not support pipes whose COPY transforms the data "
                              f"(pipe '{name}').", "091105")
        db, schema, short = name.split(".")
        inner = (f"(SELECT FIRST_ERROR_MESSAGE AS ERROR, FILE_NAME AS FILE, FIRST_ERROR_LINE_NUMBER AS LINE, "
                 f"FIRST_ERROR_CHARACTER_POS AS CHARACTER, FIRST_ERROR_COLUMN_NAME AS COLUMN_NAME "
                 f"FROM {PEER_SCHEMA}.copy_history WHERE PIPE_CATALOG_NAME = '{db}' AND PIPE_SCHEMA_NAME = '{schema}' "
                 f"AND PIPE_NAME = '{short}' AND ERROR_COUNT > 0 AND LAST_LOAD_TIME >= ({args.get('START_TIME')}))")
        return sql[:start] + inner + sql[end:], None
    return sql, None


# LAST_COMPLETED_REFRESH_STATE, in the order DYNAMIC_TABLES() sorts by default.
REFRESH_ORDER = ["FAILED", "UPSTREAM_FAILED", "SKIPPED", "SUCCEEDED", "CANCELED"]


def lag_seconds(lag):
    if lag.upper() == "DOWNSTREAM":
        return None
    count, unit = (text_of(lag).split() + ["hours"])[:2]
    return int(count) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit[0].lower()]


def register_dynamic(name, sql):
    """A dynamic table fakesnow just built from its SELECT (refreshed at creation)."""
    m = re.search(r"TARGET_LAG\s*=\s*('[^']*'|DOWNSTREAM)", sql, re.I)
    select = re.search(r"\bAS\s+((?:SELECT|WITH)\b.*)$", sql, re.S | re.I)
    CATALOG["dynamic"][name] = {"select": select[1] if select else "", "lag": lag_seconds(m[1]) if m else None}
    db, schema, short = name.split(".")
    duck().execute(f"DELETE FROM {PEER_SCHEMA}.dynamic_tables WHERE QUALIFIED_NAME = ?", [name])
    duck().execute(f"INSERT INTO {PEER_SCHEMA}.dynamic_tables VALUES (?, ?, ?, ?, ?, 'ACTIVE', now(), 'SUCCEEDED', NULL)",
                   [short, schema, db, name, CATALOG["dynamic"][name]["lag"]])


def forget_dynamic(name):
    CATALOG["dynamic"].pop(name, None)
    duck().execute(f"DELETE FROM {PEER_SCHEMA}.dynamic_tables WHERE QUALIFIED_NAME = ?", [name])


def refresh_dynamic(name, done=None):
    """Recomputes a dynamic table from its SELECT, upstream dynamic tables first; a failed refresh
    keeps the old rows and records Snowflake's state and message."""
    done = set() if done is None else done
    if name in done or name not in CATALOG["dynamic"]:
        return True
    done.add(name)
    select = CATALOG["dynamic"][name]["select"]
    upstream_ok = all(refresh_dynamic(other, done) for other in CATALOG["dynamic"]
                      if other != name and quoted(other) in select)
    state, message = "SUCCEEDED", None
    if not upstream_ok:
        state, message = "UPSTREAM_FAILED", "an upstream dynamic table failed to refresh"
    else:
        cursor = fs.shared_fs.connect(name.split(".")[0], None).cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            cursor.execute(f"DELETE FROM {quoted(name)}")
            cursor.execute(f"INSERT INTO {quoted(name)} {select}")
            cursor.execute("COMMIT")
        except Exception as e:  # fakesnow raises the connector's errors, or DuckDB's
            cursor.execute("ROLLBACK")
            state, message = "FAILED", (getattr(e, "msg", None) or str(e)).split("\n")[0]
    set_refresh(name, state, message)
    return state == "SUCCEEDED"


def set_refresh(name, state, message):
    data = "now()" if state == "SUCCEEDED" else "LATEST_DATA_TIMESTAMP"
    duck().execute(f"UPDATE {PEER_SCHEMA}.dynamic_tables SET LAST_COMPLETED_REFRESH_STATE = ?, "
                   f"LAST_COMPLETED_REFRESH_STATE_MESSAGE = ?, LATEST_DATA_TIMESTAMP = {data} WHERE QUALIFIED_NAME = ?",
                   [state, message, name])


def quoted(name):
    return ".".join(f'"{p}"' for p in name.split("."))


def refresh_due():
    """Snowflake refreshes an active dynamic table once its data is older than its target lag."""
    due = duck().execute(f"SELECT QUALIFIED_NAME FROM {PEER_SCHEMA}.dynamic_tables WHERE SCHEDULING_STATE = 'ACTIVE' "
                         "AND TARGET_LAG_SEC IS NOT NULL AND LATEST_DATA_TIMESTAMP < now() - to_seconds(TARGET_LAG_SEC) "
                         "AND LAST_COMPLETED_REFRESH_STATE = 'SUCCEEDED'").fetchall()
    done = set()
    for (name,) in due:
        refresh_dynamic(name, done)


def dynamic_table_statement(sql, session):
    """ALTER DYNAMIC TABLE … REFRESH | SUSPEND | RESUME
    (https://docs.snowflake.com/en/sql-reference/sql/alter-dynamic-table)."""
    m = re.match(r"ALTER\s+DYNAMIC\s+TABLE\s+(IF\s+EXISTS\s+)?" + ANY_NAME + r"\s+(REFRESH|SUSPEND|RESUME)\s*$", sql, re.I)
    if not m:
        return None
    name = resolve(m[2])
    if name not in CATALOG["dynamic"]:
        return error(f"SQL compilation error:\nDynamic table '{name}' does not exist or not authorized.")
    verb = m[3].upper()
    if verb == "REFRESH":
        if not refresh_dynamic(name):
            message = duck().execute(f"SELECT LAST_COMPLETED_REFRESH_STATE_MESSAGE FROM {PEER_SCHEMA}.dynamic_tables "
                                     "WHERE QUALIFIED_NAME = ?", [name]).fetchone()[0]
            return error(f"Dynamic table '{name}' refresh failed: {message}", "091416")
        return status("Statement executed successfully.")
    state = "SUSPENDED" if verb == "SUSPEND" else "ACTIVE"
    duck().execute(f"UPDATE {PEER_SCHEMA}.dynamic_tables SET SCHEDULING_STATE = ? WHERE QUALIFIED_NAME = ?",
                   [state, name])
    return status("Statement executed successfully.")


async def auto_ingest_loop():
    """Snowflake's side of auto-ingest: receive the queue's notifications, route them to pipes,
    load what running pipes hold; refresh dynamic tables due by their lag."""
    while True:
        try:
            messages = await asyncio.to_thread(AWS.receive, 1) if AWS is not None else []
            async with LOCK:
                for _, records in messages:
                    route(records)
                load_queued()
                refresh_due()
            if messages:
                await asyncio.to_thread(AWS.delete, [receipt for receipt, _ in messages])
        except Exception:  # keep serving: a test sees the missing load, the log says why
            traceback.print_exc()
            await asyncio.sleep(1)
        await asyncio.sleep(0.05 if AWS is not None and AWS.queue_url else 0.5)


def grants_statement(sql, session):
    """Roles and grants: GRANT/REVOKE of a privilege or a role, SHOW GRANTS TO ROLE, CURRENT_ROLE()
    (https://docs.snowflake.com/en/sql-reference/sql/show-grants)."""
    kinds = r"(WAREHOUSE|DATABASE|SCHEMA|INTEGRATION|PIPE|TABLE|DYNAMIC\s+TABLE)"
    if m := re.match(r"(GRANT|REVOKE)\s+ROLE\s+" + ANY_NAME + r"\s+(?:TO|FROM)\s+ROLE\s+" + ANY_NAME + r"\s*$", sql, re.I):
        return grant(m[1], "USAGE", "ROLE", resolve(m[2]), resolve(m[3]))
    if m := re.match(r"(GRANT|REVOKE)\s+([A-Z ]+?)\s+ON\s+ACCOUNT\s+(?:TO|FROM)\s+ROLE\s+" + ANY_NAME + r"\s*$", sql, re.I):
        return grant(m[1], m[2], "ACCOUNT", ACCOUNT, resolve(m[3]))
    if m := re.match(r"(GRANT|REVOKE)\s+([A-Z ]+?)\s+ON\s+" + kinds + r"\s+" + ANY_NAME
                     + r"\s+(?:TO|FROM)\s+ROLE\s+" + ANY_NAME + r"(\s+COPY\s+CURRENT\s+GRANTS)?\s*$", sql, re.I):
        return grant(m[1], m[2], re.sub(r"\s+", "_", m[3].upper()), resolve(m[4]), resolve(m[5]))
    if m := re.match(r"SHOW\s+GRANTS\s+TO\s+ROLE\s+" + ANY_NAME + r"\s*$", sql, re.I):
        role = resolve(m[1])
        columns = ["created_on", "privilege", "granted_on", "name", "granted_to", "grantee_name", "grant_option",
                   "granted_by"]
        held = [g for g in CATALOG["grants"] if g["role"] == role]
        return rows(columns, [["0", g["privilege"], g["on"], g["name"], "ROLE", role, "false", "SECURITYADMIN"]
                              for g in held])
    if m := re.match(r"SELECT\s+CURRENT_ROLE\(\)(?:\s+AS\s+(\w+))?\s*$", sql, re.I):
        return rows([m[1] or "CURRENT_ROLE()"], [[session["role"]]])
    if m := re.match(r"SELECT\s+CURRENT_WAREHOUSE\(\)(?:\s+AS\s+(\w+))?\s*$", sql, re.I):
        return rows([m[1] or "CURRENT_WAREHOUSE()"], [[session["warehouse"]]])
    return None


def grant(verb, privilege, kind, name, role):
    privilege = " ".join(privilege.upper().split())
    entry = {"privilege": privilege, "on": kind, "name": name, "role": role}
    if verb.upper() == "GRANT":
        if privilege == "OWNERSHIP":
            CATALOG["grants"][:] = [g for g in CATALOG["grants"]
                                    if not (g["privilege"] == "OWNERSHIP" and g["on"] == kind and g["name"] == name)]
        if entry not in CATALOG["grants"]:
            CATALOG["grants"].append(entry)
    elif entry in CATALOG["grants"]:
        CATALOG["grants"].remove(entry)
    return status("Statement executed successfully.")


def session_statement(sql, session):
    """USE WAREHOUSE / USE ROLE, and the session's TIMEZONE when the login set it."""
    if m := re.match(r"USE\s+WAREHOUSE\s+" + ANY_NAME + r"\s*$", sql, re.I):
        session["warehouse"] = resolve(m[1])
        return status("Statement executed successfully.")
    if m := re.match(r"USE\s+ROLE\s+" + ANY_NAME + r"\s*$", sql, re.I):
        session["role"] = resolve(m[1])
        return status("Statement executed successfully.")
    if m := re.match(r"SHOW\s+PARAMETERS\s+LIKE\s+'([^']+)'\s+IN\s+SESSION\s*$", sql, re.I):
        key = m[1].upper()
        if key in session["params"]:
            return rows(["key", "value", "default", "level", "description", "type"],
                        [[key, str(session["params"][key]), "", "SESSION", "", "STRING"]])
    return None


def note_created(sql, response, session):
    """After fakesnow ran a statement: the dynamic tables DYNAMIC_TABLES() lists, what the session's
    role now owns, the pipes a replaced or dropped file format stops."""
    if not json.loads(response.body).get("success"):
        return
    if m := re.match(r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?DYNAMIC\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + NAME, sql, re.I):
        register_dynamic(unquote_all(m[1]), sql)
    elif m := re.match(r"\s*DROP\s+DYNAMIC\s+TABLE\s+(?:IF\s+EXISTS\s+)?" + NAME, sql, re.I):
        forget_dynamic(unquote_all(m[1]))
    elif m := re.match(r"\s*CREATE\s+DATABASE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + ANY_NAME, sql, re.I):
        own("DATABASE", resolve(m[1]), session)
    elif m := re.match(r"\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + ANY_NAME, sql, re.I):
        own("TABLE", resolve(m[1]), session)
    elif m := re.match(r"\s*CREATE\s+OR\s+REPLACE\s+FILE\s+FORMAT\s+" + ANY_NAME, sql, re.I):
        stop_pipes(format_of, unquote_all(m[1]), "STOPPED_FILE_FORMAT_DROPPED")


def emulate(sql, session):
    sql = sql.strip().rstrip(";").strip()
    for handler in (integration_statement, stage_statement, pipe_statement, dynamic_table_statement,
                    grants_statement, session_statement):
        if (answer := handler(sql, session)) is not None:
            return answer
    return None


def emulated_response(answer):
    if "error" in answer:
        code, message = answer["error"]
        data = {"errorCode": code, "sqlState": "02000", "queryId": "emulated"}
        return JSONResponse({"data": data, "code": code, "message": message, "success": False})
    rowtype = [{"name": c, "type": "text", "nullable": True, "length": 16777216, "precision": None, "scale": None}
               for c in answer["columns"]]
    data = {"rowtype": rowtype, "rowset": answer["rows"], "total": len(answer["rows"]), "returned": len(answer["rows"]),
            "queryId": "emulated", "queryResultFormat": "json", "parameters": []}
    return JSONResponse({"data": data, "success": True})


def needs_warehouse(sql):
    """DML, and a query that reads a table, run on a warehouse; SHOW, DESC, DDL, EXPLAIN and a SELECT
    of functions alone run without one."""
    text = sql.lstrip().upper()
    if re.match(r"(INSERT|UPDATE|DELETE|MERGE)\b", text):
        return True
    return re.match(r"(SELECT|WITH)\b", text) is not None and re.search(r"\bFROM\b", text) is not None


NO_WAREHOUSE = error("No active warehouse selected in the current session.  Select an active warehouse with the "
                     "'use warehouse' command.\n", "000606")


# ---- 3. one request at a time --------------------------------------------------------------------

def log(sql):
    if path := os.environ.get("FAKESNOW_STATEMENT_LOG"):
        with open(path, "a") as f:
            f.write(" ".join(sql.split()) + "\n")


def with_body(request, payload):
    """The same request with a new (uncompressed) JSON body, for handing on to fakesnow."""
    scope = dict(request.scope)
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-encoding"]
    plain = Request(scope)
    plain._body = json.dumps(payload).encode()
    return plain


async def payload_of(request):
    body = await request.body()
    if request.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return json.loads(body)


def use_database_of(request, sql):
    """fakesnow resolves its helper macros (e.g. _fs_to_timestamp) in the session's current
    database, which Snowflake does not need for fully qualified names: a session without one uses
    the database the statement names, if it exists."""
    try:
        conn = fs.to_conn(fs.to_token(request))
    except fs.ServerError:
        return
    if conn.database_set or not (m := re.search(r'"([^"]+)"\."[^"]+"\.', sql)):
        return
    exists = conn._duck_conn.execute(
        "SELECT 1 FROM duckdb_databases() WHERE upper(database_name) = upper(?)", [m[1]]
    ).fetchone()
    if exists:
        conn.cursor().execute(f'USE DATABASE "{m[1]}"')


def drop_database(request, sql):
    """fakesnow attaches each database to DuckDB but cannot parse DROP DATABASE: detach it."""
    if not (m := re.match(r'\s*DROP\s+DATABASE\s+(IF\s+EXISTS\s+)?"([^"]+)"\s*$', sql, re.I)):
        return None
    conn = fs.to_conn(fs.to_token(request))
    attached = conn._duck_conn.execute(
        "SELECT 1 FROM duckdb_databases() WHERE upper(database_name) = upper(?)", [m[2]]
    ).fetchone()
    if not attached:
        return status("Drop statement executed successfully.") if m[1] else error(f"Database '{m[2]}' does not exist.")
    if (conn.database or "").upper() == m[2].upper():
        conn._duck_conn.execute("USE memory")
        conn.database, conn.database_set = None, False
    conn._duck_conn.execute(f'DETACH DATABASE "{m[2]}"')
    return status(f"{m[2]} successfully dropped.")


FILE_FORMATS = "_fs_global._fs_information_schema._fs_file_formats"
FORMAT_NAME = r'"([^"]+)"\."([^"]+)"\."([^"]+)"'


def drop_file_format(request, sql):
    """fakesnow creates file formats (in its own catalog table) but cannot parse their DROP."""
    if not (m := re.match(r'\s*DROP\s+FILE\s+FORMAT\s+(IF\s+EXISTS\s+)?' + FORMAT_NAME + r'\s*$', sql, re.I)):
        return None
    conn = fs.to_conn(fs.to_token(request))
    where = "database_name = ? AND schema_name = ? AND name = ?"
    found = conn._duck_conn.execute(f"SELECT count(*) FROM {FILE_FORMATS} WHERE {where}", [m[2], m[3], m[4]]).fetchone()[0]
    if not found and not m[1]:
        return error(f"SQL compilation error:\nFile format '{m[4]}' does not exist or not authorized.")
    conn._duck_conn.execute(f"DELETE FROM {FILE_FORMATS} WHERE {where}", [m[2], m[3], m[4]])
    stop_pipes(format_of, f"{m[2]}.{m[3]}.{m[4]}", "STOPPED_FILE_FORMAT_DROPPED")
    return status(f"{m[4]} successfully dropped.")


def alter_file_format(request, sql):
    """fakesnow cannot parse ALTER FILE FORMAT … SET <type options>: they are merged into the
    options SHOW FILE FORMATS reports (https://docs.snowflake.com/en/sql-reference/sql/alter-file-format)."""
    if not (m := re.match(r'\s*ALTER\s+FILE\s+FORMAT\s+(IF\s+EXISTS\s+)?' + FORMAT_NAME + r'\s+SET\s+(.*)$', sql, re.S | re.I)):
        return None
    conn = fs.to_conn(fs.to_token(request))
    where = "database_name = ? AND schema_name = ? AND name = ?"
    found = conn._duck_conn.execute(f"SELECT options FROM {FILE_FORMATS} WHERE {where}", [m[2], m[3], m[4]]).fetchone()
    if found is None:
        if m[1]:
            return status("Statement executed successfully.")
        return error(f"SQL compilation error:\nFile format '{m[4]}' does not exist or not authorized.")
    options = json.loads(found[0])
    for key, value in properties(m[5]).items():
        word = text_of(value)
        options[key] = {"TRUE": True, "FALSE": False}.get(word.upper(), word)
    conn._duck_conn.execute(f"UPDATE {FILE_FORMATS} SET options = ? WHERE {where}", [json.dumps(options), m[2], m[3], m[4]])
    return status("Statement executed successfully.")


# The columns of EXPLAIN's tabular output (https://docs.snowflake.com/en/sql-reference/sql/explain).
EXPLAIN_COLUMNS = ["step", "id", "parent", "operation", "objects", "alias", "expressions", "partitionsTotal",
                   "partitionsAssigned", "bytesAssigned"]


async def explain(request, payload, sql):
    """EXPLAIN compiles a statement without running it. fakesnow has no EXPLAIN: the query is
    compiled by DuckDB behind fakesnow as `SELECT * FROM (<query>) LIMIT 0`, and fakesnow's error,
    if any, is Snowflake's answer."""
    if not (m := re.match(r"\s*EXPLAIN\s+(?:USING\s+(?:TABULAR|JSON|TEXT)\s+)?(.*)$", sql, re.S | re.I)):
        return None
    payload = {**payload, "sqlText": f"SELECT * FROM (\n{m[1].strip().rstrip(';')}\n) LIMIT 0"}
    compiled = as_json_rowset(await fs.query_request(with_body(request, payload)))
    if not json.loads(compiled.body).get("success"):
        return compiled
    plan = [["1", "0", None, "Result", None, None, None, None, None, None]]
    return emulated_response(rows(EXPLAIN_COLUMNS, plan))


def refused(e):
    return JSONResponse({"data": None, "code": e.code, "message": e.message, "success": False}, e.status_code)


async def query_request(request: Request):
    payload = await payload_of(request)
    sql = payload.get("sqlText", "")
    # fakesnow parses CREATE DYNAMIC TABLE (as a table) but not its DROP.
    if re.match(r"\s*DROP\s+DYNAMIC\s+TABLE\b", sql, re.I):
        payload["sqlText"] = re.sub(r"DYNAMIC\s+TABLE", "TABLE", sql, count=1, flags=re.I)
    request = with_body(request, payload)
    async with LOCK:
        log(sql)
        try:
            token = fs.to_token(request)
            fs.to_conn(token)  # an unknown session is refused, as fakesnow would
        except fs.ServerError as e:
            return refused(e)
        session = SESSIONS.setdefault(token, {"role": DEFAULT_ROLE, "warehouse": None, "params": {}})
        if needs_warehouse(sql) and not session["warehouse"]:
            return emulated_response(NO_WAREHOUSE)
        use_database_of(request, sql)
        if (answer := drop_file_format(request, sql) or drop_database(request, sql)
                or alter_file_format(request, sql)) is not None:
            return emulated_response(answer)
        if (answer := emulate(sql, session)) is not None:
            return emulated_response(answer)
        if (response := await explain(request, payload, sql)) is not None:
            return response
        rewritten, refusal = rewrite_table_functions(sql)
        if refusal is not None:
            return emulated_response(refusal)
        if rewritten != sql:
            request = with_body(request, {**payload, "sqlText": rewritten})
        response = as_json_rowset(await fs.query_request(request))
        note_created(sql, response, session)
        return response


async def login_request(request: Request):
    payload = await payload_of(request)
    # The Rust connector sends SESSION_PARAMETERS only when it has some; fakesnow requires the key.
    params = payload.setdefault("data", {}).setdefault("SESSION_PARAMETERS", {})
    async with LOCK:
        response = await fs.login_request(with_body(request, payload))
        token = json.loads(response.body).get("data", {}).get("token")
        if token:
            query = request.query_params
            SESSIONS[token] = {
                "role": resolve(query["roleName"]) if query.get("roleName") else DEFAULT_ROLE,
                "warehouse": resolve(query["warehouse"]) if query.get("warehouse") else None,
                "params": {k.upper(): v for k, v in params.items()},
            }
        return response


@contextlib.asynccontextmanager
async def lifespan(app):
    task = asyncio.create_task(auto_ingest_loop())
    yield
    task.cancel()


def main():
    global AWS
    port = int(sys.argv[1])
    if len(sys.argv) > 3:
        AWS = snowflake_aws.Aws(sys.argv[2], sys.argv[3])
    lifeline.hold()
    fs.shared_fs.duck_conn.execute(macros.creation_sql("memory"))
    peer_tables()
    routes = [Route("/session/v1/login-request", login_request, methods=["POST"]),
              Route("/queries/v1/query-request", query_request, methods=["POST"])]
    routes += [r for r in fs.routes if r.path not in ("/session/v1/login-request", "/queries/v1/query-request")]
    app = Starlette(routes=routes, lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
