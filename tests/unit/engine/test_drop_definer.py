"""``schema_sync.drop_definer`` reads the header of a CREATE statement with the SQL tokenizer: hostile accounts,
comments and strings that contain the word DEFINER, for every kind of object that carries one, and strings read
as the object's sql_mode reads them (NO_BACKSLASH_ESCAPES)."""

from __future__ import annotations

import pytest

from airflow_provider_dts.engine.config import SyncDirection
from airflow_provider_dts.engine.schema_sync import drop_definer, rewrite_create_routine, rewrite_create_trigger
from airflow_provider_dts.engine.sqltext import backslash_escapes

# (header before the clause, header after it, rest of the statement) for each kind of object
OBJECTS = {
    "VIEW": ("CREATE ALGORITHM=UNDEFINED", " SQL SECURITY DEFINER VIEW `shop`.`v` AS select 1 AS `1`"),
    "TRIGGER": ("CREATE", " TRIGGER `trg` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.x = 1"),
    "PROCEDURE": ("CREATE", " PROCEDURE `p`()\nBEGIN SELECT 1; END"),
    "FUNCTION": ("CREATE", " FUNCTION `f`() RETURNS int(11)\n    DETERMINISTIC\nRETURN 1"),
    "EVENT": ("CREATE", " EVENT `e` ON SCHEDULE EVERY 1 DAY ON COMPLETION NOT PRESERVE ENABLE DO SELECT 1"),
}

ACCOUNTS = [
    "`a``b`@`%`",  # a backtick inside a quoted user name
    "'x'@'h'",
    "'it''s'@'h''x'",
    "CURRENT_USER",
    "CURRENT_USER()",
    "CURRENT_USER ( )",
    "`root`@`localhost`",
    "root@localhost",  # not quoted
    "`app`@`10.0.%`",
    "app@127.0.0.1",
    "`r1`",  # a role: no host
    "'x' @ 'h'",  # white space around @
    "`DEFINER`@`VIEW`",  # keywords as names
]


@pytest.mark.parametrize("kind", sorted(OBJECTS))
@pytest.mark.parametrize("account", ACCOUNTS)
def test_the_definer_clause_goes_whatever_the_account(kind, account):
    head, rest = OBJECTS[kind]
    assert drop_definer(f"{head} DEFINER={account}{rest}") == head + rest
    assert drop_definer(f"{head} DEFINER = {account}{rest}") == head + rest
    # any case, any white space; the white space after the clause goes with it
    assert drop_definer(f"{head}\n  definer\t=\t{account}{rest}") == f"{head}\n  {rest.lstrip()}"


@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_definer_in_comments_strings_and_bodies_is_left_alone(kind):
    head, rest = OBJECTS[kind]
    comment = "/* DEFINER=`x`@`y` */"
    # a comment before the clause that looks like one: the comment stays, the real clause goes
    assert drop_definer(f"{head} {comment} DEFINER=`a`@`b`{rest}") == f"{head} {comment}{rest}"
    assert drop_definer(f"{head} -- DEFINER=`x`@`y`\n DEFINER='a'@'b'{rest}") == f"{head} -- DEFINER=`x`@`y`\n{rest}"
    # no clause in the header: the word elsewhere is never taken for one
    body = f"{head}{rest} /* DEFINER = root@h */ # DEFINER=`x`@`y`\n"
    assert drop_definer(body) == body
    assert drop_definer(f"{head} DEFINER=`a`@`b`{rest}, 'DEFINER = x@y'") == f"{head}{rest}, 'DEFINER = x@y'"


def test_strings_in_the_body_that_hold_a_clause_stay_byte_for_byte():
    proc = "CREATE PROCEDURE `p`()\nBEGIN SELECT 'x DEFINER = y'; SELECT \"DEFINER=`a`@`b`\"; END"
    assert drop_definer(proc) == proc
    view = "CREATE SQL SECURITY DEFINER VIEW `v` AS select 'DEFINER=x@y' AS `DEFINER`"
    assert drop_definer(view) == view


