"""Pure logic of engine/gtid.py: GTID states of both flavours (MariaDB positions, MySQL sets with MySQL's
documented text forms), the checkpoint's state moving with applied transactions, the skip window, and the resume
scan over ``SHOW BINLOG EVENTS`` rows as MySQL 8 prints them (MySQL cannot run here; MariaDB's scan runs on real
servers in tests/integration/engine/test_gtid_failover.py)."""

from __future__ import annotations

import pytest

from airflow_provider_dts.engine import gtid
from airflow_provider_dts.engine.model import Checkpoint, Transaction
from airflow_provider_dts.engine.servers import ServerInfo

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "4d22eb58-82db-22f2-af44-d91bb0530673"


def test_mariadb_position_parse_contains_and_missing():
    st = gtid.MariadbPosition.parse("0-1-100,1-2-5")
    assert str(st) == "0-1-100,1-2-5"
    assert st.contains("0-1-100") and st.contains("0-3-7") and not st.contains("0-1-101")
    assert not st.contains("2-2-1")  # a domain it has never seen
    server = gtid.MariadbPosition.parse("0-1-120,1-2-4,5-5-9")
    assert server.missing_from(st) == ["1-2-5"]
    assert gtid.MariadbPosition.parse("0-1-100,1-2-5,7-7-1").missing_from(st) == []
    # the same sequence number written by another server is another history
    assert gtid.MariadbPosition.parse("0-9-100,1-2-5").missing_from(st) == ["0-1-100"]
    assert gtid.MariadbPosition.parse("[0-1-50]").within(st) and not server.within(st)
    with pytest.raises(ValueError, match="domain 0 twice"):
        gtid.MariadbPosition.parse("0-1-1,0-2-2")
    with pytest.raises(ValueError, match="not a MariaDB GTID"):
        gtid.MariadbPosition.parse("0-1")


def test_mysql_set_documented_forms():
    # gtid_executed as MySQL prints it: members sorted, separated by ",\n", intervals and single numbers
    st = gtid.MysqlSet.parse(f"{U1.upper()}:1-5:7:9-10,\n{U2}:1-3")
    assert str(st) == f"{U1}:1-5:7:9-10,{U2}:1-3"
    assert st.contains(f"{U1}:7") and not st.contains(f"{U1}:6") and not st.contains(f"{U2}:4")
    st.add(f"{U1}:6")
    st.add(f"{U1}:8")
    assert str(st) == f"{U1}:1-10,{U2}:1-3"
    # MySQL 8.4 tagged GTIDs: uuid:tag:n, kept apart from the untagged numbers of the same uuid
    tagged = gtid.MysqlSet.parse(f"{U1}:1-3:nightly:1-2")
    assert tagged.contains(f"{U1}:nightly:2") and not tagged.contains(f"{U1}:nightly:3") and tagged.contains(f"{U1}:3")
    assert gtid.MysqlSet.parse("").sets == {}
    with pytest.raises(ValueError, match="not a server UUID"):
        gtid.MysqlSet.parse("abc:1-3")


def test_mysql_set_missing_intervals():
    need = gtid.MysqlSet.parse(f"{U1}:1-100,{U2}:1-10")
    have = gtid.MysqlSet.parse(f"{U1}:1-40:45-100,{U2}:1-9")
    assert have.missing_from(need) == [f"{U1}:41-44", f"{U2}:10"]
    assert need.missing_from(have) == []
    assert have.within(need) and not need.within(have)


def test_event_info_of_both_flavours():
    assert gtid.gtid_of_event("mariadb", "Gtid", "BEGIN GTID 0-1-6 cid=12") == "0-1-6"
    assert gtid.gtid_of_event("mariadb", "Gtid", "GTID 11-11-5") == "11-11-5"
    assert gtid.gtid_of_event("mysql", "Gtid", f"SET @@SESSION.GTID_NEXT= '{U1}:23'") == f"{U1}:23"
    assert gtid.gtid_of_event("mysql", "Anonymous_Gtid", "SET @@SESSION.GTID_NEXT= 'ANONYMOUS'") is None
    assert str(gtid.header_state("mariadb", "Gtid_list", "[0-1-7,1-2-3]")) == "0-1-7,1-2-3"
    assert str(gtid.header_state("mysql", "Previous_gtids", f"{U1}:1-5,\n{U2}:1")) == f"{U1}:1-5,{U2}:1"
    assert gtid.header_state("mysql", "Format_desc", "Server ver: 8.4.3") is None


