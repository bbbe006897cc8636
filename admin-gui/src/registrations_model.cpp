#include "ipcsync/admin/registrations_model.h"

#include <QBrush>
#include <QColor>
#include <QLocale>

#include "ipcsync/admin/format.h"

namespace ipcsync::admin {
namespace {

QString text(std::string_view s) { return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size())); }

std::uint64_t blockBytes(const ProcessRecord& r) { return std::uint64_t{r.stats.activeArenas} * r.geometry.arenaSize(); }

double usedFraction(const ProcessRecord& r) {
  const std::uint64_t block = blockBytes(r);
  return block ? static_cast<double>(r.stats.bytesInUse) / static_cast<double>(block) : 0.0;
}

QString count(std::uint64_t n) { return QLocale::c().toString(static_cast<qulonglong>(n)); }

}  // namespace

void RegistrationsModel::update(const NamespaceSnapshot& snapshot) {
  std::vector<RegistrationRow> fresh;
  fresh.reserve(snapshot.records.size());
  for (const auto& [slot, record] : snapshot.records) {
    RegistrationRow row;
    row.key = {snapshot.engine.pid, snapshot.engine.startTicks, slot, record.generation};
    row.record = record;
    row.takenAtNs = snapshot.takenAtNs;
    row.windowStartNs = snapshot.monotonicNs;
    row.windowStart = record.traffic;
    fresh.push_back(row);
  }
  apply(std::move(fresh));
}

void RegistrationsModel::carryOver(const RegistrationRow& before, RegistrationRow& now) const {
  now.rated = before.rated;
  now.messagesInPerS = before.messagesInPerS;
  now.messagesOutPerS = before.messagesOutPerS;
  now.bytesInPerS = before.bytesInPerS;
  now.bytesOutPerS = before.bytesOutPerS;
  const std::uint64_t elapsed = now.windowStartNs - before.windowStartNs;
  if (elapsed < kRateWindowNs) {  // keep measuring from the same start
    now.windowStartNs = before.windowStartNs;
    now.windowStart = before.windowStart;
    return;
  }
  const double seconds = static_cast<double>(elapsed) / 1e9;
  const auto rate = [&](std::uint64_t a, std::uint64_t b) { return b >= a ? static_cast<double>(b - a) / seconds : 0.0; };
  const TrafficCounters& t = now.record.traffic;
  now.messagesInPerS = rate(before.windowStart.messagesIn, t.messagesIn);
  now.messagesOutPerS = rate(before.windowStart.messagesOut, t.messagesOut);
  now.bytesInPerS = rate(before.windowStart.bytesIn, t.bytesIn);
  now.bytesOutPerS = rate(before.windowStart.bytesOut, t.bytesOut);
  now.rated = true;
}

const RegistrationRow* RegistrationsModel::rowAt(int row) const {
  if (row < 0 || row >= rowCount()) return nullptr;
  return &rows()[static_cast<std::size_t>(row)];
}

QVariant RegistrationsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal) return {};
  static const char* const kTitles[kColumnCount] = {"Name",      "PID",      "UID",      "State",   "Block",
                                                    "In use",    "Msgs in",  "Msgs out", "Bytes in", "Bytes out",
                                                    "Rate in",   "Rate out", "Last seen"};
  static const char* const kTips[kColumnCount] = {
      "Registered name", "Process id", "User id", "Registry state",
      "Block size: active arenas x arena size (most the block may grow to in the tool-tip)",
      "Bytes allocated in the block (after rounding to powers of two), and share of the block",
      "Messages the engine delivered into this process", "Messages this process sent that the engine delivered",
      "Payload bytes delivered in", "Payload bytes sent out", "Messages and bytes per second delivered in",
      "Messages and bytes per second sent out", "When the engine last saw the process alive"};
  if (section < 0 || section >= kColumnCount) return {};
  if (role == Qt::DisplayRole) return QString::fromLatin1(kTitles[section]);
  if (role == Qt::ToolTipRole) return QString::fromLatin1(kTips[section]);
  return {};
}

