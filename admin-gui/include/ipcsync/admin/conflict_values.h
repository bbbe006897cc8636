// Conflict values side by side: one parked conflict's base, source and target values per column.
//
// A parked conflict carries key_json (the primary key), source_json (what the change sets: for an
// UPDATE the key and the changed columns' new values, for an INSERT the whole new row, "null" for a
// DELETE), target_json (the target's row when the conflict was parked, "null" if it had none) and
// the change itself as a one-change SQLite changeset. The changeset holds the source's OLD values
// (the base both sides started from: for an UPDATE only the key and the changed columns) and its
// new values, by column index; it names no columns. sideBySide() decodes it (with the plugin SDK's
// ChangesetReader, which refuses a malformed changeset before SQLite walks it) and gives each value
// its column name by matching values against the JSON (key columns against key_json, new values
// against source_json, a DELETE's old values against target_json), then pairing a last unmatched
// value with a last unmatched name. A value that cannot be named unambiguously keeps its index
// ("column 3") and the note says so. Pure function, no Qt event loop; thread-safe.
#pragma once

#include <QJsonValue>
#include <QString>

#include <cstddef>
#include <vector>

namespace ipcsync::admin {

struct ConflictColumn {
  QString name;              // the column's name, or "column N" when it cannot be named
  bool key = false;          // part of the primary key
  QJsonValue base;           // the source's old value; Undefined: not in the change (unchanged or INSERT)
  QJsonValue source;         // the incoming value; Undefined: the source leaves it unchanged
  QJsonValue target;         // the target's value when parked; Undefined: the target had no row
  bool sourceChanged = false;  // the source sets a value other than the base
  bool targetChanged = false;  // the target's value differs from the base (it changed it too)
  bool differs = false;        // after applying, source and target would disagree here
  friend bool operator==(const ConflictColumn&, const ConflictColumn&) = default;
};

struct ConflictSides {
  QString op;                           // "INSERT", "UPDATE", "DELETE", or empty when undecodable
  std::vector<ConflictColumn> columns;  // key columns first, then the rest by name
  QString note;                         // why something could not be decoded or named; empty if all is known
  friend bool operator==(const ConflictSides&, const ConflictSides&) = default;
};

// Decodes `change` (a changeset of one change, `size` bytes) against the parked JSON. Never throws;
// a malformed changeset or JSON gives what could be read and a note.
ConflictSides sideBySide(const QString& keyJson, const QString& sourceJson, const QString& targetJson,
                         const void* change, std::size_t size);

// A JSON value as the console shows it: strings unquoted, null as "NULL", Undefined as "".
QString displayValue(const QJsonValue& value);

}  // namespace ipcsync::admin
