"""GTID-aware checkpoints: the source's GTID state at the checkpoint, and resuming by GTID after a failover.

A checkpoint's ``binlog_file/pos`` only mean something on the server that wrote that binlog. A managed MySQL
that fails over promotes a replica whose binlog files have other names and offsets; resuming there by file and
position would read the wrong transactions (or fail). So each checkpoint also records, in the same destination
transaction as the rows (``apply.Applier._advanced`` -> ``advance``):

- ``gtid_state``: the source's GTID state at ``binlog_file/pos`` - MariaDB a GTID position (one
  ``domain-server-seq`` per domain, like ``gtid_binlog_pos``), MySQL a GTID set (``uuid:1-100,uuid2:1-5``, like
  ``gtid_executed``); ``gtid_state_at`` is the position it describes (a state whose position is not the
  checkpoint's is stale and recomputed from the same source at the next start: ``reconcile``);
- ``source_server_id`` / ``source_server_uuid``: which server's binlog the position belongs to.

At every session start ``reconcile`` compares the source with the checkpoint. Same server: nothing changes (it
fills in the identity and a missing state). Another server (a failover behind a moved host name or an edited
Airflow connection), or the checkpoint's file is gone: ``find_resume`` finds where the new server's binlog
continues after exactly the transactions the checkpoint holds, as a MariaDB replica connecting with
``MASTER_USE_GTID`` or a MySQL replica with ``SOURCE_AUTO_POSITION`` would, but from a plain file/position (the
reader stays the same):

1. the new server must hold every transaction of the state (``@@gtid_binlog_pos`` / ``@@gtid_executed``), else
   the direction fails with ``GtidResumeImpossible`` naming the missing GTIDs and applies nothing;
2. the newest binlog file whose header (MariaDB ``Gtid_list``, MySQL ``Previous_gtids``) lies within the state
   is where the scan (``SHOW BINLOG EVENTS``) starts; no such file: the needed binlog was purged;
3. the resume position is the first transaction the state does not contain; transactions the state contains
   that come after it (another order of domains on the new server, or the new server's own older transactions
   before the replicated ones) are skipped until ``gtid_skip_until`` (the end of the last of them):
   ``skip_applied`` turns them into empty transactions that only move the checkpoint;
4. the checkpoint (position on the new server, its identity, the skip window) is written in one destination
   transaction before anything is read: the remap happens exactly once.

Debezium's MySQL connector keeps ``gtids`` in its offsets for the same reason and, like this, needs the new
server to have logged the replicated transactions (``log_slave_updates`` / ``log_replica_updates``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from airflow_provider_dts.engine.errors import SyncFailed
from airflow_provider_dts.engine.model import Checkpoint, Position, Transaction, format_position, position_le
from airflow_provider_dts.engine.servers import ServerInfo, binlog_files

log = logging.getLogger(__name__)

SCAN_PAGE = 5000  # SHOW BINLOG EVENTS rows read at a time


class GtidResumeImpossible(SyncFailed):
    """The source changed and the direction cannot continue there by GTID (the message says why and the fix)."""


# --------------------------------------------------------------------------- GTID states

_MARIADB_GTID = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_INTERVAL = re.compile(r"^(\d+)(?:-(\d+))?$")
_TAG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


class MariadbPosition:
    """A MariaDB GTID position: the last GTID per replication domain (``gtid_binlog_pos``). A GTID is contained
    when its domain is there with a sequence number at most the recorded one (MariaDB's own rule; with
    ``gtid_strict_mode`` sequence numbers only grow within a domain)."""

    flavour = "mariadb"

    def __init__(self, domains: dict[int, tuple[int, int]] | None = None):
        self.domains: dict[int, tuple[int, int]] = dict(domains or {})

    @classmethod
    def parse(cls, text: str) -> MariadbPosition:
        out: dict[int, tuple[int, int]] = {}
        for part in re.split(r"[,\s]+", text.strip().strip("[]")):
            if not part:
                continue
            d, s, n = _split_mariadb(part)
            if d in out:
                raise ValueError(f"MariaDB GTID position {text!r} names domain {d} twice")
            out[d] = (s, n)
        return cls(out)

    @classmethod
    def parse_binlog_state(cls, text: str) -> MariadbPosition:
        """A MariaDB binlog state (``Gtid_list`` event, ``@@gtid_binlog_state``): the last GTID of every
        (domain, server_id) pair that wrote a domain - several per domain after any failover. As a position: per
        domain the highest sequence number (the last one written, under gtid_strict_mode)."""
        out = cls()
        for part in re.split(r"[,\s]+", text.strip().strip("[]")):
            if part:
                out.add(part)
        return out

    def add(self, gtid: str) -> None:
        """Note a transaction read past; the position only moves forward (a transaction of a domain at or below
        its recorded number is one the position already holds: skipped after a GTID resume)."""
        d, s, n = _split_mariadb(gtid)
        cur = self.domains.get(d)
        if cur is None or n > cur[1]:
            self.domains[d] = (s, n)

    def contains(self, gtid: str) -> bool:
        d, _s, n = _split_mariadb(gtid)
        cur = self.domains.get(d)
        return cur is not None and n <= cur[1]

    def missing_from(self, other: MariadbPosition) -> list[str]:
        """The GTIDs of ``other`` this position does not reach (empty: it holds everything ``other`` does)."""
        out = []
        for d, (s, n) in sorted(other.domains.items()):
            mine = self.domains.get(d)
            if mine is None or mine[1] < n or (mine[1] == n and mine[0] != s):
                out.append(f"{d}-{s}-{n}")
        return out

    def within(self, other: MariadbPosition) -> bool:
        """Everything this position holds is held by ``other``."""
        return not other.missing_from(self)

    def last_of(self, domain: int) -> str | None:
        cur = self.domains.get(domain)
        return None if cur is None else f"{domain}-{cur[0]}-{cur[1]}"

    def __str__(self) -> str:
        return ",".join(f"{d}-{s}-{n}" for d, (s, n) in sorted(self.domains.items()))


def _split_mariadb(gtid: str) -> tuple[int, int, int]:
    m = _MARIADB_GTID.match(gtid.strip())
    if not m:
        raise ValueError(f"{gtid!r} is not a MariaDB GTID (domain-server-sequence)")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


class MysqlSet:
    """A MySQL GTID set (``gtid_executed``): per source UUID (and, MySQL 8.4, per tag ``uuid:tag``) a sorted list
    of closed intervals of transaction numbers."""

    flavour = "mysql"

    def __init__(self, sets: dict[str, list[list[int]]] | None = None):
        self.sets: dict[str, list[list[int]]] = {k: [list(i) for i in v] for k, v in (sets or {}).items()}

    @classmethod
    def parse(cls, text: str) -> MysqlSet:
        out = cls()
        for member in text.replace("\n", "").split(","):
            member = member.strip()
            if not member:
                continue
            parts = member.split(":")
            uuid = parts[0].strip().lower()
            if not _UUID.match(uuid):
                raise ValueError(f"MySQL GTID set {text!r}: {parts[0]!r} is not a server UUID")
            key = uuid
            if len(parts) < 2:
                raise ValueError(f"MySQL GTID set {text!r}: {member!r} has no transaction numbers")
            for p in parts[1:]:
                p = p.strip()
                m = _INTERVAL.match(p)
                if m:
                    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
                    if lo < 1 or hi < lo:
                        raise ValueError(f"MySQL GTID set {text!r}: bad interval {p!r}")
                    out._add_interval(key, lo, hi)
                elif _TAG.match(p):
                    key = f"{uuid}:{p.lower()}"
                else:
                    raise ValueError(f"MySQL GTID set {text!r}: {p!r} is neither an interval nor a tag")
        return out

    @staticmethod
    def _split(gtid: str) -> tuple[str, int]:
        head, _, n = gtid.strip().rpartition(":")
        if not head or not n.isdigit():
            raise ValueError(f"{gtid!r} is not a MySQL GTID (uuid:number or uuid:tag:number)")
        uuid, _, tag = head.partition(":")
        if not _UUID.match(uuid) or (tag and not _TAG.match(tag)):
            raise ValueError(f"{gtid!r} is not a MySQL GTID (uuid:number or uuid:tag:number)")
        return (uuid.lower() + (f":{tag.lower()}" if tag else "")), int(n)

    def _add_interval(self, key: str, lo: int, hi: int) -> None:
        ivs = self.sets.setdefault(key, [])
        if ivs and ivs[-1][1] + 1 >= lo and ivs[-1][0] <= lo:  # the usual case: extends the last interval
            ivs[-1][1] = max(ivs[-1][1], hi)
            return
        ivs.append([lo, hi])
        ivs.sort()
        merged: list[list[int]] = []
        for a, b in ivs:
            if merged and a <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self.sets[key] = merged

    def add(self, gtid: str) -> None:
        key, n = self._split(gtid)
        self._add_interval(key, n, n)

    def contains(self, gtid: str) -> bool:
        key, n = self._split(gtid)
        return any(a <= n <= b for a, b in self.sets.get(key, ()))

    def missing_from(self, other: MysqlSet) -> list[str]:
        """Intervals of ``other`` this set lacks, as ``uuid:a-b`` strings."""
        out = []
        for key, ivs in sorted(other.sets.items()):
            mine = self.sets.get(key, [])
            for a, b in ivs:
                n = a
                while n <= b:
                    cover = next((iv for iv in mine if iv[0] <= n <= iv[1]), None)
                    if cover is not None:
                        n = cover[1] + 1
                        continue
                    nxt = min((iv[0] for iv in mine if iv[0] > n), default=b + 1)
                    end = min(b, nxt - 1)
                    out.append(f"{key}:{n}" if end == n else f"{key}:{n}-{end}")
                    n = end + 1
        return out

    def within(self, other: MysqlSet) -> bool:
        return not other.missing_from(self)

    def __str__(self) -> str:
        return ",".join(
            key + "".join(f":{a}" if a == b else f":{a}-{b}" for a, b in ivs) for key, ivs in sorted(self.sets.items())
        )


GtidState = MariadbPosition | MysqlSet


def parse_state(text: str, flavour: str) -> GtidState:
    """A stored or server-reported GTID state of a server of ``flavour`` ("mariadb" | "mysql")."""
    return MariadbPosition.parse(text) if flavour == "mariadb" else MysqlSet.parse(text)


def flavour_of_state(text: str) -> str:
    """The flavour a stored state was written for: MySQL sets hold ``uuid:``, MariaDB positions never a colon."""
    return "mysql" if ":" in text else "mariadb"


# --------------------------------------------------------------------------- the checkpoint's state


def state_valid(cp: Checkpoint) -> bool:
    """The checkpoint's GTID state describes its own position (written together by ``advance``)."""
    return cp.gtid_state is not None and cp.position is not None and cp.gtid_state_at == format_position(cp.position)


