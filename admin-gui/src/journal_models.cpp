#include "ipcsync/admin/journal_models.h"

#include <QColor>

namespace ipcsync::admin {
namespace {

QVariant title(const char* const* titles, int count, int section, Qt::Orientation orientation, int role) {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole || section < 0 || section >= count) return {};
  return QString::fromLatin1(titles[section]);
}

QVariant alignment(bool right) { return QVariant::fromValue((right ? Qt::AlignRight : Qt::AlignLeft) | Qt::AlignVCenter); }

}  // namespace

DeadLettersModel::DeadLettersModel(QObject* parent) : KeyedTableModel(parent) {}

QVariant DeadLettersModel::headerData(int section, Qt::Orientation orientation, int role) const {
  static const char* const kTitles[kColumnCount] = {"ID", "Route", "Subscriber", "Sequence", "Attempts", "Error"};
  return title(kTitles, kColumnCount, section, orientation, role);
}

QVariant DeadLettersModel::cell(const DeadLetterRow& d, int column, int role) const {
  switch (role) {
    case Qt::ToolTipRole:
      if (column == kError) return d.error;
      if (d.replayRequested) return QStringLiteral("replay requested");
      return {};
    case Qt::ForegroundRole:
      return d.replayRequested ? QVariant(QColor(0x70, 0x70, 0x70)) : QVariant();
    case Qt::TextAlignmentRole:
      return alignment(column == kId || column == kSequence || column == kAttempts);
    case kSortRole:
    case Qt::DisplayRole:
      switch (column) {
        case kId: return static_cast<qlonglong>(d.id);
        case kRoute: return d.route;
        case kSubscriber: return d.subscriber;
        case kSequence: return static_cast<qlonglong>(d.sequence);
        case kAttempts: return static_cast<qlonglong>(d.attempts);
        case kError: return d.replayRequested && role == Qt::DisplayRole ? d.error + QStringLiteral(" (replay requested)") : d.error;
        default: return {};
      }
    default:
      return {};
  }
}

ConflictsModel::ConflictsModel(QObject* parent) : KeyedTableModel(parent) {}

QVariant ConflictsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  static const char* const kTitles[kColumnCount] = {"ID", "Route", "Table", "Key", "Source values", "Target values",
                                                    "Resolution"};
  return title(kTitles, kColumnCount, section, orientation, role);
}

QVariant ConflictsModel::cell(const ConflictRow& c, int column, int role) const {
  switch (role) {
    case Qt::ToolTipRole:
      switch (column) {
        case kRoute: return QStringLiteral("%1 → %2 (from %3, journal sequence %4)").arg(c.route, c.subscriber, c.origin).arg(c.sequence);
        case kTable: return QStringLiteral("%1 (%2)").arg(c.table, c.kind);
        case kSource: return c.sourceJson;
        case kTarget: return c.targetJson;
        default: return {};
      }
    case Qt::BackgroundRole:
      return c.resolution == 0 ? QVariant(QColor(0xff, 0xf0, 0xc8)) : QVariant();
    case Qt::TextAlignmentRole:
      return alignment(column == kId);
    case kSortRole:
    case Qt::DisplayRole:
      switch (column) {
        case kId: return static_cast<qlonglong>(c.id);
        case kRoute: return c.route;
        case kTable: return c.table;
        case kKey: return c.keyJson;
        case kSource: return c.sourceJson;
        case kTarget: return c.targetJson;
        case kResolution: return resolutionText(c.resolution);
        default: return {};
      }
    default:
      return {};
  }
}

}  // namespace ipcsync::admin
