// DeadLettersModel and ConflictsModel: the journal's dead letters and parked conflicts as tables,
// keyed by their ids, fed from JournalContents with the same snapshot diffing as every console
// model. A conflict row shows the source and target values side by side. GUI thread only.
#pragma once

#include "ipcsync/admin/journal_reader.h"
#include "ipcsync/admin/keyed_table_model.h"

namespace ipcsync::admin {

class DeadLettersModel : public KeyedTableModel<DeadLetterRow, std::int64_t> {
  Q_OBJECT

 public:
  enum Column { kId, kRoute, kSubscriber, kSequence, kAttempts, kError, kColumnCount };
  explicit DeadLettersModel(QObject* parent = nullptr);

  void update(const JournalContents& contents) { apply(contents.deadLetters); }
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 protected:
  int columns() const override { return kColumnCount; }
  std::int64_t keyOf(const DeadLetterRow& row) const override { return row.id; }
  QVariant cell(const DeadLetterRow& row, int column, int role) const override;
};

class ConflictsModel : public KeyedTableModel<ConflictRow, std::int64_t> {
  Q_OBJECT

 public:
  enum Column { kId, kRoute, kTable, kKey, kSource, kTarget, kResolution, kColumnCount };
  explicit ConflictsModel(QObject* parent = nullptr);

  void update(const JournalContents& contents) { apply(contents.conflicts); }
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 protected:
  int columns() const override { return kColumnCount; }
  std::int64_t keyOf(const ConflictRow& row) const override { return row.id; }
  QVariant cell(const ConflictRow& row, int column, int role) const override;
};

}  // namespace ipcsync::admin

namespace ipcsync::admin {

// ConflictDetailModel: one parked conflict, one row per column of its table: the column, the base
// (the source's old value: what both sides started from), the source's incoming value and the
// target's value when the conflict was parked. A column changed at both ends to different values
// (what conflicts) is tinted red at both; one only the source changes is blue at the source, one
// only the target changed is amber at the target.
// Rows are keyed by column name, so a conflict that changes resolution updates cells, and choosing
// another conflict inserts and removes rows like any snapshot. GUI thread only.
class ConflictDetailModel : public KeyedTableModel<ConflictColumn, QString> {
  Q_OBJECT

 public:
  enum Column { kName, kBase, kSource, kTarget, kColumnCount };
  explicit ConflictDetailModel(QObject* parent = nullptr);

  // Shows `conflict` (nullptr: none).
  void show(const ConflictRow* conflict);
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 protected:
  int columns() const override { return kColumnCount; }
  QString keyOf(const ConflictColumn& row) const override { return row.name; }
  QVariant cell(const ConflictColumn& row, int column, int role) const override;

 private:
  bool bothEnds(const ConflictColumn& c) const;
  QString m_op;
  bool m_hasTarget = false;
};

// The heading of a conflict's detail pane: route, tables, key, kind, when parked, resolution, and
// what can be said of the target's current row. Rich text.
QString conflictHeading(const ConflictRow& conflict);

}  // namespace ipcsync::admin
