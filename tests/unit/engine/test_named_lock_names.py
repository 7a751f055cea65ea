"""Names of the named locks a sync takes (``servers.lock_name``): readable when short, never over the 64 characters
MySQL 5.7+ accepts in GET_LOCK, and different syncs never share one."""

from __future__ import annotations

import hashlib

from airflow_provider_dts.engine.ddl_owner import owner_lock_name
from airflow_provider_dts.engine.resolve import answer_lock_name
from airflow_provider_dts.engine.servers import lock_name


def test_short_names_are_readable():
    assert lock_name("dts_x", "dts_meta", "orders") == "dts_x:dts_meta:orders"
    assert owner_lock_name("dts_meta", "x") == "dts_ddl_owner:dts_meta:x"
    assert answer_lock_name("dts_meta", "x") == "dts_answer:dts_meta:x"


def test_long_names_are_hashed_within_the_limit_and_stay_apart():
    raw = "dts_answer:" + "m" * 64 + ":" + "t" * 64
    assert answer_lock_name("m" * 64, "t" * 64) == "dts_answer:" + hashlib.sha1(raw.encode()).hexdigest()
    names = {
        f(c, t)
        for f in (owner_lock_name, answer_lock_name)
        for c, t in (("m" * 64, "t" * 64), ("m" * 64, "t" * 63 + "u"))
    }
    assert len(names) == 4 and all(len(n) <= 64 for n in names)
    assert len(lock_name("p", "x" * 62)) == 64 and lock_name("p", "x" * 62) == "p:" + "x" * 62  # at the limit: kept
    assert lock_name("p", "x" * 63) == "p:" + hashlib.sha1(("p:" + "x" * 63).encode()).hexdigest()