def test_quotes_escaped_by_backslash_or_not_as_the_sql_mode_says():
    # with backslash escapes (the default sql_mode) 'a\'b' is one user name: a'b
    assert drop_definer(r"CREATE DEFINER='a\'b'@'h' FUNCTION f() RETURNS INT RETURN 1") == (
        "CREATE FUNCTION f() RETURNS INT RETURN 1"
    )
    # under NO_BACKSLASH_ESCAPES 'C:\' is a whole string
    no_escapes = backslash_escapes("STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES")
    assert no_escapes is False
    assert drop_definer(r"CREATE DEFINER='C:\'@'h' PROCEDURE p() SELECT 'C:\'", backslash_escapes=False) == (
        r"CREATE PROCEDURE p() SELECT 'C:\'"
    )


def test_executable_comments_as_mysqldump_writes_them():
    trig = (
        "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `trg` BEFORE INSERT ON `t` "
        "FOR EACH ROW SET NEW.x = 1 */"
    )
    assert drop_definer(trig) == (
        "/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER `trg` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.x = 1 */"
    )
    view = "/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=root@localhost SQL SECURITY DEFINER */\n"
    assert drop_definer(view) == "/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 SQL SECURITY DEFINER */\n"


def test_the_words_around_the_clause_are_never_joined():
    assert drop_definer("CREATE DEFINER=`a`@`b`VIEW v AS SELECT 1") == "CREATE VIEW v AS SELECT 1"
    assert drop_definer("CREATE/**/DEFINER=`a`@`b`/**/VIEW v AS SELECT 1") == "CREATE/**//**/VIEW v AS SELECT 1"


def test_only_the_first_clause_and_nothing_without_an_account():
    assert drop_definer("CREATE DEFINER=`a`@`b` DEFINER=`c`@`d` VIEW v AS SELECT 1") == (
        "CREATE DEFINER=`c`@`d` VIEW v AS SELECT 1"
    )
    assert drop_definer("CREATE DEFINER=") == "CREATE DEFINER="
    assert drop_definer("CREATE DEFINER") == "CREATE DEFINER"


D = SyncDirection.from_dict(
    {
        "task_name": "t",
        "source_conn_id": "a",
        "destination_conn_id": "b",
        "objects": ["shop"],
        "mapping": {"shop": "shop2"},
    }
)


def test_routine_and_trigger_bodies_are_read_in_their_own_sql_mode():
    """Under NO_BACKSLASH_ESCAPES 'C:\\' ends the string: the qualified name after it is code and is mapped. Read
    with backslash escapes the string would run on and hide it (the name would keep pointing at the source
    database)."""
    trig = (
        "CREATE DEFINER=`root`@`localhost` TRIGGER shop.trg BEFORE INSERT ON items FOR EACH ROW BEGIN "
        "SET NEW.path = 'C:\\'; INSERT INTO shop.log VALUES (NEW.id, 'shop.log'); END"
    )
    out = rewrite_create_trigger(trig, "shop", "shop2", {"shop"}, D.map_table, "NO_BACKSLASH_ESCAPES")
    assert out == (
        "CREATE TRIGGER `shop2`.`trg` BEFORE INSERT ON `shop2`.`items` FOR EACH ROW BEGIN "
        "SET NEW.path = 'C:\\'; INSERT INTO `shop2`.`log` VALUES (NEW.id, 'shop.log'); END"
    )
    proc = "CREATE DEFINER='C:\\'@'h' PROCEDURE `p`()\nBEGIN SELECT 'C:\\' FROM shop.items; END"
    assert rewrite_create_routine(proc, "PROCEDURE", "shop2", {"shop"}, D.map_table, "ANSI,NO_BACKSLASH_ESCAPES") == (
        "CREATE PROCEDURE `shop2`.`p`()\nBEGIN SELECT 'C:\\' FROM `shop2`.`items`; END"
    )
    # the default sql_mode: a backslash escapes the quote, the name inside the string stays as it is
    proc = "CREATE DEFINER=`u`@`h` PROCEDURE `p`()\nBEGIN SELECT 'a\\' shop.items' FROM shop.items; END"
    assert rewrite_create_routine(proc, "PROCEDURE", "shop2", {"shop"}, D.map_table, "STRICT_TRANS_TABLES") == (
        "CREATE PROCEDURE `shop2`.`p`()\nBEGIN SELECT 'a\\' shop.items' FROM `shop2`.`items`; END"
    )
