#include "topology_widget.h"

#include <QPainter>
#include <QPainterPath>

#include <cmath>
#include <map>
#include <numbers>

#include "ipcsync/admin/format.h"

namespace ipcsync::admin {
namespace {

TopologyWidget::Health healthOf(const QString& state) {
  if (state == QLatin1String("failed")) return TopologyWidget::Health::Failed;
  if (state == QLatin1String("restarting")) return TopologyWidget::Health::Restarting;
  if (state == QLatin1String("running")) return TopologyWidget::Health::Ok;
  return TopologyWidget::Health::Unknown;
}

QString routeLabel(const SyncRoute& r) {
  QString text = QStringLiteral("%1 · lag %2 (%3 ms) · %4").arg(r.route).arg(r.lagChangesets).arg(r.lagMs).arg(humanRate(r.appliedPerS));
  if (!r.connected) text += QStringLiteral(" · disconnected");
  if (r.deadLetters) text += QStringLiteral(" · %1 dead").arg(r.deadLetters);
  return text;
}

}  // namespace

TopologyWidget::TopologyWidget(QWidget* parent) : QWidget(parent) {
  setFocusPolicy(Qt::StrongFocus);
  setAccessibleName(tr("Topology"));
  setBackgroundRole(QPalette::Base);
  setAutoFillBackground(true);
  m_note = tr("No sync.json: no sync engine runs in this namespace.");
}

QColor TopologyWidget::fillFor(Health health) {
  switch (health) {
    case Health::Failed: return {0xd3, 0x2f, 0x2f};
    case Health::Restarting: return {0xf5, 0x9e, 0x0b};
    case Health::Ok: return {0xe3, 0xf2, 0xe5};
    case Health::Unknown: break;
  }
  return {0xee, 0xee, 0xee};
}

const TopologyWidget::Node* TopologyWidget::node(const QString& name) const {
  for (const auto& n : m_nodes)
    if (n.name == name) return &n;
  return nullptr;
}

void TopologyWidget::setStatus(const PluginsStatus& plugins, const SyncStatus& sync) {
  std::vector<Node> nodes;
  auto add = [&nodes](const QString& name, const QString& state, bool engine) {
    for (const auto& n : nodes)
      if (n.name == name) return;
    nodes.push_back({name, state, healthOf(state), engine});
  };
  if (plugins.sync || sync.present)
    add(tr("sync engine"), plugins.sync ? plugins.sync->state : QStringLiteral("running"), true);
  for (const auto& i : plugins.instances) add(i.name, i.state, false);
  for (const auto& r : sync.routes) {  // routes may name instances plugins.json does not list
    add(r.source, QString(), false);
    add(r.subscriber, QString(), false);
  }
  m_nodes = std::move(nodes);
  m_routes = sync.routes;
  m_note = !sync.error.isEmpty() ? tr("sync.json: %1").arg(sync.error)
           : !sync.present       ? tr("No %1: no sync engine runs in this namespace.").arg(QString::fromStdString(sync.path.string()))
           : sync.routes.empty() ? tr("The sync engine has no routes.")
                                 : QString();
  update();
}

void TopologyWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  const QRectF area = QRectF(rect()).adjusted(8, 8, -8, -8);
  if (!m_note.isEmpty()) {
    p.setPen(palette().color(QPalette::Text));
    p.drawText(area, Qt::AlignLeft | Qt::AlignTop | Qt::TextWordWrap, m_note);
  }
  if (m_nodes.empty()) return;

  // Positions: the engine in the middle, plugins on a circle.
  const QPointF centre = area.center() + QPointF(0, 10);
  const double radius = std::max(40.0, std::min(area.width(), area.height()) / 2 - 40);
  std::map<QString, QPointF> at;
  std::size_t plugins = 0;
  for (const auto& n : m_nodes) plugins += n.engine ? 0 : 1;
  std::size_t k = 0;
  for (const auto& n : m_nodes) {
    if (n.engine) {
      at[n.name] = centre;
      continue;
    }
    const double angle = -std::numbers::pi / 2 + 2 * std::numbers::pi * static_cast<double>(k++) / static_cast<double>(plugins);
    at[n.name] = centre + QPointF(radius * 1.25 * std::cos(angle), radius * std::sin(angle));
  }
  const QFontMetrics fm(font());
  const double nodeW = 130, nodeH = 2.0 * fm.height() + 10;

  // Edges first, under the nodes. A pair of routes in both directions is drawn as two offset lines.
  for (const auto& r : m_routes) {
    if (!at.contains(r.source) || !at.contains(r.subscriber) || r.source == r.subscriber) continue;
    QPointF a = at[r.source], b = at[r.subscriber];
    const QPointF d = b - a;
    const double len = std::hypot(d.x(), d.y());
    const QPointF unit = d / len, normal(-unit.y(), unit.x());
    a += normal * 7;
    b += normal * 7;
    // Stop the arrow at the node's box edge.
    const double shrink = std::min(len / 2 - 2, std::min(nodeW / 2 / std::max(std::abs(unit.x()), 1e-6),
                                                         nodeH / 2 / std::max(std::abs(unit.y()), 1e-6)) + 4);
    const QPointF from = a + unit * shrink, to = b - unit * shrink;
    const bool bad = !r.problem.isEmpty() || r.deadLetters > 0;
    const QColor colour = bad ? QColor(0xc6, 0x28, 0x28) : r.errors || r.conflicts ? QColor(0xe0, 0x8a, 0x00) : QColor(0x37, 0x47, 0x4f);
    QPen pen(colour, 2);
    if (!r.connected) pen.setStyle(Qt::DashLine);
    p.setPen(pen);
    p.drawLine(from, to);
    QPainterPath head;
    head.moveTo(to);
    head.lineTo(to - unit * 11 + normal * 5);
    head.lineTo(to - unit * 11 - normal * 5);
    head.closeSubpath();
    p.fillPath(head, colour);
    const QString label = routeLabel(r);
    const QPointF mid = (from + to) / 2 + normal * 10;
    QRectF box(0, 0, fm.horizontalAdvance(label) + 8, fm.height() + 2);
    box.moveCenter(mid);
    p.setPen(Qt::NoPen);
    p.setBrush(QColor(255, 255, 255, 220));
    p.drawRoundedRect(box, 3, 3);
    p.setPen(colour);
    p.drawText(box, Qt::AlignCenter, label);
  }

  for (const auto& n : m_nodes) {
    QRectF box(0, 0, nodeW, nodeH);
    box.moveCenter(at[n.name]);
    const QColor fill = fillFor(n.health);
    const bool loud = n.health == Health::Failed || n.health == Health::Restarting;
    p.setPen(QPen(loud ? fill.darker(140) : QColor(0x60, 0x60, 0x60), n.engine ? 2.5 : 1.5));
    p.setBrush(fill);
    p.drawRoundedRect(box, 8, 8);
    QFont bold = font();
    bold.setBold(true);
    p.setFont(bold);
    p.setPen(loud ? Qt::white : palette().color(QPalette::Text));
    p.drawText(box.adjusted(4, 4, -4, -box.height() / 2), Qt::AlignCenter, fm.elidedText(n.name, Qt::ElideRight, static_cast<int>(nodeW) - 8));
    p.setFont(font());
    const QString state = n.health == Health::Failed ? QStringLiteral("FAILED") : n.health == Health::Restarting ? QStringLiteral("RESTARTING")
                          : n.state.isEmpty() ? tr("not in plugins.json") : n.state;
    p.drawText(box.adjusted(4, box.height() / 2, -4, -4), Qt::AlignCenter, state);
  }
}

}  // namespace ipcsync::admin
