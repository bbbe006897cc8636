#include "ipcsync/admin/plugins_model.h"

#include <QColor>
#include <QPainter>
#include <QPixmap>

namespace ipcsync::admin {
namespace {

// A round badge with a one-character glyph, drawn here so it looks the same on every platform.
QIcon badge(QColor fill, QChar glyph) {
  QPixmap pm(32, 32);
  pm.fill(Qt::transparent);
  QPainter p(&pm);
  p.setRenderHint(QPainter::Antialiasing);
  p.setPen(Qt::NoPen);
  p.setBrush(fill);
  p.drawEllipse(2, 2, 28, 28);
  QFont f = p.font();
  f.setBold(true);
  f.setPixelSize(20);
  p.setFont(f);
  p.setPen(Qt::white);
  p.drawText(QRect(0, 0, 32, 32), Qt::AlignCenter, QString(glyph));
  return QIcon(pm);
}

bool failed(const PluginRow& r) { return !r.available && r.instance.state == QLatin1String("failed"); }
bool restarting(const PluginRow& r) { return !r.available && r.instance.state == QLatin1String("restarting"); }

}  // namespace

PluginsModel::PluginsModel(QObject* parent)
    : KeyedTableModel(parent),
      m_failedIcon(badge(QColor(0xc6, 0x28, 0x28), QLatin1Char('!'))),
      m_restartingIcon(badge(QColor(0xe0, 0x8a, 0x00), QChar(0x21bb))),
      m_runningIcon(badge(QColor(0x2e, 0x7d, 0x32), QChar(0x2713))) {}

QString PluginsModel::keyOf(const PluginRow& row) const {
  return row.available ? QStringLiteral("file:") + row.instance.library : QStringLiteral("instance:") + row.instance.name;
}

void PluginsModel::update(const PluginsStatus& status) {
  std::vector<PluginRow> fresh;
  for (const auto& i : status.instances) fresh.push_back({false, i});
  for (const auto& file : status.available) {
    PluginRow r{true, {}};
    r.instance.library = file;
    fresh.push_back(std::move(r));
  }
  apply(std::move(fresh));
}

QString PluginsModel::stateText(const PluginRow& row) {
  if (row.available) return QStringLiteral("available, not configured");
  if (failed(row)) return QStringLiteral("FAILED");
  if (restarting(row)) {
    return row.instance.restartAt.isEmpty() ? QStringLiteral("RESTARTING")
                                            : QStringLiteral("RESTARTING at %1").arg(row.instance.restartAt.mid(11, 12));
  }
  return row.instance.state;
}

QVariant PluginsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  static const char* const kTitles[kColumnCount] = {"Instance", "Library",   "State", "PID",
                                                    "Restarts", "Last exit", "Message"};
  return section >= 0 && section < kColumnCount ? QVariant(QString::fromLatin1(kTitles[section])) : QVariant();
}

QVariant PluginsModel::cell(const PluginRow& row, int column, int role) const {
  const PluginInstance& p = row.instance;
  switch (role) {
    case Qt::BackgroundRole:
      if (failed(row)) return QColor(0xfd, 0xe0, 0xe0);
      if (restarting(row)) return QColor(0xff, 0xf0, 0xc8);
      return {};
    case Qt::ForegroundRole:
      if (failed(row)) return QColor(0x9a, 0x10, 0x10);
      if (restarting(row)) return QColor(0x7a, 0x4a, 0x00);
      if (row.available) return QColor(0x70, 0x70, 0x70);
      return {};
    case Qt::DecorationRole:
      if (column != kState || row.available) return {};
      if (failed(row)) return m_failedIcon;
      if (restarting(row)) return m_restartingIcon;
      if (p.state == QLatin1String("running")) return m_runningIcon;
      return {};
    case Qt::ToolTipRole:
      if (column == kMessage || column == kState) {
        QString tip = p.message;
        if (!p.since.isEmpty()) tip += (tip.isEmpty() ? "" : "\n") + QStringLiteral("in this state since %1").arg(p.since);
        return tip.isEmpty() ? QVariant() : QVariant(tip);
      }
      return {};
    case Qt::TextAlignmentRole:
      return QVariant::fromValue((column == kPid || column == kRestarts ? Qt::AlignRight : Qt::AlignLeft) | Qt::AlignVCenter);
    case kSortRole:
      switch (column) {
        case kPid: return p.pid ? QVariant(static_cast<qlonglong>(*p.pid)) : QVariant(-1LL);
        case kRestarts: return static_cast<qlonglong>(p.restarts);
        case kState: return stateText(row);
        default: break;
      }
      [[fallthrough]];
    case Qt::DisplayRole:
      switch (column) {
        case kInstance: return row.available ? QStringLiteral("—") : p.name;
        case kLibrary: return p.library;
        case kState: return stateText(row);
        case kPid: return p.pid ? QVariant(static_cast<qlonglong>(*p.pid)) : QVariant(QStringLiteral("—"));
        case kRestarts: return row.available ? QVariant() : QVariant(static_cast<qlonglong>(p.restarts));
        case kLastExit: return p.lastExit.isEmpty() ? QStringLiteral("—") : p.lastExit;
        case kMessage: return p.message;
        default: return {};
      }
    default:
      return {};
  }
}

}  // namespace ipcsync::admin
