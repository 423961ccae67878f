"""fakesnow's server on 127.0.0.1, adapted for the Rust connector (snowflake-connector-rs).

fakesnow 0.12.1 runs Snowflake SQL on DuckDB. Between it and our client this launcher:

1. Answers query results as the JSON rowset the Rust connector reads (`queryResultFormat: json`:
   every cell a string in Snowflake's wire form) instead of fakesnow's Arrow; the result is taken
   before fakesnow encodes it.
2. Answers the account-level objects flixops deploys, which fakesnow does not have, from a small
   in-memory catalog that behaves as Snowflake's documentation says (IF NOT EXISTS, ALTER … SET,
   SHOW/DESC columns, "does not exist" error 002003): storage integrations, external stages,
   pipes with their execution states, `SYSTEM$PIPE_STATUS`, `SYSTEM$PIPE_FORCE_RESUME`,
   `SYSTEM$VALIDATE_STORAGE_INTEGRATION`, `LIST @stage`, `COPY_HISTORY`, `DYNAMIC_TABLES()`,
   `ALTER FILE FORMAT`, `EXPLAIN`, roles and grants (`GRANT`, `REVOKE`, `SHOW GRANTS TO ROLE`,
   `CURRENT_ROLE()`; a role owns what it creates), and the session's warehouse and parameters.
   The exact SQL text of these statements is checked separately by golden files parsed with
   sqlglot. What only a running Snowflake produces (loads, refreshes, a pipe's queue) a test
   records with emulator-only `CALL FAKESNOW_…` statements, documented where they are answered.
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

Usage: python fakesnow_server.py PORT   (binds 127.0.0.1 only)
"""

import asyncio
import calendar
import datetime as dt
import gzip
import json
import os
import re
import sys
from base64 import b64decode
from decimal import Decimal

import fakesnow.server as fs
from fakesnow import macros
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import lifeline

