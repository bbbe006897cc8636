// Formatting of figures for the console: byte counts, ages and rates as people read them.
//
// Pure functions, thread-safe, no state.
#pragma once

#include <QString>

#include <cstdint>

namespace ipcsync::admin {

// "512 B", "4.0 KiB", "1.5 MiB", "2.0 GiB".
QString humanBytes(std::uint64_t bytes);
// How long ago, from nanoseconds: "now" (under a second), "12 s", "3 min", "2 h", "4 d".
QString humanAge(std::uint64_t ns);
// A rate per second: "0/s", "12/s", "1.2k/s"; with `bytes`, humanBytes + "/s".
QString humanRate(double perSecond, bool bytes = false);

}  // namespace ipcsync::admin
