"""Which direction of a two-way sync applies DDL (its DDL owner), and DTS's "switch direction".

DDL goes one way (README "DDL in one direction"). By default task one (forward, A -> B) applies the DDL made on A,
unless its ``exclude_ddl`` is on, and task two (reverse, B -> A) applies none. ``switch_direction`` makes the other
side the owner on a running pair (and back again): a runtime operation, recorded in the control schema of BOTH
servers (table ``ddl_owner``, control migration 7; the servers are the truth, nothing is kept in Airflow). The
configuration rule stays: task two's settings always say ``exclude_ddl``; the owner rule below decides.

Each switch is one row ``(task_name, seq, owner, state, a_file/a_pos, b_file/b_pos, switched_at, switched_by)``:
``owner`` applies DDL from this switch on; ``a`` is a position in A's binlog (task one's source), ``b`` in B's (task
two's source); ``state`` is ``switching`` until the new owner's position is recorded, then ``done``.

THE RULE. A direction reads one source S (forward reads A, reverse reads B). A switch's threshold on S is its
position for S (``a`` for A, ``b`` for B; while it is ``switching`` the new owner's side has none yet: no position
is after it). A DDL transaction ending at position X in S's binlog is owned by

    the owner of the latest switch whose threshold on S is before X (threshold < X), else ``forward``;

and the direction reading S applies it if and only if it is that owner (forward never does with exclude_ddl on).
So a switch from forward to reverse recorded at P_old (A's position then) and P_new (B's, read later):

- DDL on A ending at or before P_old is still applied by forward; DDL on A after P_old is not (logged in
  ``ddl_log`` as skipped, with a warning: A no longer owns DDL; task two's own DDL applied to A arrives back the
  same way and is skipped too);
- DDL on B ending after P_new is applied by reverse, with the reverse's own name mapping (task one's inverted),
  the same crash safety (``checkpoint.ddl_pending``) and the same replay rules (``ddl.apply_ddl``); DDL on B at or
  before P_new is not (as before the switch: it was not the owner's side).

The decision depends only on X and the recorded rows, so a replay after a crash decides the same way.

HOW A SWITCH STAYS SAFE ON A RUNNING PAIR (``switch_direction``), in two steps. Each step holds the named lock
``owner_lock_name`` on both servers while it reads one binlog position and records it, and a direction reads the
rows under the same lock on its destination whenever a DDL transaction arrives (``applies_ddl``; DDL is rare), so
no DDL is decided against a row that is being written:

1. P_old = the old owner's source position now; the row is recorded with P_old for that side and no position for
   the new owner's side (state ``switching``): the old owner keeps its DDL up to P_old, nobody applies later DDL.
   The row written on the old owner's source also moves its binlog past P_old, so an idle old owner reaches it.
2. Wait (up to ``wait`` seconds) until the old owner's checkpoint is at or after P_old with no DDL pending: every
   DDL it carried over is then in the new owner's source binlog. Only then P_new = the new owner's source position
   now, recorded (state ``done``). Because P_new is read after the old owner caught up, the new owner never applies
   back a statement the old owner applied on its source.

A switch is refused while DDL is pending on either side (``checkpoint.ddl_pending``), while another switch to the
other side is still completing, when a direction has never run (no checkpoint), and when task one excludes DDL
(then no side's DDL is applied: there is nothing to switch). When the old owner does not reach P_old in time (it is
stopped), the switch stays ``switching`` (no side applies DDL made after it started) and the same command run again
completes it.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import logging
import socket
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import pymysql

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.control import ControlSchema
from airflow_provider_dts.engine.errors import DtsError
from airflow_provider_dts.engine.model import Position, format_position, position_key, position_le
from airflow_provider_dts.engine.servers import ConnectionSettings, NamedLock, binlog_position, server_info

log = logging.getLogger(__name__)

ROLES = ("forward", "reverse")
DEFAULT_OWNER = "forward"
ROLE_LABEL = {"forward": "task one (forward)", "reverse": "task two (reverse)"}
SOURCE_SIDE = {"forward": "a", "reverse": "b"}  # the server each direction reads: A for task one, B for task two
HOME_SIDE = {"forward": "b", "reverse": "a"}  # the server each direction writes (its home): B for task one, A for two
SWITCHING = "switching"
DONE = "done"
LOCK_WAIT_SECONDS = 30  # a switch holds the lock for a few statements; a direction waits this long at most


class SwitchRefused(DtsError):
    """A switch of the DDL owner cannot be made now (the message says why and what to do)."""


@dataclass(frozen=True)
class Switch:
    """One row of ``<control>.ddl_owner``."""

    seq: int
    owner: str  # the direction that applies DDL from this switch on
    state: str  # SWITCHING | DONE
    a: Position | None  # threshold in A's binlog (task one's source)
    b: Position | None  # threshold in B's binlog (task two's source)
    switched_at: _dt.datetime | None = None
    switched_by: str | None = None
    completed_at: _dt.datetime | None = None

    def threshold(self, side: str) -> Position | None:
        return self.a if side == "a" else self.b

    def label(self) -> str:
        when = f"{self.switched_at:%Y-%m-%d %H:%M:%S} UTC" if self.switched_at else "?"
        return f"switch {self.seq} (by {self.switched_by or '?'} at {when})"

    def describe(self) -> str:
        return (
            f"{self.label()} to {ROLE_LABEL[self.owner]} (A {format_position(self.a)}, B {format_position(self.b)}, "
            f"{self.state})"
        )


def other(role: str) -> str:
    return "reverse" if role == "forward" else "forward"


def owner_at(switches: Iterable[Switch], side: str, end: Position) -> tuple[str, Switch | None]:
    """THE RULE (module docstring): the owner of a DDL transaction ending at ``end`` in the binlog of ``side``
    ('a' or 'b'), and the switch that made it the owner (None: the default owner, no switch before ``end``)."""
    found: Switch | None = None
    for sw in sorted(switches, key=lambda s: s.seq):
        t = sw.threshold(side)
        if t is not None and position_key(t) < position_key(end):
            found = sw
    return (found.owner, found) if found is not None else (DEFAULT_OWNER, None)


def current_owner(switches: Iterable[Switch]) -> str:
    """The owner for DDL made from now on: that of the last completed switch (default: forward)."""
    done = [s for s in switches if s.state == DONE]
    return max(done, key=lambda s: s.seq).owner if done else DEFAULT_OWNER


@dataclass(frozen=True)
class Decision:
    """Whether a direction applies one DDL transaction; truthy when it does. ``reason`` says why not; ``warn``:
    the statement was made on a side that does not own DDL since a switch (or while a switch completes)."""

    applies: bool
    reason: str = ""
    warn: bool = False

    def __bool__(self) -> bool:
        return self.applies


OWNER_LOCK = NamedLock(
    "dts_ddl_owner",
    "DDL owner lock",
    "a switch of the DDL owner holds it for a moment only",
    "look for a hung switch-direction command",
    LOCK_WAIT_SECONDS,
)


def owner_lock_name(control_schema: str, task_name: str) -> str:
    return OWNER_LOCK.name(control_schema, task_name)


def read_switches(conn: pymysql.connections.Connection, control: ControlSchema, task_name: str) -> list[Switch]:
    """Every switch of ``task_name`` recorded on this server, in order (none before control migration 7)."""
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT seq, owner, state, a_file, a_pos, b_file, b_pos, switched_at, switched_by, completed_at "
                f"FROM {control.table('ddl_owner')} WHERE task_name=%s ORDER BY seq",
                (task_name,),
            )
            rows = cur.fetchall()
    except pymysql.err.ProgrammingError as e:
        if e.args and e.args[0] in (1049, 1146):  # no control schema / table yet: never switched
            return []
        raise
    return [
        Switch(
            int(r[0]),
            str(r[1]),
            str(r[2]),
            (str(r[3]), int(r[4])) if r[3] is not None else None,
            (str(r[5]), int(r[6])) if r[5] is not None else None,
            r[7],
            r[8],
            r[9],
        )
        for r in rows
    ]


def applies_ddl(conn: pymysql.connections.Connection, direction: SyncDirection, end: Position) -> Decision:
    """Whether ``direction`` applies the DDL transaction ending at ``end`` on its source (THE RULE).

    ``conn`` is the direction's destination session (the applier's): the rows are read there, fresh, under the
    owner lock, each time a DDL transaction arrives. The session's transaction is committed before and after the
    read (call it between groups, as ``ddl.apply_ddl`` does)."""
    d = direction
    if d.role == "forward" and d.exclude_ddl:
        return Decision(False, "DDL is excluded for this direction (exclude_ddl)")
    control = ControlSchema(d.control_schema)
    home = (conn, f"the destination of {d.key}")
    # the home of task one is B, that of task two is A
    with OWNER_LOCK.held(owner_lock_name(d.control_schema, d.task_name), **{HOME_SIDE[d.role]: home}):
        conn.commit()  # a fresh snapshot: see what a switch committed a moment ago
        switches = read_switches(conn, control, d.task_name)
        conn.commit()
    owner, by = owner_at(switches, SOURCE_SIDE[d.role], end)
    if owner == d.role:
        return Decision(True)
    completing = [s for s in switches if s.state == SWITCHING and s.owner == d.role]
    if completing:
        return Decision(
            False,
            f"{completing[-1].describe()} is still completing: DDL made on this side before it completes is not "
            "applied; run it on the other server by hand if it is needed there (a statement the other direction "
            "applied here arrives back and is skipped the same way)",
            warn=True,
        )
    if by is None:
        return Decision(False, f"{ROLE_LABEL[owner]} applies DDL; make schema changes on its source")
    return Decision(
        False,
        f"{ROLE_LABEL[owner]} owns DDL since {by.label()}: DDL made on this side after "
        f"{format_position(by.threshold(SOURCE_SIDE[d.role]))} is not applied; make schema changes on "
        f"{ROLE_LABEL[owner]}'s source (a statement it applied here arrives back and is skipped the same way)",
        warn=True,
    )


# --------------------------------------------------------------------------- switching


@dataclass
class SwitchResult:
    task_name: str
    previous: str  # the owner before
    owner: str  # the owner now (after a completed switch), or the one being switched to
    state: str  # DONE | SWITCHING | "unchanged"
    switch: Switch | None = None
    message: str = ""

    def describe(self) -> str:
        if self.state == "unchanged":
            return f"{self.task_name}: {ROLE_LABEL[self.owner]} already owns DDL; nothing changed"
        assert self.switch is not None
        sw = self.switch
        side_old, side_new = SOURCE_SIDE[self.previous], SOURCE_SIDE[self.owner]
        old_at, new_at = format_position(sw.threshold(side_old)), format_position(sw.threshold(side_new))
        if self.state == SWITCHING:
            return (
                f"{self.task_name}: switching the DDL owner to {ROLE_LABEL[self.owner]} is not complete: "
                f"{self.message} DDL on {ROLE_LABEL[self.previous]}'s source up to {old_at} is still applied by it; "
                "DDL made on either side after that is not applied until the switch completes. Run the same "
                "command again to complete it"
            )
        return (
            f"{self.task_name}: {ROLE_LABEL[self.owner]} now applies DDL (made on its source after {new_at}); "
            f"{ROLE_LABEL[self.previous]} applied DDL made on its source up to {old_at} and applies no later DDL"
        )


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _write(conn: pymysql.connections.Connection, control: ControlSchema, task: str, sw: Switch) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {control.table('ddl_owner')} (task_name, seq, owner, state, a_file, a_pos, b_file, b_pos, "
            "switched_at, switched_by, completed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON DUPLICATE KEY UPDATE owner=VALUES(owner), state=VALUES(state), a_file=VALUES(a_file), "
            "a_pos=VALUES(a_pos), b_file=VALUES(b_file), b_pos=VALUES(b_pos), switched_at=VALUES(switched_at), "
            "switched_by=VALUES(switched_by), completed_at=VALUES(completed_at)",
            (
                task,
                sw.seq,
                sw.owner,
                sw.state,
                *(sw.a if sw.a else (None, None)),
                *(sw.b if sw.b else (None, None)),
                sw.switched_at,
                sw.switched_by,
                sw.completed_at,
            ),
        )
    conn.commit()


def _merged(a_rows: list[Switch], b_rows: list[Switch]) -> list[Switch]:
    """Both servers' rows as one history: a row one server lacks (a write lost between the two) is taken from the
    other, a completed row wins over the same switch still completing."""
    by_seq: dict[int, Switch] = {}
    for sw in [*a_rows, *b_rows]:
        have = by_seq.get(sw.seq)
        if have is None or (have.state == SWITCHING and sw.state == DONE):
            by_seq[sw.seq] = sw
    return [by_seq[k] for k in sorted(by_seq)]


class _Pair:
    """Open connections to both servers, and the owner lock held on both while a position is read and recorded."""

    def __init__(self, task: str, a: ConnectionSettings, b: ConnectionSettings, control: ControlSchema):
        self.task, self.control = task, control
        self.settings = {"a": a, "b": b}
        self.conns: dict[str, pymysql.connections.Connection] = {}
        self.lock = owner_lock_name(control.schema, task)

    def __enter__(self) -> _Pair:
        for side, s in self.settings.items():
            self.conns[side] = s.connect()
            self.control.ensure(self.conns[side])
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.conns.values():
            try:
                c.close()
            except Exception:
                pass

    def locked(self) -> AbstractContextManager[None]:
        """The owner lock held on both servers (A, then B)."""
        a, b = ((self.conns[side], self.settings[side].describe()) for side in ("a", "b"))
        return OWNER_LOCK.held(self.lock, a=a, b=b)

    def home(self, role: str) -> pymysql.connections.Connection:
        """A direction's home (its destination): B for task one, A for task two."""
        return self.conns[HOME_SIDE[role]]

    def position(self, side: str) -> Position:
        conn = self.conns[side]
        return binlog_position(conn, server_info(conn))

    def switches(self) -> list[Switch]:
        """The merged history; a server that lacks part of it gets it written."""
        rows = {side: read_switches(c, self.control, self.task) for side, c in self.conns.items()}
        merged = _merged(rows["a"], rows["b"])
        for side, have in rows.items():
            for sw in merged:
                if sw not in have:
                    _write(self.conns[side], self.control, self.task, sw)
        return merged

    def record(self, sw: Switch, first: str) -> None:
        """Write ``sw`` on both servers, on ``first`` (the side whose direction reads the new threshold) first."""
        for side in (first, "b" if first == "a" else "a"):
            _write(self.conns[side], self.control, self.task, sw)


