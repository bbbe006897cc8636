#include "ipcsync/admin/format.h"

namespace ipcsync::admin {

QString humanBytes(std::uint64_t bytes) {
  constexpr std::uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
  const auto scaled = [&](std::uint64_t unit, const char* name) {
    return QString::number(static_cast<double>(bytes) / static_cast<double>(unit), 'f', 1) + " " + name;
  };
  if (bytes >= kGiB) return scaled(kGiB, "GiB");
  if (bytes >= kMiB) return scaled(kMiB, "MiB");
  if (bytes >= kKiB) return scaled(kKiB, "KiB");
  return QString::number(bytes) + " B";
}

QString humanAge(std::uint64_t ns) {
  const std::uint64_t s = ns / 1'000'000'000ULL;
  if (s < 1) return QStringLiteral("now");
  if (s < 120) return QString::number(s) + " s";
  if (s < 2 * 3600) return QString::number(s / 60) + " min";
  if (s < 2 * 86400) return QString::number(s / 3600) + " h";
  return QString::number(s / 86400) + " d";
}

QString humanRate(double perSecond, bool bytes) {
  if (perSecond < 0) perSecond = 0;
  if (bytes) return humanBytes(static_cast<std::uint64_t>(perSecond + 0.5)) + "/s";
  if (perSecond >= 1e6) return QString::number(perSecond / 1e6, 'f', 1) + "M/s";
  if (perSecond >= 1e4) return QString::number(perSecond / 1e3, 'f', 1) + "k/s";
  return QString::number(static_cast<std::uint64_t>(perSecond + 0.5)) + "/s";
}

}  // namespace ipcsync::admin
