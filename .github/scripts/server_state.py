"""What the external-server test mode must leave as it found it on the servers DTS_TEST_EXTERNAL_A / _B name.

    python .github/scripts/server_state.py record STATE.json   # before the suite
    python .github/scripts/server_state.py check STATE.json    # after it: exit 1 naming every difference

Compares the global settings tests change (and those the suite needs), the oldest binary log still on the server
(a purge removes it; a rotation adds newer ones and is fine) and the accounts (the suite drops what it creates).
The administrative password is read from the URL's password_file and is never printed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from airflow_provider_dts.localpair import EXTERNAL_ENV, ExternalServer

GLOBALS = (
    "max_allowed_packet",
    "innodb_lock_wait_timeout",
    "log_bin_trust_function_creators",
    "binlog_format",
    "binlog_row_image",
    "binlog_row_metadata",
    "local_infile",
    "character_set_server",
    "sql_mode",
    "time_zone",
)


def state(server: ExternalServer) -> dict:
    with server.root_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT " + ", ".join(f"@@GLOBAL.{name}" for name in GLOBALS))
        settings = {name: str(value) for name, value in zip(GLOBALS, cur.fetchone())}
        cur.execute("SHOW BINARY LOGS")
        first_binlog = cur.fetchone()[0]
        cur.execute("SELECT User, Host FROM mysql.user")
        accounts = sorted(f"'{user}'@'{host}'" for user, host in cur.fetchall())
    return {"globals": settings, "first_binlog": first_binlog, "accounts": accounts}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("record", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    action, path = argv[0], Path(argv[1])
    now = {name: state(ExternalServer.from_url(name, os.environ[name])) for name in EXTERNAL_ENV}
    if action == "record":
        path.write_text(json.dumps(now, indent=2))
        print(f"recorded {', '.join(EXTERNAL_ENV)}: {json.dumps(now)}")
        return 0
    before = json.loads(path.read_text())
    problems = []
    for name in EXTERNAL_ENV:
        was, is_ = before[name], now[name]
        for var in GLOBALS:
            if was["globals"][var] != is_["globals"][var]:
                problems.append(f"{name}: {var} was {was['globals'][var]!r}, is {is_['globals'][var]!r}")
        if was["first_binlog"] != is_["first_binlog"]:
            problems.append(f"{name}: binary logs purged (oldest was {was['first_binlog']}, is {is_['first_binlog']})")
        added = sorted(set(is_["accounts"]) - set(was["accounts"]))
        removed = sorted(set(was["accounts"]) - set(is_["accounts"]))
        if added:
            problems.append(f"{name}: accounts left behind: {', '.join(added)}")
        if removed:
            problems.append(f"{name}: accounts dropped: {', '.join(removed)}")
    for p in problems:
        print(f"::error::{p}")
    if not problems:
        print(f"{' and '.join(EXTERNAL_ENV)}: settings, binary logs and accounts as before the suite")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
