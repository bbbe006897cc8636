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
