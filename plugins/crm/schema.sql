-- The CRM plugin's tables: the contract between crm (which captures and applies them) and every
-- plugin that accepts them (mining). Money is in integer cents so sums compare exactly.
-- updated_at is microseconds since the epoch; last_writer_wins routes use it.
CREATE TABLE IF NOT EXISTS accounts (
  id         INTEGER PRIMARY KEY,
  name       TEXT    NOT NULL,
  region     TEXT    NOT NULL,          -- e.g. 'north', 'south', 'east', 'west'
  industry   TEXT,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS contacts (
  id         INTEGER PRIMARY KEY,
  account_id INTEGER NOT NULL,
  name       TEXT    NOT NULL,
  email      TEXT,
  phone      TEXT,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS interactions (
  id          INTEGER PRIMARY KEY,
  account_id  INTEGER NOT NULL,
  contact_id  INTEGER,
  channel     TEXT    NOT NULL,          -- 'phone', 'email', 'visit'
  summary     TEXT,
  occurred_at INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
  id               INTEGER PRIMARY KEY,
  account_id       INTEGER NOT NULL,
  product          TEXT    NOT NULL,
  quantity         INTEGER NOT NULL,
  unit_price_cents INTEGER NOT NULL,
  ordered_at       INTEGER NOT NULL,     -- microseconds since the epoch; the day is its UTC date
  updated_at       INTEGER NOT NULL
);
