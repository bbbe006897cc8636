// The memory of one registration, as the console draws it: its arenas, its free blocks per
// order, and the manager's figures.
//
// memoryFigures() and arenaCells() are pure functions of a ProcessRecord. FreeBlocksModel lists
// the free blocks per order of the record it was last given (keyed by order, so following the same
// block live only emits dataChanged). GUI thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ipcsync/admin/keyed_table_model.h"
#include "ipcsync/ipccore/process_record.h"

namespace ipcsync::admin {

struct MemoryFigures {
  std::uint64_t blockBytes = 0;      // active arenas x arena size
  std::uint64_t maxBytes = 0;        // what the block may grow to
  std::uint64_t bytesInUse = 0;
  std::uint64_t bytesFree = 0;
  std::uint64_t largestFreeRun = 0;
  double fragmentation = 0;          // 1 - largestFreeRun / bytesFree; 0 when nothing is free
  std::uint64_t allocations = 0, frees = 0, failures = 0;
  std::uint32_t activeArenas = 0, maxArenas = 0;
};
MemoryFigures memoryFigures(const ProcessRecord& record);

// One cell per arena of geometry.maxArenas: nothing when inactive, else how full in thousandths.
std::vector<std::optional<std::uint16_t>> arenaCells(const ProcessRecord& record);

struct FreeBlocksRow {
  std::uint32_t order = 0;
  std::uint64_t blockSize = 0;
  std::uint64_t count = 0;
};

class FreeBlocksModel : public KeyedTableModel<FreeBlocksRow, std::uint32_t> {
  Q_OBJECT

 public:
  enum Column { kOrder, kBlockSize, kCount, kBytes, kColumnCount };
  using KeyedTableModel::KeyedTableModel;

  // Shows `record`'s free blocks per order (orders 0..top of its geometry); nothing empties it.
  void show(const std::optional<ProcessRecord>& record);
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 protected:
  int columns() const override { return kColumnCount; }
  std::uint32_t keyOf(const FreeBlocksRow& row) const override { return row.order; }
  QVariant cell(const FreeBlocksRow& row, int column, int role) const override;
};

}  // namespace ipcsync::admin
