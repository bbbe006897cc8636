#include "config_yaml.h"

#include <algorithm>
#include <charconv>

namespace ipcsync::config_yaml {

std::string Ctx::at(const YAML::Node& n) const {
  const YAML::Mark m = n.Mark();
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

std::size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string nearest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t bestD = 1000;
  for (const auto& k : candidates)
    if (auto d = editDistance(word, k); d < bestD) bestD = d, best = k;
  return bestD <= std::max<std::size_t>(2, word.size() / 3) ? best : std::string();
}

void checkKeys(const Ctx& c, const YAML::Node& map, std::initializer_list<const char*> known, const std::string& where) {
  if (!map.IsMap()) throw ConfigFail{{c.at(map) + ": '" + where + "' must be a mapping of keys to values"}};
  const std::vector<std::string> names(known.begin(), known.end());
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    if (std::ranges::find(names, key) != names.end()) continue;
    std::string msg = c.at(kv.first) + ": unknown key '" + key + "' in " + where;
    if (const auto best = nearest(key, names); !best.empty()) msg += "; did you mean '" + best + "'?";
    else {
      msg += "; known keys:";
      for (const auto& k : names) msg += " " + k;
    }
    throw ConfigFail{{msg}};
  }
}

std::string scalar(const Ctx& c, const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) throw ConfigFail{{c.at(n) + ": '" + key + "' must be a single value"}};
  return n.Scalar();
}

std::uint64_t integer(const Ctx& c, const YAML::Node& n, const std::string& key, std::uint64_t lo, std::uint64_t hi) {
  const std::string s = scalar(c, n, key);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi)
    throw ConfigFail{{c.at(n) + ": '" + key + "' is '" + s + "'; expected a whole number from " + std::to_string(lo) +
                      " to " + std::to_string(hi)}};
  return v;
}

bool boolean(const Ctx& c, const YAML::Node& n, const std::string& key) {
  const std::string s = scalar(c, n, key);
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  throw ConfigFail{{c.at(n) + ": '" + key + "' is '" + s + "'; expected true or false"}};
}

std::filesystem::path pathFrom(const Ctx& c, const YAML::Node& n, const std::string& key) {
  const std::string s = n.IsNull() ? std::string() : scalar(c, n, key);
  if (s.empty()) throw ConfigFail{{c.at(n) + ": '" + key + "' is empty; expected a path"}};
  std::filesystem::path p(s);
  if (p.is_relative()) p = c.dir / p;
  return p.lexically_normal();
}

}  // namespace ipcsync::config_yaml