QVariant RegistrationsModel::cell(const RegistrationRow& row, int column, int role) const {
  const ProcessRecord& r = row.record;
  const TrafficCounters& t = r.traffic;
  const bool numeric = column != kName && column != kState;
  if (role == Qt::TextAlignmentRole)
    return QVariant::fromValue(numeric ? Qt::AlignRight | Qt::AlignVCenter : Qt::AlignLeft | Qt::AlignVCenter);
  if (role == Qt::ForegroundRole) {
    if (column == kState && r.state != RecordState::Registered) return QColor(0xb0, 0x60, 0x00);
    if (column == kInUse && usedFraction(r) > 0.9) return QColor(0xc0, 0x20, 0x20);
    return {};
  }
  const std::uint64_t age = row.takenAtNs > r.lastSeenNs ? row.takenAtNs - r.lastSeenNs : 0;
  if (role == kSortRole) {
    switch (column) {
      case kName: return text(r.nameView()).toLower();
      case kPid: return r.pid;
      case kUid: return r.uid;
      case kState: return static_cast<int>(r.state);
      case kBlock: return static_cast<qulonglong>(blockBytes(r));
      case kInUse: return static_cast<qulonglong>(r.stats.bytesInUse);
      case kMessagesIn: return static_cast<qulonglong>(t.messagesIn);
      case kMessagesOut: return static_cast<qulonglong>(t.messagesOut);
      case kBytesIn: return static_cast<qulonglong>(t.bytesIn);
      case kBytesOut: return static_cast<qulonglong>(t.bytesOut);
      case kRateIn: return row.messagesInPerS;
      case kRateOut: return row.messagesOutPerS;
      case kLastSeen: return static_cast<qulonglong>(age / 1'000'000'000ULL);
      default: return {};
    }
  }
  if (role == Qt::ToolTipRole) {
    switch (column) {
      case kBlock:
        return QStringLiteral("%1 of at most %2 arenas of %3 (grows to %4)")
            .arg(r.stats.activeArenas)
            .arg(r.geometry.maxArenas)
            .arg(humanBytes(r.geometry.arenaSize()), humanBytes(r.geometry.maxBytes()));
      case kInUse: return QStringLiteral("%1 bytes in use, %2 bytes free").arg(count(r.stats.bytesInUse), count(r.stats.bytesFree));
      case kRateIn:
      case kRateOut: return row.rated ? QVariant() : QVariant(QStringLiteral("measuring: needs half a second of samples"));
      default: return {};
    }
  }
  if (role != Qt::DisplayRole) return {};
  const auto rate = [&](double messages, double bytes) {
    return row.rated ? humanRate(messages) + "  " + humanRate(bytes, true) : QStringLiteral("—");
  };
  switch (column) {
    case kName: return text(r.nameView());
    case kPid: return r.pid;
    case kUid: return r.uid;
    case kState: return text(describe(r.state));
    case kBlock: return QStringLiteral("%1 × %2").arg(r.stats.activeArenas).arg(humanBytes(r.geometry.arenaSize()));
    case kInUse:
      return QStringLiteral("%1 (%2%)").arg(humanBytes(r.stats.bytesInUse)).arg(usedFraction(r) * 100.0, 0, 'f', 1);
    case kMessagesIn: return count(t.messagesIn);
    case kMessagesOut: return count(t.messagesOut);
    case kBytesIn: return humanBytes(t.bytesIn);
    case kBytesOut: return humanBytes(t.bytesOut);
    case kRateIn: return rate(row.messagesInPerS, row.bytesInPerS);
    case kRateOut: return rate(row.messagesOutPerS, row.bytesOutPerS);
    case kLastSeen: return humanAge(age);
    default: return {};
  }
}

}  // namespace ipcsync::admin
