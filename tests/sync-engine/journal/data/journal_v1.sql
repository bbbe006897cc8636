-- A journal written by the schema-1 library (ipcsync commit d51f386): three entries of 'crm', the
-- cursor of (snap, crm2) at 2, a dead letter for sequence 3 and a parked conflict; dumped with
-- sqlite3 .dump. journal_migrate_test.cpp opens it with the current library.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE journal_schema (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL,
  created_at_us INTEGER NOT NULL
);
INSERT INTO journal_schema VALUES(1,1,1795702169656992);
CREATE TABLE journal_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  head INTEGER NOT NULL,     -- last sequence handed out
  entries INTEGER NOT NULL,  -- rows in entries
  bytes INTEGER NOT NULL     -- sum of entries.bytes
);
INSERT INTO journal_state VALUES(1,3,3,9);
CREATE TABLE entries (
  sequence INTEGER PRIMARY KEY,
  origin TEXT NOT NULL,
  origin_sequence INTEGER NOT NULL,
  commit_time_us INTEGER NOT NULL,
  journaled_at_us INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  UNIQUE (origin, origin_sequence)
);
INSERT INTO entries VALUES(1,'crm',1,1700000000000001,1795702169689327,3);
INSERT INTO entries VALUES(2,'crm',2,1700000000000002,1795702169689327,3);
INSERT INTO entries VALUES(3,'crm',3,1700000000000003,1795702169689327,3);
CREATE TABLE entry_pieces (
  sequence INTEGER NOT NULL,
  piece INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (sequence, piece)
);
INSERT INTO entry_pieces VALUES(1,0,X'010203');
INSERT INTO entry_pieces VALUES(2,0,X'020203');
INSERT INTO entry_pieces VALUES(3,0,X'030203');
CREATE TABLE entry_tables (
  table_name TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  PRIMARY KEY (table_name, sequence)
) WITHOUT ROWID;
INSERT INTO entry_tables VALUES('accounts',1);
INSERT INTO entry_tables VALUES('accounts',2);
INSERT INTO entry_tables VALUES('accounts',3);
CREATE TABLE entry_provenance (
  sequence INTEGER NOT NULL,
  position INTEGER NOT NULL,
  node TEXT NOT NULL,
  PRIMARY KEY (sequence, position)
) WITHOUT ROWID;
INSERT INTO entry_provenance VALUES(1,0,'crm');
INSERT INTO entry_provenance VALUES(2,0,'crm');
INSERT INTO entry_provenance VALUES(3,0,'crm');
CREATE TABLE origins (
  origin TEXT PRIMARY KEY,
  through INTEGER NOT NULL,                -- highest origin_sequence ever journaled
  pruned_origin_sequence INTEGER NOT NULL, -- highest origin_sequence removed by prune
  pruned_sequence INTEGER NOT NULL         -- the journal sequence of that removed entry
) WITHOUT ROWID;
INSERT INTO origins VALUES('crm',3,0,0);
CREATE TABLE cursors (
  route TEXT NOT NULL,
  subscriber TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  updated_at_us INTEGER NOT NULL,
  PRIMARY KEY (route, subscriber)
) WITHOUT ROWID;
INSERT INTO cursors VALUES('snap','crm2',2,1795702169689537);
CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  route TEXT NOT NULL,
  subscriber TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  error TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  failed_at_us INTEGER NOT NULL,
  replay_requested INTEGER NOT NULL DEFAULT 0,
  UNIQUE (route, subscriber, sequence)
);
INSERT INTO dead_letters VALUES(1,'snap','crm2',3,'boom',5,1700000000000100,0);
CREATE TABLE conflicts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  route TEXT NOT NULL,
  origin TEXT NOT NULL,
  subscriber TEXT NOT NULL,
  table_name TEXT NOT NULL,
  kind TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  key_json TEXT NOT NULL,
  source_json TEXT NOT NULL,
  target_json TEXT NOT NULL,
  change BLOB NOT NULL,
  resolution INTEGER NOT NULL DEFAULT 0,  -- 0 open, 1 take source requested, 2 take target requested, 3 resolved
  parked_at_us INTEGER NOT NULL,
  resolved_at_us INTEGER
);
INSERT INTO conflicts VALUES(1,'snap','crm','crm2','accounts','update',2,'[1]','{}','{}',X'0102',0,1700000000000200,NULL);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('dead_letters',1);
INSERT INTO sqlite_sequence VALUES('conflicts',1);
CREATE INDEX entry_tables_by_sequence ON entry_tables (sequence);
CREATE INDEX dead_letters_by_sequence ON dead_letters (sequence);
CREATE INDEX conflicts_by_resolution ON conflicts (resolution, id);
COMMIT;