def advance(old: Checkpoint, new: Checkpoint, txns: Iterable[Transaction]) -> None:
    """Set ``new``'s GTID state (``new`` = ``old`` moved past ``txns``, same destination transaction). A
    transaction without a GTID (MySQL ``gtid_mode`` off, an 8.4 tagged GTID the library cannot read) leaves the
    state unknown: no GTID resume from there until a start on the same server recomputes it."""
    if not state_valid(old):
        new.gtid_state = new.gtid_state_at = None
    else:
        assert old.gtid_state is not None
        state = parse_state(old.gtid_state, flavour_of_state(old.gtid_state)) if old.gtid_state else None
        unknown = False
        for t in txns:
            if t.gtid is None:
                unknown = True
                break
            if state is None:  # an empty state: the first GTID says the flavour
                state = parse_state("", flavour_of_state(t.gtid))
            state.add(t.gtid)
        if unknown:
            new.gtid_state = new.gtid_state_at = None
        else:
            new.gtid_state = "" if state is None else str(state)
            new.gtid_state_at = format_position(new.position)
    until = _position_of(new.gtid_skip_until)
    if until is not None and new.position is not None and position_le(until, new.position):
        new.gtid_skip_until = None  # past every already applied transaction of the new source


def _position_of(text: str | None) -> Position | None:
    if not text:
        return None
    name, _, pos = text.rpartition(":")
    return (name, int(pos)) if name and pos.isdigit() else None


