"""Parses every statement of a golden SQL file with sqlglot's Snowflake dialect; exit 1 on any failure.

sqlglot (a dependency of fakesnow, pinned with it) parses CREATE STORAGE INTEGRATION, CREATE STAGE,
CREATE DYNAMIC TABLE and SELECTs into full syntax trees. It falls back to a generic Command for
CREATE PIPE and for ALTER STAGE / PIPE / STORAGE INTEGRATION / FILE FORMAT: for a pipe, the COPY
INTO after AS is parsed on its own; an ALTER must match Snowflake's documented grammar for the
clauses flixops uses. Every statement is also held to the forms the docs require where a parser
accepts more:

- ALTER STORAGE INTEGRATION: STORAGE_AWS_EXTERNAL_ID only with STORAGE_AWS_ROLE_ARN, as an option
  of it (https://docs.snowflake.com/en/sql-reference/sql/alter-storage-integration);
- TARGET_LAG: '<num> { seconds | minutes | hours | days }' or DOWNSTREAM
  (https://docs.snowflake.com/en/sql-reference/sql/create-dynamic-table);
- MODIFIED_AFTER: ISO 8601 with an explicit offset, '2026-10-02T21:30:00+00:00'
  (https://docs.snowflake.com/en/user-guide/data-load-snowpipe-manage);
- a name inside a string argument (FORMAT_NAME = '…', SYSTEM$PIPE_*('…'), TABLE_NAME => '…') as the
  docs write it, '<db>.<schema>.<name>', without inner double quotes for plain names
  (https://docs.snowflake.com/en/sql-reference/functions/system_pipe_status);
- SYSTEM$PIPE_FORCE_RESUME's second argument: the documented overrides
  (https://docs.snowflake.com/en/sql-reference/functions/system_pipe_force_resume).

Usage: python sqlglot_check.py FILE.sql
"""

import re
import sys

import sqlglot
from sqlglot import exp

NAME = r'(?:"[^"]+"\.)*"[^"]+"'
STRING = r"'(?:[^'\\]|\\.)*'"
ALTERS = [
    rf"ALTER STORAGE INTEGRATION {NAME} SET( STORAGE_AWS_ROLE_ARN = {STRING}( STORAGE_AWS_EXTERNAL_ID = {STRING})?"
    rf"| ENABLED = (TRUE|FALSE)| STORAGE_ALLOWED_LOCATIONS = \({STRING}(, {STRING})*\))+",
    rf"ALTER STAGE {NAME} SET URL = {STRING} STORAGE_INTEGRATION = {NAME}",
    rf"ALTER PIPE {NAME} SET PIPE_EXECUTION_PAUSED = (TRUE|FALSE)",
    # https://docs.snowflake.com/en/sql-reference/sql/alter-pipe: UNSET COMMENT
    rf"ALTER PIPE {NAME} UNSET COMMENT",
    rf"ALTER PIPE {NAME} REFRESH MODIFIED_AFTER = '\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d'",
    rf"ALTER FILE FORMAT {NAME} SET USE_LOGICAL_TYPE = (TRUE|FALSE)",
    rf"CREATE FILE FORMAT IF NOT EXISTS {NAME} TYPE = PARQUET USE_LOGICAL_TYPE = TRUE",
    rf"CREATE OR REPLACE FILE FORMAT {NAME} TYPE = PARQUET USE_LOGICAL_TYPE = TRUE",
]
PLAIN_NAME = r"[A-Z_][A-Z0-9_$]*(\.[A-Z_][A-Z0-9_$]*)*"
NAME_ARGUMENTS = r"(FORMAT_NAME = |SYSTEM\$PIPE_\w+\(|TABLE_NAME => )'([^']*)'"


def parse(sql):
    return sqlglot.parse_one(sql, read="snowflake", error_level=sqlglot.ErrorLevel.RAISE)


def grammar(sql):
    """The documented forms a parser does not enforce."""
    for _, name in re.findall(NAME_ARGUMENTS, sql):
        if not re.fullmatch(PLAIN_NAME, name):
            return f"the name {name!r} inside a string argument is not in the docs' '<db>.<schema>.<name>' form"
    for lag in re.findall(r"TARGET_LAG = ('[^']*'|\w+)", sql):
        if lag != "DOWNSTREAM" and not re.fullmatch(r"'\d+ (seconds|minutes|hours|days)'", lag):
            return f"TARGET_LAG = {lag} is not '<num> {{ seconds | minutes | hours | days }}' nor DOWNSTREAM"
    if m := re.search(r"SYSTEM\$PIPE_FORCE_RESUME\('[^']*', '([^']*)'\)", sql):
        options = {o.strip().upper() for o in m[1].split(",")}
        if not options <= {"STALENESS_CHECK_OVERRIDE", "OWNERSHIP_TRANSFER_CHECK_OVERRIDE"}:
            return f"SYSTEM$PIPE_FORCE_RESUME option {m[1]!r} is not documented"
    return None


def check(sql):
    if problem := grammar(sql):
        return problem
    tree = parse(sql)
    if not isinstance(tree, exp.Command):
        if isinstance(tree, exp.Create) and tree.args.get("kind") in ("TABLE", "DYNAMIC TABLE") and tree.expression is None:
            return "a CREATE TABLE … AS without its query"
        return None
    # https://docs.snowflake.com/en/sql-reference/sql/create-pipe: AUTO_INGEST, then COMMENT, then AS.
    if m := re.match(rf"CREATE (OR REPLACE )?PIPE (IF NOT EXISTS )?{NAME} AUTO_INGEST = TRUE( COMMENT = {STRING})? "
                     rf"AS (COPY INTO .*)$", sql, re.S):
        copy = parse(m[4])
        return None if isinstance(copy, exp.Copy) else f"the pipe's COPY parsed as {type(copy).__name__}"
    if any(re.fullmatch(a, sql, re.S) for a in ALTERS):
        return None
    return "not a statement flixops is known to send"


def main():
    text = open(sys.argv[1]).read()
    statements = [s.strip() for s in re.split(r";\s*\n", text) if s.strip()]
    failures = 0
    for sql in statements:
        try:
            problem = check(sql)
        except Exception as e:  # sqlglot's ParseError and friends
            problem = f"parse error: {e}"
        if problem:
            failures += 1
            print(f"FAILED: {problem}\n  {sql[:300]}")
    print(f"{len(statements)} statements, {failures} failed")
    sys.exit(1 if failures or not statements else 0)


if __name__ == "__main__":
    main()