LOCK = asyncio.Lock()
IAM_USER_ARN = "arn:aws:iam::999999999999:user/fake-sf-user"
QUEUE_ARN = "arn:aws:sqs:us-east-1:999999999999:sf-snowpipe-FAKE-queue"


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
CATALOG = {"integration": {}, "stage": {}, "pipe": {}, "loads": [], "dynamic": {}, "lost": {},
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
    if m := re.match(r"(?:LIST|LS)\s+'?@" + NAME, sql, re.I):
        if unquote(m[1]) not in CATALOG["stage"]:
            return error(f"SQL compilation error:\nStage '{unquote(m[1])}' does not exist or not authorized.")
        return rows(["name", "size", "md5", "last_modified"], [])
    if m := re.match(r"DROP\s+STAGE\s+(IF\s+EXISTS\s+)?" + NAME + r"\s*$", sql, re.I):
        stop_pipes(stage_of, unquote(m[2]), "STOPPED_STAGE_DROPPED")
        return drop("stage", unquote(m[2]), m[1])
    return None


def new_pipe(definition, props):
    return {"definition": definition, "paused": False, "paused_at": None, "state": None, "queue": [], "drain": 1,
            "refreshed": [], "times": {}, "error": None, **props}


def pipe_state(pipe):
    return pipe["state"] or ("PAUSED" if pipe["paused"] else "RUNNING")


def pipe_status(pipe):
    """SYSTEM$PIPE_STATUS (https://docs.snowflake.com/en/sql-reference/functions/system_pipe_status).
    A running pipe loads its queue, `drain` files per status read here; a paused one loads nothing
    more (https://docs.snowflake.com/en/user-guide/data-load-snowpipe-manage#label-snowpipe-manage-pause-resume)."""
    if pipe_state(pipe) == "RUNNING":
        for _ in range(min(pipe["drain"], len(pipe["queue"]))):
            pipe["queue"].pop(0)
            pipe["times"]["lastIngestedTimestamp"] = iso(now())
    answer = {"executionState": pipe_state(pipe), "pendingFileCount": len(pipe["queue"]),
              "notificationChannelName": QUEUE_ARN, "numOutstandingMessagesOnChannel": 0, **pipe["times"]}
    if pipe["queue"]:
        answer["oldestFileTimestamp"] = iso(pipe["queue"][0])
    if pipe["error"]:
        answer["error"] = pipe["error"]
    return answer


def stale(pipe):
    return pipe["paused"] and pipe["paused_at"] is not None and now() - pipe["paused_at"] > STALE_AFTER


def set_pipe_status(pipe, wanted):
    """`CALL FAKESNOW_SET_PIPE_STATUS('<pipe>', '<json>')`: what a running Snowflake would have done
    to the pipe. Keys: executionState (PAUSED/RUNNING pause or resume it; any other is the state
    Snowflake put it in), pausedDaysAgo, pendingFileCount (files queued a minute ago), drainPerRead,
    error, and the SYSTEM$PIPE_STATUS timestamps (lastIngestedTimestamp, …) as they should read."""
    if (state := wanted.get("executionState")) is not None:
        pipe["state"] = None if state in ("PAUSED", "RUNNING") else state
        pipe["paused"] = state == "PAUSED"
        pipe["paused_at"] = now() if state == "PAUSED" else None
    if (days := wanted.get("pausedDaysAgo")) is not None:
        pipe["paused"], pipe["paused_at"] = True, now() - dt.timedelta(days=days)
    if (pending := wanted.get("pendingFileCount")) is not None:
        pipe["queue"] = [now() - dt.timedelta(minutes=1)] * pending
    pipe["drain"] = wanted.get("drainPerRead", pipe["drain"])
    pipe["error"] = wanted.get("error", pipe["error"])
    pipe["times"].update({k: v for k, v in wanted.items() if k.endswith("Timestamp")})


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
            return rows(["File", "Status"], [])
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
            channel = QUEUE_ARN if p.get("AUTO_INGEST", "").upper() == "TRUE" else None
            out.append(["0", short, db, schema, p["definition"], "SYSADMIN", channel, p.get("COMMENT", ""), None, None, None,
                        "ROLE", None, "STAGE"])
        return rows(columns, out)
    if m := re.match(r"SELECT\s+SYSTEM\$PIPE_STATUS\(\s*'([^']+)'\s*\)(?:\s+AS\s+(\w+))?", sql, re.I):
        name = unquote_all(m[1])
        pipe = CATALOG["pipe"].get(name)
        if pipe is None:
            return error(f"SQL compilation error:\nPipe '{name}' does not exist or not authorized.")
        return rows([m[2] or "SYSTEM$PIPE_STATUS"], [[json.dumps(pipe_status(pipe))]])
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
    if m := re.match(r"DROP\s+PIPE\s+(IF\s+EXISTS\s+)?" + NAME + r"\s*$", sql, re.I):
        return drop("pipe", unquote(m[2]), m[1])
    return None


def copy_history_statement(sql, session):
    """COPY_HISTORY answers the loads recorded for the table. Nothing here is loaded by a pipe, so
    a test records one with the emulator-only statement
    `CALL FAKESNOW_RECORD_LOAD('<table>', '<file>', '<status>', '<first error or empty>'[, <minutes ago>])`,
    the status as Snowflake writes it (`Loaded`, `Load failed`, `Partially loaded`, `Load in progress`).
    Its LAST_LOAD_TIME is that many minutes ago (default now); START_TIME bounds what is answered,
    and `DATE_PART(EPOCH_SECOND, MAX(LAST_LOAD_TIME))` the latest load."""
    if m := re.match(r"CALL\s+FAKESNOW_RECORD_LOAD\(\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'([^']*)'\s*"
                     r"(?:,\s*(\d+)\s*)?\)", sql, re.I):
        at = now() - dt.timedelta(minutes=int(m[5] or 0))
        CATALOG["loads"].append({"table": unquote_all(m[1]), "file": m[2], "status": m[3], "error": m[4] or None,
                                 "at": at})
        return status("Load recorded.")
    if re.match(r"SELECT\s.*\bFROM\s+TABLE\(.*INFORMATION_SCHEMA\.COPY_HISTORY\(", sql, re.S | re.I):
        table = re.search(r"TABLE_NAME\s*=>\s*'((?:[^']|'')*)'", sql, re.I)
        table = unquote_all(table[1].replace("''", "'")) if table else None
        start = start_time(sql)
        loads = [load for load in CATALOG["loads"]
                 if load["table"] == table and status_filter(sql)(load["status"]) and load["at"] >= start]
        if re.match(r"SELECT\s+DATE_PART\(\s*EPOCH_SECOND\s*,\s*MAX\(\s*LAST_LOAD_TIME\s*\)\s*\)", sql, re.I):
            latest = max((load["at"] for load in loads), default=None)
            return rows(["LAST_LOAD"], [[str(int(latest.timestamp())) if latest else None]])
        return rows(["FILE_NAME", "STATUS", "FIRST_ERROR_MESSAGE"],
                    [[load["file"], load["status"], load["error"]] for load in loads])
    return None


def start_time(sql):
    """COPY_HISTORY's required START_TIME, as `DATEADD(DAYS|HOURS, -N, CURRENT_TIMESTAMP())`."""
    if m := re.search(r"START_TIME\s*=>\s*DATEADD\(\s*(DAYS|HOURS)\s*,\s*-(\d+)", sql, re.I):
        return now() - dt.timedelta(**{m[1].lower(): int(m[2])})
    return dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def status_filter(sql):
    """The WHERE on STATUS: `STATUS <> 'x'`, `STATUS = 'x'`, or `[UPPER(]STATUS[)] IN ('x', …)`."""
    if m := re.search(r"WHERE\s+STATUS\s*(<>|=)\s*'([^']*)'", sql, re.I):
        return (lambda s: s != m[2]) if m[1] == "<>" else (lambda s: s == m[2])
    if m := re.search(r"WHERE\s+(UPPER\(\s*STATUS\s*\)|STATUS)\s+IN\s*\(([^)]*)\)", sql, re.I):
        upper = m[1].upper().startswith("UPPER")
        wanted = re.findall(r"'([^']*)'", m[2])
        return lambda s: (s.upper() if upper else s) in wanted
    return lambda s: True


# LAST_COMPLETED_REFRESH_STATE, in the order DYNAMIC_TABLES() sorts by default.
REFRESH_ORDER = ["FAILED", "UPSTREAM_FAILED", "SKIPPED", "SUCCEEDED", "CANCELED"]


def dynamic_tables_statement(sql, session):
    """DYNAMIC_TABLES() answers each dynamic table created through here, refreshed at creation, from
    the whole account, as Snowflake does: RESULT_LIMIT rows (100 by default), failed ones first
    (https://docs.snowflake.com/en/sql-reference/functions/dynamic_tables), then the query's
    `WHERE DATABASE_NAME = '…'`. A test records another refresh with the emulator-only statement
    `CALL FAKESNOW_RECORD_REFRESH('<table>', '<state>', '<message or empty>', <minutes ago>)`."""
    if m := re.match(r"CALL\s+FAKESNOW_RECORD_REFRESH\(\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*(\d+)\s*\)",
                     sql, re.I):
        at = now() - dt.timedelta(minutes=int(m[4]))
        CATALOG["dynamic"][unquote_all(m[1])] = {"at": at, "state": m[2], "message": m[3] or None}
        return status("Refresh recorded.")
    if m := re.match(r"SELECT\s.*\bFROM\s+TABLE\(\s*" + NAME + r"\.INFORMATION_SCHEMA\.DYNAMIC_TABLES\(([^)]*)\)\s*\)(.*)$",
                     sql, re.S | re.I):
        limit = re.search(r"RESULT_LIMIT\s*=>\s*(\d+)", m[2], re.I)
        limit = int(limit[1]) if limit else 100
        order = lambda item: (REFRESH_ORDER.index(item[1]["state"]) if item[1]["state"] in REFRESH_ORDER else 9, item[0])
        listed = sorted(CATALOG["dynamic"].items(), key=order)[:limit]
        database = re.search(r"WHERE\s+DATABASE_NAME\s*=\s*'([^']*)'", m[3], re.I)
        out, at = [], now()
        for name, refresh in listed:
            db, schema, table = name.split(".")
            if database is None or db == database[1]:
                age = int((at - refresh["at"]).total_seconds() // 60)
                out.append([schema, table, refresh["state"], refresh["message"], str(age)])
        return rows(["SCHEMA_NAME", "NAME", "STATE", "MESSAGE", "AGE_MINUTES"], out)
    return None


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
        CATALOG["dynamic"][unquote_all(m[1])] = {"at": now(), "state": "SUCCEEDED", "message": None}
    elif m := re.match(r"\s*DROP\s+DYNAMIC\s+TABLE\s+(?:IF\s+EXISTS\s+)?" + NAME, sql, re.I):
        CATALOG["dynamic"].pop(unquote_all(m[1]), None)
    elif m := re.match(r"\s*CREATE\s+DATABASE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + ANY_NAME, sql, re.I):
        own("DATABASE", resolve(m[1]), session)
    elif m := re.match(r"\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + ANY_NAME, sql, re.I):
        own("TABLE", resolve(m[1]), session)
    elif m := re.match(r"\s*CREATE\s+OR\s+REPLACE\s+FILE\s+FORMAT\s+" + ANY_NAME, sql, re.I):
        stop_pipes(format_of, unquote_all(m[1]), "STOPPED_FILE_FORMAT_DROPPED")


def emulate(sql, session):
    sql = sql.strip().rstrip(";").strip()
    for handler in (integration_statement, stage_statement, pipe_statement, copy_history_statement,
                    dynamic_tables_statement, grants_statement, session_statement):
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


def main():
    port = int(sys.argv[1])
    lifeline.hold()
    fs.shared_fs.duck_conn.execute(macros.creation_sql("memory"))
    routes = [Route("/session/v1/login-request", login_request, methods=["POST"]),
              Route("/queries/v1/query-request", query_request, methods=["POST"])]
    routes += [r for r in fs.routes if r.path not in ("/session/v1/login-request", "/queries/v1/query-request")]
    app = Starlette(routes=routes)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