def _txn(end: int, g: str | None, rows: int = 0) -> Transaction:
    return Transaction(("binlog.000003", end - 10), ("binlog.000003", end), g, 0.0)


def test_checkpoint_state_moves_with_the_applied_transactions():
    old = Checkpoint(
        binlog_file="binlog.000003", binlog_pos=100, gtid_state=f"{U1}:1-5", gtid_state_at="binlog.000003:100"
    )
    new = Checkpoint(**old.__dict__)
    new.binlog_pos = 300
    gtid.advance(old, new, [_txn(200, f"{U1}:6"), _txn(300, f"{U1}:7")])
    assert (new.gtid_state, new.gtid_state_at) == (f"{U1}:1-7", "binlog.000003:300")
    # a transaction without a GTID (gtid_mode off, a tagged GTID the library cannot read): the state is unknown
    unknown = Checkpoint(**new.__dict__)
    unknown.binlog_pos = 400
    gtid.advance(new, unknown, [_txn(400, None)])
    assert unknown.gtid_state is None and not gtid.state_valid(unknown)
    # a state that does not describe the checkpoint's position (another writer moved it) is not carried on
    stale = Checkpoint(binlog_file="binlog.000003", binlog_pos=500, gtid_state="0-1-5", gtid_state_at="binlog.000003:1")
    moved = Checkpoint(**stale.__dict__)
    moved.binlog_pos = 600
    gtid.advance(stale, moved, [_txn(600, "0-1-6")])
    assert moved.gtid_state is None
    # an empty state (a server that never wrote a transaction) takes its flavour from the first GTID
    empty = Checkpoint(binlog_file="binlog.000001", binlog_pos=4, gtid_state="", gtid_state_at="binlog.000001:4")
    after = Checkpoint(**empty.__dict__)
    after.binlog_file, after.binlog_pos = "binlog.000003", 200
    gtid.advance(empty, after, [_txn(200, "3-3-1")])
    assert after.gtid_state == "3-3-1"


def test_skip_window_drops_only_transactions_already_applied():
    cp = Checkpoint(
        binlog_file="binlog.000003",
        binlog_pos=100,
        gtid_state="41-41-50,42-42-4",
        gtid_state_at="binlog.000003:100",
        gtid_skip_until="binlog.000003:900",
    )
    old_row = Transaction(("binlog.000003", 100), ("binlog.000003", 200), "41-41-50", 0.0, changes=[object()])  # type: ignore[list-item]
    kept = gtid.skip_applied(old_row, cp)
    assert kept.changes == [] and kept.ddl is None and kept.end_position == ("binlog.000003", 200)
    new_row = Transaction(("binlog.000003", 200), ("binlog.000003", 300), "42-42-5", 0.0, changes=[object()])  # type: ignore[list-item]
    assert gtid.skip_applied(new_row, cp) is new_row
    past = Transaction(("binlog.000003", 900), ("binlog.000003", 1000), "41-41-10", 0.0, changes=[object()])  # type: ignore[list-item]
    assert gtid.skip_applied(past, cp) is past  # after the window nothing is skipped
    # the skipped transactions do not move the state back (MariaDB: the last GTID of a domain only grows)
    moved = Checkpoint(**cp.__dict__)
    moved.binlog_pos = 200
    earlier = Transaction(("binlog.000003", 100), ("binlog.000003", 200), "41-41-10", 0.0)
    assert gtid.skip_applied(earlier, cp).changes == []
    gtid.advance(cp, moved, [earlier])
    assert moved.gtid_state == "41-41-50,42-42-4"
    # the window ends once the checkpoint passes it
    new = Checkpoint(**cp.__dict__)
    new.binlog_pos = 900
    gtid.advance(cp, new, [_txn(900, "42-42-5")])
    assert new.gtid_skip_until is None


def _mysql(**variables: str) -> ServerInfo:
    return ServerInfo(
        flavour="mysql",
        version=(8, 4, 3),
        version_string="8.4.3",
        variables={"gtid_mode": "ON", "log_replica_updates": "ON", "server_id": "7", **variables},
        current_user="u@%",
    )


def _gtid_row(file: str, pos: int, end: int, g: str):
    return (file, pos, "Gtid", end, f"SET @@SESSION.GTID_NEXT= '{g}'")