def skip_applied(txn: Transaction, cp: Checkpoint) -> Transaction:
    """Inside a GTID resume's skip window: a transaction whose GTID the checkpoint already holds is returned
    empty (it only moves the checkpoint); anything else unchanged."""
    until = _position_of(cp.gtid_skip_until)
    if until is None or not position_le(txn.end_position, until) or txn.gtid is None:
        return txn
    if cp.gtid_state is None:
        raise SyncFailed(
            f"the checkpoint is inside a GTID resume's skip window (up to {cp.gtid_skip_until}) but its GTID state "
            "is unknown, so transactions already applied cannot be told apart. Fix: re-initialize the direction"
        )
    if not parse_state(cp.gtid_state, flavour_of_state(cp.gtid_state)).contains(txn.gtid):
        return txn
    log.debug("GTID %s at %s was applied before the failover: skipped", txn.gtid, format_position(txn.end_position))
    return Transaction(txn.start_position, txn.end_position, txn.gtid, txn.commit_timestamp, marked=txn.marked)


# --------------------------------------------------------------------------- reading a server


@dataclass(frozen=True)
class Identity:
    server_id: int
    server_uuid: str | None  # MySQL only

    def describe(self) -> str:
        return f"server_id={self.server_id}" + (f", server_uuid={self.server_uuid}" if self.server_uuid else "")


