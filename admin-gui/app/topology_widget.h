// TopologyWidget: the namespace's plugins and the sync engine as nodes, routes as arrows from
// source to subscriber, each labelled with its live lag (change-sets, ms) and throughput.
//
// Nodes sit on a circle (the sync engine, which carries every route, in the middle). Failed
// plugins are red, restarting ones orange; a disconnected route is dashed; a route that cannot
// run or has dead letters is red. Painted by hand; fed whole snapshots by setStatus(). GUI thread.
#pragma once

#include <QWidget>

#include "ipcsync/admin/plugins_status.h"
#include "ipcsync/admin/sync_status.h"

namespace ipcsync::admin {

class TopologyWidget : public QWidget {
  Q_OBJECT

 public:
  enum class Health { Ok, Unknown, Restarting, Failed };
  struct Node {
    QString name, state;
    Health health = Health::Unknown;
    bool engine = false;  // the sync engine itself
  };

  explicit TopologyWidget(QWidget* parent = nullptr);

  void setStatus(const PluginsStatus& plugins, const SyncStatus& sync);
  const std::vector<Node>& nodes() const noexcept { return m_nodes; }
  const std::vector<SyncRoute>& routes() const noexcept { return m_routes; }
  // The node called `name`, or nullptr.
  const Node* node(const QString& name) const;
  // How a node is filled (tests check that failed plugins stand out).
  static QColor fillFor(Health health);

  QSize sizeHint() const override { return {640, 420}; }
  QSize minimumSizeHint() const override { return {240, 180}; }

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  std::vector<Node> m_nodes;
  std::vector<SyncRoute> m_routes;
  QString m_note;  // shown when there is nothing to draw
};

}  // namespace ipcsync::admin
