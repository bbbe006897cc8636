#include "ipcsync/admin/journal_models.h"

#include <QColor>
#include <QDateTime>
#include <QFont>
#include <QStringList>

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
        case kKey: return QStringLiteral("source values as parked: %1\ntarget values as parked: %2").arg(c.sourceJson, c.targetJson);
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

namespace ipcsync::admin {

ConflictDetailModel::ConflictDetailModel(QObject* parent) : KeyedTableModel(parent) {}

bool ConflictDetailModel::bothEnds(const ConflictColumn& c) const {
  // Changed at both ends to different values; with no base (an INSERT meeting a row), any difference.
  if (!c.differs || !m_hasTarget || c.key) return false;
  return c.base.isUndefined() ? !c.source.isUndefined() : c.sourceChanged && c.targetChanged;
}

void ConflictDetailModel::show(const ConflictRow* conflict) {
  m_op = conflict ? conflict->sides.op : QString();
  m_hasTarget = conflict && conflict->targetJson.trimmed() != QLatin1String("null") && !conflict->targetJson.isEmpty();
  apply(conflict ? conflict->sides.columns : std::vector<ConflictColumn>{});
}

QVariant ConflictDetailModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || section < 0 || section >= kColumnCount) return {};
  if (role == Qt::DisplayRole) {
    static const char* const kTitles[kColumnCount] = {"Column", "Base (before)", "Source (incoming)", "Target (when parked)"};
    return QString::fromLatin1(kTitles[section]);
  }
  if (role == Qt::ToolTipRole) {
    switch (section) {
      case kBase: return tr("The source's old values: the row both sides started from. An UPDATE carries only the key and the columns it changes.");
      case kSource: return tr("What the incoming change sets.");
      case kTarget: return tr("The target's row when the conflict was parked (the console cannot read the plugin's database).");
      default: return {};
    }
  }
  return {};
}

QVariant ConflictDetailModel::cell(const ConflictColumn& c, int column, int role) const {
  const QJsonValue& v = column == kBase ? c.base : column == kSource ? c.source : c.target;
  auto placeholder = [&]() -> QString {
    switch (column) {
      case kBase: return m_op == QLatin1String("INSERT") ? tr("(no row)") : tr("—");
      case kSource: return m_op == QLatin1String("DELETE") ? tr("(deleted)") : tr("(unchanged)");
      case kTarget: return m_hasTarget ? tr("?") : tr("(no row)");
      default: return {};
    }
  };
  switch (role) {
    case Qt::DisplayRole:
      if (column == kName) return c.key ? tr("%1 (key)").arg(c.name) : c.name;
      return v.isUndefined() ? placeholder() : displayValue(v);
    case kSortRole:
      return column == kName ? c.name : displayValue(v);
    case Qt::ToolTipRole:
      if (column == kName) {
        QStringList why;
        if (c.sourceChanged) why << tr("the source changed it");
        if (c.targetChanged) why << tr("the target changed it too");
        if (bothEnds(c)) why << tr("changed at both ends: this is what conflicts");
        else if (c.differs) why << tr("source and target disagree");
        return why.isEmpty() ? QVariant() : QVariant(why.join(QStringLiteral("; ")));
      }
      if (column == kBase && v.isUndefined() && m_op == QLatin1String("UPDATE"))
        return tr("not in the change: an UPDATE carries only the key and the columns it changes");
      return v.isUndefined() ? QVariant() : QVariant(displayValue(v));
    case Qt::ForegroundRole:
      if (column != kName && v.isUndefined()) return QColor(0x80, 0x80, 0x80);
      return {};
    case Qt::BackgroundRole:
      if (bothEnds(c) && (column == kSource || column == kTarget)) return QColor(0xf8, 0xc8, 0xc8);
      if (c.sourceChanged && column == kSource) return QColor(0xd0, 0xe4, 0xff);
      if (c.targetChanged && column == kTarget) return QColor(0xff, 0xe0, 0xa0);
      return {};
    case Qt::FontRole:
      if (c.key || bothEnds(c)) {
        QFont f;
        f.setBold(true);
        return f;
      }
      return {};
    default:
      return {};
  }
}

QString conflictHeading(const ConflictRow& c) {
  const QDateTime parked = QDateTime::fromMSecsSinceEpoch(c.parkedAtUs / 1000);
  QString current;
  if (c.targetChangesSince < 0)
    current = QObject::tr("%1 is no journaled source, so the console cannot tell whether its row changed since it was parked.")
                  .arg(c.subscriber.toHtmlEscaped());
  else if (c.targetChangesSince == 0)
    current = QObject::tr("%1 has journaled no change to <i>%2</i> since this change-set: its row is most likely still as shown.")
                  .arg(c.subscriber.toHtmlEscaped(), c.table.toHtmlEscaped());
  else
    current = QObject::tr("<b>%1 has journaled %2 change-set(s) to <i>%3</i> since</b>: its current row may differ from "
                          "the target column.")
                  .arg(c.subscriber.toHtmlEscaped())
                  .arg(c.targetChangesSince)
                  .arg(c.table.toHtmlEscaped());
  QString text = QObject::tr("<b>Conflict #%1</b> (%2, %3) on route <b>%4</b>: %5 → %6, table <b>%7</b>, key %8; "
                             "journal sequence %9, parked %10; %11.<br>%12")
                     .arg(c.id)
                     .arg(c.kind.toHtmlEscaped(), c.sides.op.isEmpty() ? QObject::tr("change unknown") : c.sides.op,
                          c.route.toHtmlEscaped(), c.origin.toHtmlEscaped(), c.subscriber.toHtmlEscaped(),
                          c.table.toHtmlEscaped(), c.keyJson.toHtmlEscaped())
                     .arg(c.sequence)
                     .arg(parked.toString(QStringLiteral("yyyy-MM-dd HH:mm:ss")), resolutionText(c.resolution), current);
  if (!c.sides.note.isEmpty()) text += QStringLiteral("<br><span style='color:#9a1010'>%1</span>").arg(c.sides.note.toHtmlEscaped());
  return text;
}

}  // namespace ipcsync::admin