def identity_id(info: ServerInfo) -> int | None:
    """The server_id a session's checks were made against (what its binlog reader must find answering the dump);
    None when the server reports none."""
    return int(info.var("server_id", "0") or 0) or None


def identity(conn: Any, info: ServerInfo) -> Identity:
    uuid = None
    if not info.is_mariadb:
        with conn.cursor() as cur:
            cur.execute("SELECT @@server_uuid")
            uuid = str(cur.fetchone()[0]).lower()
    return Identity(int(info.var("server_id", "0") or 0), uuid)


def server_state(conn: Any, info: ServerInfo) -> GtidState:
    """What the server's binlog holds: MariaDB ``@@gtid_binlog_pos``, MySQL ``@@gtid_executed``."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@gtid_binlog_pos" if info.is_mariadb else "SELECT @@GLOBAL.gtid_executed")
        text = cur.fetchone()[0]
    text = text.decode() if isinstance(text, bytes) else str(text or "")
    return parse_state(text, info.flavour)


def resume_available(info: ServerInfo) -> tuple[bool, str]:
    """Whether a direction reading this server can resume by GTID on a server promoted from its replicas, and
    why not (also the precheck item ``source_gtid_resume``)."""
    on = ("ON", "1")
    if info.is_mariadb:
        missing = [v for v in ("gtid_strict_mode", "log_slave_updates") if info.var(v).upper() not in on]
    else:
        missing = [] if info.var("gtid_mode").upper() == "ON" else ["gtid_mode"]
        if info.var("log_replica_updates", info.var("log_slave_updates")).upper() not in on:
            missing.append("log_replica_updates")
    return (not missing), ", ".join(missing)


def _events(conn: Any, file: str, pos: int, limit: int) -> list[tuple[str, int, str, int, str]]:
    """(file, pos, event type, end pos, info) of ``SHOW BINLOG EVENTS IN file FROM pos LIMIT limit``."""
    with conn.cursor() as cur:
        cur.execute(f"SHOW BINLOG EVENTS IN %s FROM {int(pos)} LIMIT {int(limit)}", (file,))
        rows = cur.fetchall()
    return [(file, int(r[1]), _text(r[2]), int(r[4]), _text(r[5])) for r in rows]


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else ("" if v is None else str(v))


_GTID_INFO = {
    "mariadb": re.compile(r"\bGTID\s+(\d+-\d+-\d+)"),
    "mysql": re.compile(r"GTID_NEXT\s*=\s*'([^']+)'", re.I),
}


def gtid_of_event(flavour: str, event_type: str, info: str) -> str | None:
    """The GTID a ``SHOW BINLOG EVENTS`` row announces (MariaDB ``BEGIN GTID 0-1-5``; MySQL
    ``SET @@SESSION.GTID_NEXT= 'uuid:5'``), None for any other event (MySQL ``Anonymous_Gtid`` included)."""
    if event_type not in ("Gtid", "Gtid_tagged"):
        return None
    m = _GTID_INFO[flavour].search(info)
    return m.group(1) if m else None


def header_state(flavour: str, event_type: str, info: str) -> GtidState | None:
    """The state before a binlog file, from its ``Gtid_list`` (MariaDB) / ``Previous_gtids`` (MySQL) event."""
    if flavour == "mariadb" and event_type == "Gtid_list":
        return MariadbPosition.parse_binlog_state(info)
    if flavour == "mysql" and event_type == "Previous_gtids":
        return MysqlSet.parse(info)
    return None


def state_at(conn: Any, info: ServerInfo, position: Position) -> GtidState | None:
    """The server's GTID state at one of its own binlog positions (a transaction boundary); None when the server
    cannot tell (position past the end, file gone)."""
    file, pos = position
    if info.is_mariadb:
        with conn.cursor() as cur:
            cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, int(pos)))
            text = cur.fetchone()[0]
        return None if text is None else MariadbPosition.parse(_text(text))
    state: GtidState | None = None
    at = 4
    while True:
        rows = _events(conn, file, at, SCAN_PAGE)
        for _f, p, etype, end, text in rows:
            if p >= pos:
                return state
            hdr = header_state("mysql", etype, text)
            if hdr is not None:
                state = hdr
            g = gtid_of_event("mysql", etype, text)
            if g is not None:
                if state is None:
                    return None
                state.add(g)
            at = end
        if len(rows) < SCAN_PAGE:
            return state if at >= pos else None


@dataclass
class Resume:
    position: Position  # where the new server's binlog continues after the state
    skip_until: Position | None  # end of the last transaction after ``position`` the state already holds
    start_file: str
    events_scanned: int


def find_resume(
    conn: Any,
    info: ServerInfo,
    state: GtidState,
    *,
    events: Callable[[str, int, int], list[tuple[str, int, str, int, str]]] | None = None,
    files: list[str] | None = None,
) -> Resume:
    """Where the server's binlog continues after exactly the transactions of ``state`` (see the module
    docstring). ``events`` / ``files`` replace the server's ``SHOW BINLOG EVENTS`` / ``SHOW BINARY LOGS``."""
    flavour = info.flavour
    read = events or (lambda f, p, n: _events(conn, f, p, n))
    names = files if files is not None else [f for f, _ in binlog_files(conn)]
    start = None
    header: GtidState | None = None
    for i in range(len(names) - 1, -1, -1):
        for _f, _p, etype, _e, text in read(names[i], 4, 8):
            header = header_state(flavour, etype, text)
            if header is not None:
                break
        if header is None:
            raise GtidResumeImpossible(
                f"the binlog file {names[i]} has no {'Gtid_list' if flavour == 'mariadb' else 'Previous_gtids'} "
                "event, so its GTID history is unknown"
            )
        if header.within(state):  # type: ignore[arg-type]
            start = i
            break
    if start is None:
        raise GtidResumeImpossible(
            f"every binlog file the server still has starts after transactions the checkpoint does not hold "
            f"(oldest file {names[0] if names else '-'} starts at {header}); the transactions between the checkpoint "
            "and that file were purged, or the server holds older transactions of its own the old source never had"
        )
    strict = flavour == "mariadb" and info.var("gtid_strict_mode").upper() in ("ON", "1")
    pending: set[int] = set()
    if isinstance(state, MariadbPosition):
        assert isinstance(header, MariadbPosition)
        pending = {d for d in state.domains if header.last_of(d) != state.last_of(d)}
    resume: Position | None = None
    boundary: Position | None = None
    last_contained_end: Position | None = None
    group: str | None = None  # None | "begin" (ends at COMMIT / Xid) | "one" (one statement) | "maybe" (MySQL)
    contained = False
    scanned = 0
    done = False
    for file in names[start:]:
        at = 4
        while not done:
            rows = read(file, at, SCAN_PAGE)
            for _f, p, etype, end, text in rows:
                scanned += 1
                at = end
                g = gtid_of_event(flavour, etype, text)
                if g is not None:
                    contained = state.contains(g)
                    if contained:
                        if isinstance(state, MariadbPosition):
                            d = _split_mariadb(g)[0]
                            if state.last_of(d) == g:
                                pending.discard(d)
                    elif resume is None:
                        resume = (file, p)
                    if flavour == "mariadb":
                        group = "begin" if text.lstrip().upper().startswith("BEGIN") else "one"
                    else:
                        group = "maybe"
                    continue
                upper = text.strip().upper()
                closes = False
                if group == "maybe" and etype == "Query" and upper == "BEGIN":
                    group = "begin"
                elif (group in ("one", "maybe") and etype in ("Query", "Execute_load_query")) or (
                    group == "begin"
                    and (
                        etype in ("Xid", "XA_prepare")
                        or (etype == "Query" and upper.startswith(("COMMIT", "ROLLBACK", "XA COMMIT", "XA ROLLBACK")))
                    )
                ):
                    closes = True
                elif group is None and etype not in ("Rotate", "Stop") and resume is None:
                    boundary = (file, end)
                if closes:
                    group = None
                    if contained and resume is not None:
                        last_contained_end = (file, end)
                    elif contained:
                        boundary = (file, end)
                if strict and resume is not None and not pending and group is None:
                    done = True
                    break
            if len(rows) < SCAN_PAGE:
                break
        if done:
            break
    if pending and isinstance(state, MariadbPosition):
        wanted = ", ".join(str(state.last_of(d)) for d in sorted(pending))
        raise GtidResumeImpossible(
            f"the checkpoint's last transaction of each domain must be in the server's binlog, but {wanted} is not "
            f"(from {names[start]} on): the server's history diverged from the old source's"
        )
    if resume is None:
        if boundary is None:
            raise GtidResumeImpossible(f"no transaction boundary found in the binlog from {names[start]} on")
        resume = boundary
    return Resume(resume, last_contained_end, names[start], scanned)


