"""The short fault-injection suite (bench/chaos.py): under writes on both sides, every fault round ends with
both sides equal and nothing lost, doubled or echoed. Then the detectors are shown to see real damage."""

import pytest

from bench.chaos import Chaos, run_suite, sql

SMOKE = {
    "sigkill": 3,
    "unreachable_seconds": 3,
    "locks": 2,
    "two_appliers_seconds": 1,
    "trigger_restarts": 1,
    "sigkill_after": 1,
}


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    c = run_suite(tmp_path_factory.mktemp("chaos"), SMOKE, quiet=True, keep_running=True)
    yield c
    c.stop()


@pytest.mark.own_servers
def test_every_fault_round_loses_doubles_and_echoes_nothing(chaos: Chaos):
    faults = [r.fault for r in chaos.results]
    assert faults == [
        "SIGKILL sync process",
        "restart server A",
        "restart server B",
        "server B unreachable",
        "lock waits / deadlocks on B",
        "two appliers, one direction",
        "trigger host restarted",
        "SIGKILL sync process",
    ]
    print("\n" + chaos.table())
    for r in chaos.results:
        assert r.rows_written > 100, f"{r.fault}: the load wrote too little to mean anything"
        assert (r.lost, r.doubled, r.echoes) == (0, 0, 0), r


@pytest.mark.own_servers
def test_the_detectors_see_a_lost_row_a_doubled_row_and_an_echo(chaos: Chaos):
    """Damage written on B inside transactions that carry the sync's mark (so task two drops them, like it
    drops everything the sync writes): the counters must see each piece."""
    lost0, doubled0, echoes0 = chaos.measure()
    a_key = sql(chaos.pair.a, "SELECT MIN(id) FROM shop.acct WHERE owner='A'")[0][0]
    b_key, b_note = sql(chaos.pair.b, "SELECT id, note FROM shop.acct WHERE owner='B' ORDER BY id LIMIT 1")[0]
    with chaos.pair.b.root_connect() as conn, conn.cursor() as cur:
        cur.execute("START TRANSACTION")
        cur.execute(
            "UPDATE dts_meta.checkpoint SET updated_at=UTC_TIMESTAMP(6) WHERE task_name='chaos' AND direction='forward'"
        )
        cur.execute("DELETE FROM shop.acct WHERE id=%s", (a_key,))  # an A-row lost on B
        cur.execute("INSERT INTO shop.acct VALUES (%s, 'A', 0, 'x')", (10**12 + 10**11,))  # an A-row only on B
        cur.execute("UPDATE shop.acct SET note='echo' WHERE id=%s", (b_key,))  # B's own row, applied
        cur.execute("UPDATE shop.acct SET note=%s WHERE id=%s", (b_note, b_key))  # by "the sync": echo x2
        cur.execute("COMMIT")
    lost, doubled, echoes = chaos.measure()
    assert (lost - lost0, doubled - doubled0, echoes - echoes0) == (1, 1, 2)
