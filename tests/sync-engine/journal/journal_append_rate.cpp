// Prints how many appends per second the journal takes for batches of 1 and 256 change-sets of
// 1 KiB, under each durability, on a fresh file in the directory given (default /tmp). A
// measurement for docs/design/journal.md, not a test: nothing here passes or fails.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "ipcsync/sync/journal.h"

using namespace ipcsync;

namespace {

double measure(const std::filesystem::path& dir, Durability durability, std::size_t batchSize, int appends) {
  JournalConfig c;
  c.path = dir / ("rate-" + std::to_string(::getpid()) + ".db");
  c.durability = durability;
  c.maxBytes = 1ull << 40;
  auto j = Journal::open(c);
  if (!j) {
    std::fprintf(stderr, "%s\n", j.error().message.c_str());
    return 0;
  }
  std::vector<JournalEntry> batch(batchSize);
  for (auto& e : batch) {
    e.origin = "crm";
    e.tables = {"contacts"};
    e.pieces = {std::vector<unsigned char>(1024, 0x5a)};
  }
  std::uint64_t next = 1;
  const auto start = std::chrono::steady_clock::now();
  for (int a = 0; a < appends; ++a) {
    for (auto& e : batch) e.originSequence = next++;
    if (auto r = (*j)->append(batch); !r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 0;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  j->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(c.path.string() + suffix);
  return appends / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "/tmp";
  std::printf("%-8s %6s %14s %16s\n", "sync", "batch", "appends/s", "change-sets/s");
  const std::pair<Durability, const char*> modes[] = {
      {Durability::Full, "full"}, {Durability::Normal, "normal"}, {Durability::Off, "off"}};
  for (const auto& [durability, name] : modes)
    for (const std::size_t batch : {std::size_t{1}, std::size_t{256}}) {
      const double rate = measure(dir, durability, batch, batch == 1 ? 3000 : 200);
      std::printf("%-8s %6zu %14.0f %16.0f\n", name, batch, rate, rate * static_cast<double>(batch));
    }
  return 0;
}
