#!/bin/bash
# Run once by the mysql:8.4 image when its data volume is first created (docker-entrypoint-initdb.d).
# Creates the account the sync uses on this server, with the privileges both sync directions need:
# reading rows and the binlog (this server as a source) and creating schemas and writing rows
# (this server as a destination, including the control schema dts_meta).
set -euo pipefail
mysql --protocol=socket -uroot -p"${MYSQL_ROOT_PASSWORD}" <<SQL
CREATE USER IF NOT EXISTS 'dts'@'%' IDENTIFIED BY '${DTS_PASSWORD}';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, CREATE VIEW, SHOW VIEW,
      CREATE ROUTINE, ALTER ROUTINE, EXECUTE, TRIGGER, EVENT, LOCK TABLES, RELOAD, PROCESS,
      REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'dts'@'%';
SQL
