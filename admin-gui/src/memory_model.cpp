#include "ipcsync/admin/memory_model.h"

#include <algorithm>

#include <QColor>
#include <QLocale>

#include "ipcsync/admin/format.h"

namespace ipcsync::admin {

MemoryFigures memoryFigures(const ProcessRecord& r) {
  MemoryFigures f;
  f.activeArenas = r.stats.activeArenas;
  f.maxArenas = r.geometry.maxArenas;
  f.blockBytes = std::uint64_t{r.stats.activeArenas} * r.geometry.arenaSize();
  f.maxBytes = r.geometry.maxBytes();
  f.bytesInUse = r.stats.bytesInUse;
  f.bytesFree = r.stats.bytesFree;
  f.largestFreeRun = r.stats.largestFreeRun;
  f.fragmentation = r.stats.bytesFree
                        ? 1.0 - static_cast<double>(std::min(r.stats.largestFreeRun, r.stats.bytesFree)) /
                                    static_cast<double>(r.stats.bytesFree)
                        : 0.0;
  f.allocations = r.stats.allocations;
  f.frees = r.stats.frees;
  f.failures = r.stats.failures;
  return f;
}

std::vector<std::optional<std::uint16_t>> arenaCells(const ProcessRecord& r) {
  const std::uint32_t n = std::min(r.geometry.maxArenas, kMaxArenas);
  std::vector<std::optional<std::uint16_t>> cells(n);
  for (std::uint32_t i = 0; i < n; ++i)
    if (r.arenaUsedPermille[i] != kArenaInactive) cells[i] = std::min<std::uint16_t>(r.arenaUsedPermille[i], 1000);
  return cells;
}

void FreeBlocksModel::show(const std::optional<ProcessRecord>& record) {
  std::vector<FreeBlocksRow> fresh;
  if (record) {
    const std::uint32_t top = std::min(record->geometry.topOrder(), kMaxOrders - 1);
    for (std::uint32_t k = 0; k <= top; ++k)
      fresh.push_back({k, record->geometry.minBlock() << k, record->stats.freeBlocksPerOrder[k]});
  }
  apply(std::move(fresh));
}

QVariant FreeBlocksModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case kOrder: return QStringLiteral("Order");
    case kBlockSize: return QStringLiteral("Block size");
    case kCount: return QStringLiteral("Free blocks");
    case kBytes: return QStringLiteral("Free bytes");
    default: return {};
  }
}

QVariant FreeBlocksModel::cell(const FreeBlocksRow& row, int column, int role) const {
  if (role == Qt::TextAlignmentRole) return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
  if (role == Qt::ForegroundRole) return row.count ? QVariant() : QVariant(QColor(0x90, 0x90, 0x90));
  if (role == kSortRole) {
    switch (column) {
      case kOrder: return row.order;
      case kBlockSize: return static_cast<qulonglong>(row.blockSize);
      case kCount: return static_cast<qulonglong>(row.count);
      case kBytes: return static_cast<qulonglong>(row.count * row.blockSize);
      default: return {};
    }
  }
  if (role != Qt::DisplayRole) return {};
  switch (column) {
    case kOrder: return row.order;
    case kBlockSize: return humanBytes(row.blockSize);
    case kCount: return QLocale::c().toString(static_cast<qulonglong>(row.count));
    case kBytes: return humanBytes(row.count * row.blockSize);
    default: return {};
  }
}

}  // namespace ipcsync::admin
