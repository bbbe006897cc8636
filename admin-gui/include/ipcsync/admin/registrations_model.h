// RegistrationsModel: one row per registered process of the namespace, live.
//
// Fed by AdminPoller snapshots; rows are keyed by (engine, slot, generation), so a slot reused by
// a new process is a new row and a restarted engine starts a fresh list. Rates are messages and
// bytes per second measured over windows of at least half a second of successive snapshots
// ("—" until the first window has passed). Cells carry kSortRole with the raw number.
// GUI thread only.
#pragma once

#include <cstdint>

#include "ipcsync/admin/keyed_table_model.h"
#include "ipcsync/admin/namespace_snapshot.h"

namespace ipcsync::admin {

struct RegistrationKey {
  std::int32_t enginePid = 0;
  std::uint64_t engineStart = 0;
  std::uint32_t slot = 0;
  std::uint64_t generation = 0;
  friend bool operator==(const RegistrationKey&, const RegistrationKey&) = default;
  friend bool operator<(const RegistrationKey& a, const RegistrationKey& b) {
    if (a.enginePid != b.enginePid) return a.enginePid < b.enginePid;
    if (a.engineStart != b.engineStart) return a.engineStart < b.engineStart;
    if (a.slot != b.slot) return a.slot < b.slot;
    return a.generation < b.generation;
  }
};

struct RegistrationRow {
  RegistrationKey key;
  ProcessRecord record;
  std::uint64_t takenAtNs = 0;  // CLOCK_REALTIME of the snapshot (for ages)
  // Rate window: counters and time at its start, and the rates it last produced.
  std::uint64_t windowStartNs = 0;  // CLOCK_MONOTONIC
  TrafficCounters windowStart{};
  bool rated = false;
  double messagesInPerS = 0, messagesOutPerS = 0, bytesInPerS = 0, bytesOutPerS = 0;
};

class RegistrationsModel : public KeyedTableModel<RegistrationRow, RegistrationKey> {
  Q_OBJECT

 public:
  enum Column {
    kName, kPid, kUid, kState, kBlock, kInUse, kMessagesIn, kMessagesOut, kBytesIn, kBytesOut, kRateIn, kRateOut,
    kLastSeen, kColumnCount
  };
  static constexpr std::uint64_t kRateWindowNs = 500'000'000;

  using KeyedTableModel::KeyedTableModel;

  void update(const NamespaceSnapshot& snapshot);
  // The row's record, if `row` is valid.
  const RegistrationRow* rowAt(int row) const;

  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 protected:
  int columns() const override { return kColumnCount; }
  RegistrationKey keyOf(const RegistrationRow& row) const override { return row.key; }
  QVariant cell(const RegistrationRow& row, int column, int role) const override;
  void carryOver(const RegistrationRow& before, RegistrationRow& now) const override;
};

}  // namespace ipcsync::admin