def _pending(pair: _Pair, role: str) -> str | None:
    cp = pair.control.read_checkpoint(pair.home(role), pair.task, role)
    return cp.ddl_pending if cp is not None else None


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


def switch_direction(
    task_name: str,
    a_settings: ConnectionSettings,
    b_settings: ConnectionSettings,
    control_schema: str = "dts_meta",
    *,
    to: str | None = None,
    who: str | None = None,
    wait: float = 60.0,
    poll: float = 0.5,
    logger: logging.Logger | None = None,
) -> SwitchResult:
    """Make ``to`` (default: the side that does not own DDL now) the DDL owner of the running pair ``task_name``.

    ``a_settings``: task one's source (A), ``b_settings``: task one's destination (B). See the module docstring for
    the two steps; returns state DONE, SWITCHING (the old owner did not reach its last position within ``wait``
    seconds: run it again) or "unchanged". Raises ``SwitchRefused`` with what to do."""
    from airflow_provider_dts.engine.verify import stored_direction

    lg = logger or log
    if to is not None and to not in ROLES:
        raise SwitchRefused(f"--to {to!r}: use forward (task one) or reverse (task two)")
    who = who or _who()
    control = ControlSchema(control_schema)
    with _Pair(task_name, a_settings, b_settings, control) as pair:
        for role in ROLES:
            cp = control.read_checkpoint(pair.home(role), task_name, role)
            if cp is None or cp.binlog_file is None:
                raise SwitchRefused(
                    f"{task_name}/{role} ({ROLE_LABEL[role]}) has no checkpoint in {control_schema} on "
                    f"{pair.settings[HOME_SIDE[role]].describe()}: it never ran. Fix: check "
                    "--task-name and the connections; switch once both directions have started"
                )
        forward = stored_direction(pair.home("forward"), task_name, control_schema, "forward")
        if forward is not None and forward.exclude_ddl:
            raise SwitchRefused(
                f"{task_name}: task one excludes DDL (exclude_ddl on), so no side's DDL is applied and there is no "
                "DDL owner to switch. Fix: modify task one with exclude_ddl off first"
            )
        with pair.locked():
            switches = pair.switches()
        previous = current_owner(switches)
        last = switches[-1] if switches else None
        if last is not None and last.state == SWITCHING:
            if to is not None and to != last.owner:
                raise SwitchRefused(
                    f"{task_name}: {last.describe()} is still completing. Fix: complete it first (run "
                    f"switch-direction --to {last.owner} again), then switch to {to}"
                )
            sw = last
            previous = other(last.owner)
        else:
            target = to or other(previous)
            if target == previous:
                return SwitchResult(task_name, previous, previous, "unchanged")
            for role in ROLES:
                pending = _pending(pair, role)
                if pending:
                    raise SwitchRefused(
                        f"{task_name}/{role} ({ROLE_LABEL[role]}) has DDL pending ({pending[:300]}): it is applying "
                        "it, or stopped while applying it. Fix: let the direction run until it is applied (start it "
                        "if it is stopped), then switch"
                    )
            # step 1: the old owner keeps its DDL up to its source's position now, nobody applies later DDL
            old_side = SOURCE_SIDE[previous]
            with pair.locked():
                switches = pair.switches()
                p_old = pair.position(old_side)
                seq = max((s.seq for s in switches), default=0) + 1
                sw = Switch(
                    seq,
                    target,
                    SWITCHING,
                    p_old if old_side == "a" else None,
                    p_old if old_side == "b" else None,
                    _utcnow(),
                    who,
                )
                # the old owner's home first (it reads this threshold); the write on its source (the other server)
                # moves that binlog past P_old, so an idle old owner's checkpoint gets there
                pair.record(sw, HOME_SIDE[previous])
            lg.info("%s: DDL owner switch %d to %s started: %s", task_name, sw.seq, target, sw.describe())
        # step 2: wait for the old owner to pass P_old, then record the new owner's position
        old, new = previous, sw.owner
        p_old_at = sw.threshold(SOURCE_SIDE[old])
        assert p_old_at is not None
        deadline = time.monotonic() + wait
        while True:
            cp = control.read_checkpoint(pair.home(old), task_name, old)
            reached = cp is not None and cp.position is not None and position_le(p_old_at, cp.position)
            if reached and cp is not None and not cp.ddl_pending:
                break
            if time.monotonic() >= deadline:
                at = format_position(cp.position if cp is not None else None)
                return SwitchResult(
                    task_name,
                    old,
                    new,
                    SWITCHING,
                    sw,
                    f"{ROLE_LABEL[old]} is at {at}, not yet at {format_position(p_old_at)} (is it running?).",
                )
            time.sleep(poll)
        with pair.locked():
            p_new = pair.position(SOURCE_SIDE[new])
            done = Switch(
                sw.seq,
                sw.owner,
                DONE,
                p_new if SOURCE_SIDE[new] == "a" else sw.a,
                p_new if SOURCE_SIDE[new] == "b" else sw.b,
                sw.switched_at,
                sw.switched_by,
                _utcnow(),
            )
            pair.record(done, HOME_SIDE[new])  # the new owner's home first
        lg.info("%s: DDL owner switch %d to %s done: %s", task_name, done.seq, new, done.describe())
        return SwitchResult(task_name, old, new, DONE, done)
