// PluginsModel: the daemon's plugin instances and the plugin files available but not configured,
// from plugins.json. One row per instance (keyed by its name) and one per available file.
// Failed and restarting instances stand out: state text in capitals with a marker, a coloured
// background, and an icon. GUI thread only.
#pragma once

#include <QIcon>

#include "ipcsync/admin/keyed_table_model.h"
#include "ipcsync/admin/plugins_status.h"

namespace ipcsync::admin {

struct PluginRow {
  bool available = false;  // an available, not configured file (only `library` is set)
  PluginInstance instance;
};

class PluginsModel : public KeyedTableModel<PluginRow, QString> {
  Q_OBJECT

 public:
  enum Column { kInstance, kLibrary, kState, kPid, kRestarts, kLastExit, kMessage, kColumnCount };
  explicit PluginsModel(QObject* parent = nullptr);

  void update(const PluginsStatus& status);
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

  // How a state is shown: the text, and whether it is trouble (failed) or a warning (restarting).
  static QString stateText(const PluginRow& row);

 protected:
  int columns() const override { return kColumnCount; }
  QString keyOf(const PluginRow& row) const override;
  QVariant cell(const PluginRow& row, int column, int role) const override;

 private:
  QIcon m_failedIcon, m_restartingIcon, m_runningIcon;
};

}  // namespace ipcsync::admin
