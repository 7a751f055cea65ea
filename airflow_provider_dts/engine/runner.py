"""Run one sync direction in its own process until SIGTERM / SIGINT (clean stop).

    DTS_DIRECTION='{"task_name": ..., "role": "forward", ...}' \\
    DTS_SOURCE='{"host": "127.0.0.1", "port": 3306, "user": "dts", "password": "..."}' \\
    DTS_DESTINATION='{...}' \\
    python -m airflow_provider_dts.engine.runner [--max-runtime SECONDS] [--log-level INFO]

Connection settings come from the environment only, never from the command line (which other users of the
machine can read). ``DTS_SOURCE`` / ``DTS_DESTINATION`` hold ``ConnectionSettings`` fields as JSON. When they
are absent, the Airflow-style variables ``AIRFLOW_CONN_<CONN_ID>`` of the direction's connection ids are read
(JSON form: conn_type, host, port, login, password, schema, extra), without importing Airflow.

Exit status: 0 after a clean stop (or max runtime), 1 when the direction failed, 2 on bad input.
The last line on stdout is the run result as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import asdict
from typing import Any
from urllib.parse import unquote, urlparse

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.errors import ConfigError
from airflow_provider_dts.engine.incremental import run_direction
from airflow_provider_dts.engine.servers import ConnectionSettings

_SETTINGS_FIELDS = set(ConnectionSettings.__dataclass_fields__)


def settings_from_env(var: str, conn_id: str) -> ConnectionSettings:
    raw = os.environ.get(var)
    if raw:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ConfigError([f"{var}: not valid JSON ({e.msg})"]) from None
        unknown = set(data) - _SETTINGS_FIELDS
        if unknown:
            raise ConfigError(
                [
                    f"{var}: unknown field(s) {', '.join(sorted(unknown))}; "
                    f"allowed: {', '.join(sorted(_SETTINGS_FIELDS))}"
                ]
            )
        data.setdefault("name", conn_id)
        return ConnectionSettings(**data)
    airflow_var = f"AIRFLOW_CONN_{conn_id.upper()}"
    raw = os.environ.get(airflow_var)
    if not raw:
        raise ConfigError(
            [
                f"{var}: not set, and neither is {airflow_var}; give the connection settings of "
                f"{conn_id!r} in one of them"
            ]
        )
    return _from_airflow_conn(raw, conn_id, airflow_var)


def _from_airflow_conn(raw: str, conn_id: str, var: str) -> ConnectionSettings:
    raw = raw.strip()
    if raw.startswith("{"):
        data: dict[str, Any] = json.loads(raw)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra or "{}")
        return ConnectionSettings(
            host=data.get("host") or "127.0.0.1",
            port=int(data.get("port") or 3306),
            user=data.get("login") or "root",
            password=data.get("password") or "",
            unix_socket=extra.get("unix_socket"),
            ssl=extra.get("ssl"),
            name=conn_id,
        )
    u = urlparse(raw)
    if not u.hostname:
        raise ConfigError([f"{var}: cannot read a host from the connection URI"])
    return ConnectionSettings(
        host=u.hostname,
        port=u.port or 3306,
        user=unquote(u.username or "root"),
        password=unquote(u.password or ""),
        name=conn_id,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_dts.engine.runner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--max-runtime", type=float, default=None)
    parser.add_argument("--log-level", default=os.environ.get("DTS_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pymysqlreplication").setLevel(logging.ERROR)
    try:
        raw = os.environ.get("DTS_DIRECTION")
        if not raw:
            raise ConfigError(["DTS_DIRECTION: not set; give the direction's settings as JSON"])
        direction = SyncDirection.from_json(raw)
        source = settings_from_env("DTS_SOURCE", direction.source_conn_id)
        destination = settings_from_env("DTS_DESTINATION", direction.destination_conn_id)
    except (ConfigError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum, frame):
        logging.getLogger(__name__).info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    result = run_direction(
        direction,
        source,
        destination,
        stop=stop,
        max_runtime=args.max_runtime,
        logger=logging.getLogger(f"dts.{direction.key}"),
    )
    print(json.dumps(asdict(result), default=str), flush=True)
    return 1 if result.outcome == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