# --------------------------------------------------------------------------- at a session start


def reconcile(
    cp: Checkpoint,
    src: Any,
    info: ServerInfo,
    *,
    source_label: str,
    direction_key: str,
    reinit_how: str,
    write: Callable[[Checkpoint, bool], None],
    table_catchups: Iterable[Position] = (),
    logger: logging.Logger | None = None,
) -> tuple[Checkpoint, str | None]:
    """Make ``cp`` (read at the destination) fit the source it is about to be read from. Returns the checkpoint
    to start from and, after a GTID resume, a sentence for the state message. ``write`` stores a changed
    checkpoint alone in one destination transaction (before anything is read); its second argument says the
    catch-up windows of added tables (``table_progress.catchup_file/pos``, positions on the old server,
    ``table_catchups``) are passed and must be forgotten with it. See the module docstring."""
    lg = logger or log
    ident = identity(src, info)
    names = [f for f, _ in binlog_files(src)]
    known = cp.source_server_id is not None
    moved = known and (int(cp.source_server_id or 0), cp.source_server_uuid or None) != (
        ident.server_id,
        ident.server_uuid,
    )
    file_there = cp.binlog_file in names
    if not moved and (file_there or not state_valid(cp)):
        # the same server (or not known yet: taken as the same, as before GTID checkpoints existed)
        changed = False
        if not known and file_there:  # (a server without the file is not known to be the one that wrote it)
            cp.source_server_id, cp.source_server_uuid = ident.server_id, ident.server_uuid
            changed = True
        if file_there and not state_valid(cp) and info.gtid_enabled and cp.position is not None:
            try:
                st = state_at(src, info, cp.position)
            except Exception as e:  # a missing privilege must not stop a direction that resumes by position
                lg.warning("direction %s: the GTID state at %s could not be read: %s", direction_key, cp.position, e)
                st = None
            if st is not None:
                cp.gtid_state, cp.gtid_state_at = str(st), format_position(cp.position)
                changed = True
        if changed:
            write(cp, False)
        return cp, None
    was = Identity(int(cp.source_server_id or 0), cp.source_server_uuid).describe() if known else "an unknown server"
    why = (
        f"the source is now {source_label} ({ident.describe()}), not the server the checkpoint was read from ({was})"
        if moved
        else f"the checkpoint's binlog file {cp.binlog_file} is not on {source_label} any more"
    )
    if not state_valid(cp):
        raise GtidResumeImpossible(
            f"direction {direction_key}: {why}, and the checkpoint ({format_position(cp.position)}) holds no GTID "
            f"state to resume from. Fix: point the connection back at the server the checkpoint was read from, or "
            f"re-initialize the direction: {reinit_how}"
        )
    assert cp.gtid_state is not None
    fix = (
        f"Fix: point the connection at a server that has all of these transactions (wait for this one to catch up "
        f"if it is still replicating), or re-initialize the direction: {reinit_how}"
    )
    if flavour_of_state(cp.gtid_state) != info.flavour and cp.gtid_state:
        raise GtidResumeImpossible(
            f"direction {direction_key}: {why}; the checkpoint's GTID state {cp.gtid_state!r} is not a "
            f"{info.label} GTID state. {fix}"
        )
    state = parse_state(cp.gtid_state, info.flavour)
    ok, off = resume_available(info)
    if not info.gtid_enabled:
        raise GtidResumeImpossible(f"direction {direction_key}: {why}, and GTIDs are off there ({off}). {fix}")
    if not info.is_mariadb and "log_replica_updates" in off:
        raise GtidResumeImpossible(
            f"direction {direction_key}: {why}; it does not log the transactions it replicated "
            f"(log_replica_updates=OFF), so its binlog cannot continue the old one. {fix}"
        )
    missing = server_state(src, info).missing_from(state)  # type: ignore[arg-type]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise GtidResumeImpossible(
            f"direction {direction_key}: {why}. It lacks transactions the destination already has (checkpoint "
            f"GTID state {cp.gtid_state}; missing from its binlog: {shown}); nothing was applied. {fix}"
        )
    assert cp.position is not None
    windows = [w for w in (cp.catchup_position, *table_catchups) if w is not None]
    open_windows = [w for w in windows if not position_le(w, cp.position)]
    if open_windows:
        raise GtidResumeImpossible(
            f"direction {direction_key}: {why}; the direction is still inside the catch-up window of its copy (up to "
            f"{format_position(open_windows[0])} on the old source, checkpoint at {format_position(cp.position)}), "
            f"whose changes are applied idempotently by old-source positions. Fix: re-initialize the direction: "
            f"{reinit_how}"
        )
    try:
        found = find_resume(src, info, state)
    except GtidResumeImpossible as e:
        raise GtidResumeImpossible(f"direction {direction_key}: {why}; it cannot resume by GTID: {e}. {fix}") from None
    old = format_position(cp.position)
    cp.binlog_file, cp.binlog_pos = found.position
    cp.gtid_state_at = format_position(found.position)
    cp.gtid_skip_until = format_position(found.skip_until) if found.skip_until else None
    cp.source_server_id, cp.source_server_uuid = ident.server_id, ident.server_uuid
    cp.catchup_file = cp.catchup_pos = None  # passed (checked above); old-source positions mean nothing here
    write(cp, bool(windows))
    note = (
        f"resumed by GTID after the source changed ({why}): checkpoint {old} with GTID state {cp.gtid_state} "
        f"continues at {format_position(found.position)}"
        + (f", already applied transactions skipped up to {cp.gtid_skip_until}" if cp.gtid_skip_until else "")
    )
    lg.warning(
        "direction %s: %s (%d binlog events scanned from %s)",
        direction_key,
        note,
        found.events_scanned,
        found.start_file,
    )
    if not ok:
        lg.warning("direction %s: GTID resume ran without %s on the new source", direction_key, off)
    return cp, note
