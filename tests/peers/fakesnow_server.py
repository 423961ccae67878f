"""fakesnow's server on 127.0.0.1, adapted for the Rust connector (snowflake-connector-rs).

fakesnow 0.12.1 runs Snowflake SQL on DuckDB. Three things stand between it and our client:

1. It answers query results as Arrow (`rowsetBase64`); the Rust connector reads the JSON rowset
   (`queryResultFormat: json`: every cell a string in Snowflake's wire form). The result is taken
   before fakesnow encodes it and written as that JSON instead.
2. It does not know the account-level objects flixops deploys: storage integrations, external
   stages with an integration, pipes, `SYSTEM$PIPE_STATUS`, `SYSTEM$VALIDATE_STORAGE_INTEGRATION`,
   `LIST @stage`, `COPY_HISTORY` (of loads a test records: no pipe loads anything here), and
   `DYNAMIC_TABLES()` (the dynamic tables created through here, plus refreshes a test records).
   Those statements are answered here from a small in-memory catalog that behaves like Snowflake's
   (IF NOT EXISTS, ALTER … SET, SHOW/DESC columns, "does not exist" error 002003), so a deploy can
   run end to end. Their exact SQL text is checked separately by golden files parsed with sqlglot.
3. Its one DuckDB connection per session is not safe for concurrent statements; requests are served
   one at a time.
4. It cannot parse DROP FILE FORMAT, DROP DATABASE or DROP DYNAMIC TABLE: the first is applied to
   fakesnow's own file-format catalog here, the database is detached from DuckDB, a dynamic table
   is dropped as the table fakesnow created.
5. It resolves its helper macros in the session's current database; a session that has none (ours
   always qualify names) is pointed at the database its statement names.

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

CATALOG = {"integration": {}, "stage": {}, "pipe": {}, "loads": [], "dynamic": {}}
NAME = r'((?:"[^"]+"\.)*"[^"]+")'


def unquote(name):
    return ".".join(part.strip('"') for part in re.findall(r'"[^"]+"', name))


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


def integration_statement(sql):
    if m := re.match(r"CREATE\s+(OR\s+REPLACE\s+)?STORAGE\s+INTEGRATION\s+(IF\s+NOT\s+EXISTS\s+)?" + NAME + r"(.*)$", sql, re.S | re.I):
        name = unquote(m[3])
        if name in CATALOG["integration"] and not m[1]:
            if m[2]:
                return status(f"{name} already exists, statement succeeded.")
            return error(f"SQL compilation error:\nObject '{name}' already exists.", "002002")
        props = {k: text_of(v) for k, v in properties(m[4]).items()}
        CATALOG["integration"][name] = props
        return status(f"Integration {name} successfully created.")
    if m := re.match(r"ALTER\s+STORAGE\s+INTEGRATION\s+(IF\s+EXISTS\s+)?" + NAME + r"\s+SET\s+(.*)$", sql, re.S | re.I):
        name = unquote(m[2])
        if name not in CATALOG["integration"]:
            return error(f"SQL compilation error:\nIntegration '{name}' does not exist or not authorized.")
        CATALOG["integration"][name].update({k: text_of(v) for k, v in properties(m[3]).items()})
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


def stage_statement(sql):
    if m := re.match(r"CREATE\s+(OR\s+REPLACE\s+)?STAGE\s+(IF\s+NOT\s+EXISTS\s+)?" + NAME + r"(.*)$", sql, re.S | re.I):
        name = unquote(m[3])
        if name in CATALOG["stage"] and not m[1]:
            if m[2]:
                return status(f"{name} already exists, statement succeeded.")
            return error(f"SQL compilation error:\nObject '{name}' already exists.", "002002")
        CATALOG["stage"][name] = {k: text_of(v) for k, v in properties(m[4]).items()}
        return status(f"Stage area {name.split('.')[-1]} successfully created.")
    if m := re.match(r"ALTER\s+STAGE\s+(IF\s+EXISTS\s+)?" + NAME + r"\s+SET\s+(.*)$", sql, re.S | re.I):
        name = unquote(m[2])
        if name not in CATALOG["stage"]:
            return error(f"SQL compilation error:\nStage '{name}' does not exist or not authorized.")
        CATALOG["stage"][name].update({k: text_of(v) for k, v in properties(m[3]).items()})
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
        return drop("stage", unquote(m[2]), m[1])
    return None


def pipe_statement(sql):
    if m := re.match(r"CREATE\s+(OR\s+REPLACE\s+)?PIPE\s+(IF\s+NOT\s+EXISTS\s+)?" + NAME + r"(.*?)\bAS\s+(COPY\s.*)$", sql, re.S | re.I):
        name = unquote(m[3])
        if name in CATALOG["pipe"] and not m[1]:
            if m[2]:
                return status(f"{name} already exists, statement succeeded.")
            return error(f"SQL compilation error:\nObject '{name}' already exists.", "002002")
        props = {k: text_of(v) for k, v in properties(m[4]).items()}
        CATALOG["pipe"][name] = {"definition": m[5].strip(), "paused": False, "refreshed": [], **props}
        return status(f"Pipe {name.split('.')[-1]} successfully created.")
    if m := re.match(r"ALTER\s+PIPE\s+(IF\s+EXISTS\s+)?" + NAME + r"\s+(SET|REFRESH)\b(.*)$", sql, re.S | re.I):
        name = unquote(m[2])
        pipe = CATALOG["pipe"].get(name)
        if pipe is None:
            return error(f"SQL compilation error:\nPipe '{name}' does not exist or not authorized.")
        if m[3].upper() == "SET":
            paused = properties(m[4]).get("PIPE_EXECUTION_PAUSED")
            if paused is not None:
                pipe["paused"] = paused.upper() == "TRUE"
            return status("Statement executed successfully.")
        pipe["refreshed"].append(m[4].strip())
        return rows(["File", "Status"], [])
    if m := re.match(r"SHOW\s+PIPES(?:\s+LIKE\s+'([^']*)')?(?:\s+IN\s+SCHEMA\s+" + NAME + r")?\s*$", sql, re.I):
        columns = ["created_on", "name", "database_name", "schema_name", "definition", "owner",
                   "notification_channel", "comment", "integration", "pattern", "error_integration",
                   "owner_role_type", "invalid_reason", "kind"]
        out = []
        for name, p in show("pipe", m[1], m[2]):
            db, schema, short = name.split(".")
            channel = QUEUE_ARN if p.get("AUTO_INGEST", "").upper() == "TRUE" else None
            out.append(["0", short, db, schema, p["definition"], "SYSADMIN", channel, "", None, None, None,
                        "ROLE", None, "STAGE"])
        return rows(columns, out)
    if m := re.match(r"SELECT\s+SYSTEM\$PIPE_STATUS\(\s*'([^']+)'\s*\)", sql, re.I):
        name = unquote(m[1]) if '"' in m[1] else m[1]
        pipe = CATALOG["pipe"].get(name)
        if pipe is None:
            return error(f"SQL compilation error:\nPipe '{name}' does not exist or not authorized.")
        answer = {"executionState": "PAUSED" if pipe["paused"] else "RUNNING", "pendingFileCount": 0,
                  "notificationChannelName": QUEUE_ARN, "numOutstandingMessagesOnChannel": 0}
        return rows(["SYSTEM$PIPE_STATUS"], [[json.dumps(answer)]])
    if m := re.match(r"DROP\s+PIPE\s+(IF\s+EXISTS\s+)?" + NAME + r"\s*$", sql, re.I):
        return drop("pipe", unquote(m[2]), m[1])
    return None


def copy_history_statement(sql):
    """COPY_HISTORY answers the loads recorded for the table. Nothing here is loaded by a pipe, so
    a test records one with the emulator-only statement
    `CALL FAKESNOW_RECORD_LOAD('<table>', '<file>', '<status>', '<first error or empty>')`."""
    if m := re.match(r"CALL\s+FAKESNOW_RECORD_LOAD\(\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'([^']*)'\s*\)",
                     sql, re.I):
        CATALOG["loads"].append({"table": unquote_all(m[1]), "file": m[2], "status": m[3], "error": m[4] or None})
        return status("Load recorded.")
    if re.match(r"SELECT\s.*\bFROM\s+TABLE\(.*INFORMATION_SCHEMA\.COPY_HISTORY\(", sql, re.S | re.I):
        table = re.search(r"TABLE_NAME\s*=>\s*'((?:[^']|'')*)'", sql, re.I)
        table = unquote_all(table[1].replace("''", "'")) if table else None
        failed_only = re.search(r"WHERE\s+STATUS\s*<>\s*'Loaded'", sql, re.I) is not None
        out = [[load["file"], load["status"], load["error"]] for load in CATALOG["loads"]
               if load["table"] == table and not (failed_only and load["status"] == "Loaded")]
        return rows(["FILE_NAME", "STATUS", "FIRST_ERROR_MESSAGE"], out)
    return None


def dynamic_tables_statement(sql):
    """DYNAMIC_TABLES() answers each dynamic table created through here, refreshed at creation; a
    test records another refresh with the emulator-only statement
    `CALL FAKESNOW_RECORD_REFRESH('<table>', '<state>', '<message or empty>', <minutes ago>)`."""
    if m := re.match(r"CALL\s+FAKESNOW_RECORD_REFRESH\(\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*'([^']*)'\s*,\s*(\d+)\s*\)",
                     sql, re.I):
        at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=int(m[4]))
        CATALOG["dynamic"][unquote_all(m[1])] = {"at": at, "state": m[2], "message": m[3] or None}
        return status("Refresh recorded.")
    if m := re.match(r"SELECT\s.*\bFROM\s+TABLE\(\s*" + NAME + r"\.INFORMATION_SCHEMA\.DYNAMIC_TABLES\(\s*\)\s*\)\s*$",
                     sql, re.S | re.I):
        database, now, out = unquote(m[1]), dt.datetime.now(dt.timezone.utc), []
        for name, refresh in sorted(CATALOG["dynamic"].items()):
            db, schema, table = name.split(".")
            if db == database:
                age = int((now - refresh["at"]).total_seconds() // 60)
                out.append([schema, table, refresh["state"], refresh["message"], str(age)])
        return rows(["SCHEMA_NAME", "NAME", "STATE", "MESSAGE", "AGE_MINUTES"], out)
    return None


def note_dynamic_table(sql, response):
    """Remembers a dynamic table fakesnow created (or forgets a dropped one) for DYNAMIC_TABLES()."""
    if not json.loads(response.body).get("success"):
        return
    if m := re.match(r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?DYNAMIC\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?" + NAME, sql, re.I):
        now = dt.datetime.now(dt.timezone.utc)
        CATALOG["dynamic"][unquote_all(m[1])] = {"at": now, "state": "SUCCEEDED", "message": None}
    elif m := re.match(r"\s*DROP\s+DYNAMIC\s+TABLE\s+(?:IF\s+EXISTS\s+)?" + NAME, sql, re.I):
        CATALOG["dynamic"].pop(unquote_all(m[1]), None)


def unquote_all(name):
    """`"DB"."RAW"."T"` and `DB.RAW.T` name the same table."""
    return ".".join(part.strip('"') for part in re.findall(r'"[^"]+"|[^.]+', name))


def emulate(sql):
    sql = sql.strip().rstrip(";").strip()
    for handler in (integration_statement, stage_statement, pipe_statement, copy_history_statement,
                    dynamic_tables_statement):
        if (answer := handler(sql)) is not None:
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


def drop_file_format(request, sql):
    """fakesnow creates file formats (in its own catalog table) but cannot parse their DROP."""
    if not (m := re.match(r'\s*DROP\s+FILE\s+FORMAT\s+(IF\s+EXISTS\s+)?"([^"]+)"\."([^"]+)"\."([^"]+)"\s*$', sql, re.I)):
        return None
    conn = fs.to_conn(fs.to_token(request))
    where = "database_name = ? AND schema_name = ? AND name = ?"
    table = "_fs_global._fs_information_schema._fs_file_formats"
    found = conn._duck_conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", [m[2], m[3], m[4]]).fetchone()[0]
    if not found and not m[1]:
        return error(f"SQL compilation error:\nFile format '{m[4]}' does not exist or not authorized.")
    conn._duck_conn.execute(f"DELETE FROM {table} WHERE {where}", [m[2], m[3], m[4]])
    return status(f"{m[4]} successfully dropped.")


async def query_request(request: Request):
    payload = await payload_of(request)
    sql = payload.get("sqlText", "")
    # fakesnow parses CREATE DYNAMIC TABLE (as a table) but not its DROP.
    if re.match(r"\s*DROP\s+DYNAMIC\s+TABLE\b", sql, re.I):
        payload["sqlText"] = re.sub(r"DYNAMIC\s+TABLE", "TABLE", sql, count=1, flags=re.I)
    request = with_body(request, payload)
    async with LOCK:
        log(sql)
        use_database_of(request, sql)
        if (answer := drop_file_format(request, sql) or drop_database(request, sql)) is not None:
            return emulated_response(answer)
        if (answer := emulate(sql)) is not None:
            try:
                fs.to_conn(fs.to_token(request))  # an unknown session is refused, as fakesnow would
            except fs.ServerError as e:
                return JSONResponse({"data": None, "code": e.code, "message": e.message, "success": False}, e.status_code)
            return emulated_response(answer)
        response = as_json_rowset(await fs.query_request(request))
        note_dynamic_table(sql, response)
        return response


async def login_request(request: Request):
    payload = await payload_of(request)
    # The Rust connector sends SESSION_PARAMETERS only when it has some; fakesnow requires the key.
    payload.setdefault("data", {}).setdefault("SESSION_PARAMETERS", {})
    async with LOCK:
        return await fs.login_request(with_body(request, payload))


def main():
    port = int(sys.argv[1])
    lifeline.hold()
    routes = [Route("/session/v1/login-request", login_request, methods=["POST"]),
              Route("/queries/v1/query-request", query_request, methods=["POST"])]
    routes += [r for r in fs.routes if r.path not in ("/session/v1/login-request", "/queries/v1/query-request")]
    app = Starlette(routes=routes)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