def _txn_rows(file: str, pos: int, g: str) -> list[tuple]:
    """A MySQL 8 row transaction as SHOW BINLOG EVENTS prints it: Gtid, Query BEGIN, Table_map, Write_rows, Xid."""
    return [
        _gtid_row(file, pos, pos + 79, g),
        (file, pos + 79, "Query", pos + 150, "BEGIN"),
        (file, pos + 150, "Table_map", pos + 200, "table_id: 90 (shop.t)"),
        (file, pos + 200, "Write_rows", pos + 240, "table_id: 90 flags: STMT_END_F"),
        (file, pos + 240, "Xid", pos + 271, "COMMIT /* xid=12 */"),
    ]


def _reader(binlog: dict[str, list[tuple]]):
    def read(file: str, pos: int, limit: int):
        return [r for r in binlog[file] if r[1] >= pos][:limit]

    return read


def _mysql_binlog(order: list[str]) -> dict[str, list[tuple]]:
    head = [
        ("binlog.000002", 4, "Format_desc", 126, "Server ver: 8.4.3, Binlog ver: 4"),
        ("binlog.000002", 126, "Previous_gtids", 197, f"{U1}:1-10"),
    ]
    rows, pos = list(head), 197
    for g in order:
        rows += _txn_rows("binlog.000002", pos, g)
        pos += 271
    return {
        "binlog.000001": [
            ("binlog.000001", 4, "Format_desc", 126, "Server ver: 8.4.3, Binlog ver: 4"),
            ("binlog.000001", 126, "Previous_gtids", 157, ""),
        ],
        "binlog.000002": rows,
    }


def test_mysql_resume_continues_after_exactly_the_checkpoint():
    # the new server replicated U1:11-13 from the old source and then wrote U2:1 itself
    binlog = _mysql_binlog([f"{U1}:11", f"{U1}:12", f"{U1}:13", f"{U2}:1"])
    state = gtid.MysqlSet.parse(f"{U1}:1-12")
    found = gtid.find_resume(None, _mysql(), state, events=_reader(binlog), files=sorted(binlog))
    assert found.start_file == "binlog.000002"
    assert found.position == ("binlog.000002", 197 + 2 * 271)  # the Gtid event of U1:13
    assert found.skip_until is None
    # everything held: the position after the last transaction
    whole = gtid.MysqlSet.parse(f"{U1}:1-13,{U2}:1")
    done = gtid.find_resume(None, _mysql(), whole, events=_reader(binlog), files=sorted(binlog))
    assert done.position == ("binlog.000002", 197 + 4 * 271) and done.skip_until is None


def test_mysql_resume_skips_transactions_the_checkpoint_holds_in_another_order():
    # the new server logged U2:1 (its own, not on the old source) between replicated transactions
    binlog = _mysql_binlog([f"{U1}:11", f"{U2}:1", f"{U1}:12", f"{U1}:13"])
    state = gtid.MysqlSet.parse(f"{U1}:1-12")
    found = gtid.find_resume(None, _mysql(), state, events=_reader(binlog), files=sorted(binlog))
    assert found.position == ("binlog.000002", 197 + 271)  # U2:1 is applied ...
    assert found.skip_until == ("binlog.000002", 197 + 3 * 271)  # ... U1:12 after it is skipped


def test_mysql_resume_refuses_purged_history():
    binlog = _mysql_binlog([f"{U1}:11"])
    del binlog["binlog.000001"]
    state = gtid.MysqlSet.parse(f"{U1}:1-5")  # the file starts at U1:1-10: U1:6-10 were purged
    with pytest.raises(gtid.GtidResumeImpossible, match="purged"):
        gtid.find_resume(None, _mysql(), state, events=_reader(binlog), files=sorted(binlog))


def test_resume_available_per_flavour():
    assert gtid.resume_available(_mysql()) == (True, "")
    assert gtid.resume_available(_mysql(gtid_mode="OFF", log_replica_updates="OFF")) == (
        False,
        "gtid_mode, log_replica_updates",
    )
    maria = ServerInfo(
        flavour="mariadb",
        version=(10, 11, 9),
        version_string="10.11.9-MariaDB",
        variables={"gtid_strict_mode": "OFF", "log_slave_updates": "ON"},
        current_user="u@%",
    )
    assert gtid.resume_available(maria) == (False, "gtid_strict_mode")
