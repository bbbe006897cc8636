#include "ipcsync/admin/routes_model.h"

#include <QColor>

#include "ipcsync/admin/format.h"

namespace ipcsync::admin {

RoutesModel::RoutesModel(QObject* parent) : KeyedTableModel(parent) {}

QString RoutesModel::keyOf(const SyncRoute& row) const { return row.route + QChar(0x1f) + row.subscriber; }

void RoutesModel::update(const SyncStatus& status) {
  std::vector<SyncRoute> fresh;
  for (const auto& r : status.routes) {
    bool seen = false;  // keys must be unique; a repeated pair keeps its first row
    for (const auto& f : fresh) seen = seen || keyOf(f) == keyOf(r);
    if (!seen) fresh.push_back(r);
  }
  apply(std::move(fresh));
}

QVariant RoutesModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  static const char* const kTitles[kColumnCount] = {"Route",     "From",   "To",     "Cursor",       "Lag",
                                                    "Lag ms",    "Applied/s", "Rows/s", "Conflicts", "Errors",
                                                    "Dead letters", "Last error"};
  return section >= 0 && section < kColumnCount ? QVariant(QString::fromLatin1(kTitles[section])) : QVariant();
}

QVariant RoutesModel::cell(const SyncRoute& r, int column, int role) const {
  const bool bad = !r.problem.isEmpty() || r.deadLetters > 0;
  const bool warn = r.errors > 0 || r.conflicts > 0;
  switch (role) {
    case Qt::BackgroundRole:
      if (bad) return QColor(0xfd, 0xe0, 0xe0);
      if (warn) return QColor(0xff, 0xf0, 0xc8);
      return {};
    case Qt::ForegroundRole:
      if (!r.connected) return QColor(0x80, 0x80, 0x80);
      if (bad) return QColor(0x9a, 0x10, 0x10);
      return {};
    case Qt::ToolTipRole: {
      QStringList tip;
      if (!r.connected) tip << QStringLiteral("subscriber not connected");
      if (!r.problem.isEmpty()) tip << QStringLiteral("cannot run: %1").arg(r.problem);
      if (!r.lastError.isEmpty()) tip << QStringLiteral("last error: %1").arg(r.lastError);
      return tip.isEmpty() ? QVariant() : QVariant(tip.join('\n'));
    }
    case Qt::TextAlignmentRole:
      return QVariant::fromValue((column >= kCursor && column <= kDeadLetters ? Qt::AlignRight : Qt::AlignLeft) |
                                 Qt::AlignVCenter);
    case kSortRole:
      switch (column) {
        case kCursor: return static_cast<qulonglong>(r.cursor);
        case kLag: return static_cast<qulonglong>(r.lagChangesets);
        case kLagMs: return static_cast<qulonglong>(r.lagMs);
        case kAppliedPerS: return r.appliedPerS;
        case kRowsPerS: return r.rowsPerS;
        default: break;
      }
      [[fallthrough]];
    case Qt::DisplayRole:
      switch (column) {
        case kRoute: return r.route;
        case kFrom: return r.source;
        case kTo: return r.connected ? r.subscriber : r.subscriber + QStringLiteral(" (disconnected)");
        case kCursor: return static_cast<qulonglong>(r.cursor);
        case kLag: return static_cast<qulonglong>(r.lagChangesets);
        case kLagMs: return static_cast<qulonglong>(r.lagMs);
        case kAppliedPerS: return humanRate(r.appliedPerS);
        case kRowsPerS: return humanRate(r.rowsPerS);
        case kConflicts: return static_cast<qulonglong>(r.conflicts);
        case kErrors: return static_cast<qulonglong>(r.errors);
        case kDeadLetters: return static_cast<qulonglong>(r.deadLetters);
        case kLastError: return r.problem.isEmpty() ? r.lastError : r.problem;
        default: return {};
      }
    default:
      return {};
  }
}

}  // namespace ipcsync::admin
