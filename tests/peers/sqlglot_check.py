"""Parses every statement of a golden SQL file with sqlglot's Snowflake dialect; exit 1 on any failure.

sqlglot (a dependency of fakesnow, pinned with it) parses CREATE STORAGE INTEGRATION, CREATE STAGE
and CREATE DYNAMIC TABLE into full syntax trees. It falls back to a generic Command for CREATE PIPE
and for ALTER STAGE / PIPE / STORAGE INTEGRATION: for a pipe, the COPY INTO after AS is parsed on
its own; an ALTER must match Snowflake's documented grammar for the clauses flixops uses.

Usage: python sqlglot_check.py FILE.sql
"""

import re
import sys

import sqlglot
from sqlglot import exp

NAME = r'(?:"[^"]+"\.)*"[^"]+"'
STRING = r"'(?:[^'\\]|\\.)*'"
ALTERS = [
    rf"ALTER STORAGE INTEGRATION {NAME} SET( (ENABLED = (TRUE|FALSE)|STORAGE_AWS_ROLE_ARN = {STRING}|STORAGE_ALLOWED_LOCATIONS = \({STRING}(, {STRING})*\)|STORAGE_AWS_EXTERNAL_ID = {STRING}))+",
    rf"ALTER STAGE {NAME} SET URL = {STRING} STORAGE_INTEGRATION = {NAME}",
    rf"ALTER PIPE {NAME} SET PIPE_EXECUTION_PAUSED = (TRUE|FALSE)",
    rf"ALTER PIPE {NAME} REFRESH MODIFIED_AFTER = {STRING}",
]


def parse(sql):
    return sqlglot.parse_one(sql, read="snowflake", error_level=sqlglot.ErrorLevel.RAISE)


def check(sql):
    tree = parse(sql)
    if not isinstance(tree, exp.Command):
        if isinstance(tree, exp.Create) and tree.args.get("kind") in ("TABLE", "DYNAMIC TABLE") and tree.expression is None:
            return "a CREATE TABLE … AS without its query"
        return None
    if m := re.match(rf"CREATE (OR REPLACE )?PIPE (IF NOT EXISTS )?{NAME} AUTO_INGEST = TRUE AS (COPY INTO .*)$", sql, re.S):
        copy = parse(m[3])
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
