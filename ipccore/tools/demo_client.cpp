// ipcsync-demo-client: registers with an engine, allocates a mix of sub-blocks in its own block,
// fills and checks them, prints what its manager shows, holds on for a while, and leaves.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ipcsync/ipccore/client.h"

namespace {
void usage() {
  std::fprintf(stderr,
               "usage: ipcsync-demo-client --name NAME [--namespace NS] [--allocations N] [--hold-ms MS]\n"
               "                           [--publish TOPIC]\n"
               "Registers NAME with the engine of NS (default 'default'), makes N allocations of\n"
               "random sizes (64 B to 64 KiB) in its own block, prints its manager's figures, waits\n"
               "MS milliseconds and exits. With --publish, it also publishes N small messages on\n"
               "TOPIC and asks the engine to cache the last 8 of them for late subscribers.\n"
               "Exit codes: 0 ok, 1 engine error, 2 usage error.\n");
}
}  // namespace

int main(int argc, char** argv) {
  ipcsync::ConnectOptions options;
  int allocations = 32;
  int holdMs = 1000;
  std::string topic;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--name") options.name = value();
    else if (arg == "--namespace") options.ns = value();
    else if (arg == "--allocations") allocations = std::stoi(value());
    else if (arg == "--hold-ms") holdMs = std::stoi(value());
    else if (arg == "--publish") topic = value();
    else {
      usage();
      return arg == "--help" ? 0 : 2;
    }
  }
  if (options.name.empty()) {
    usage();
    return 2;
  }
  auto client = ipcsync::Client::connect(options);
  if (!client) {
    std::fprintf(stderr, "%s: cannot register: %s\n", options.name.c_str(), client.error().message().c_str());
    return 1;
  }
  auto& c = **client;
  std::printf("%s: registered in namespace '%s', slot %u, pid %d\n", c.name().c_str(), c.ns().c_str(), c.slot(),
              static_cast<int>(::getpid()));

  std::mt19937_64 rng(std::hash<std::string>{}(c.name()));
  std::vector<ipcsync::Allocation> held;
  for (int i = 0; i < allocations; ++i) {
    const std::uint64_t size = std::uint64_t{64} << (rng() % 11);
    auto a = c.allocate(size);
    if (!a) {
      std::fprintf(stderr, "%s: %s\n", c.name().c_str(), a.error().message().c_str());
      return 1;
    }
    auto bytes = c.bytes(*a);
    std::memset(bytes.data(), i & 0xff, bytes.size());
    held.push_back(*a);
  }
  for (std::size_t i = 0; i < held.size(); ++i) {
    auto bytes = c.bytes(held[i]);
    for (std::byte b : bytes)
      if (b != static_cast<std::byte>(i & 0xff)) {
        std::fprintf(stderr, "%s: data in sub-block %zu changed under us\n", c.name().c_str(), i);
        return 1;
      }
  }
  if (auto s = c.stats()) {
    std::printf("%s: %zu sub-blocks, %llu B in use, %llu B free, largest free run %llu B, %u arena(s)\n",
                c.name().c_str(), held.size(), static_cast<unsigned long long>(s->bytesInUse),
                static_cast<unsigned long long>(s->bytesFree), static_cast<unsigned long long>(s->largestFreeRun),
                s->activeArenas);
  }
  if (!topic.empty()) {
    auto channel = c.advertise(topic, 8);
    if (!channel) {
      std::fprintf(stderr, "%s: %s\n", c.name().c_str(), channel.error().message().c_str());
      return 1;
    }
    for (int i = 0; i < allocations; ++i) {
      const std::string text = c.name() + " update " + std::to_string(i + 1);
      auto loan = c.loan(text.size());
      if (!loan) {
        std::fprintf(stderr, "%s: %s\n", c.name().c_str(), loan.error().message().c_str());
        return 1;
      }
      std::memcpy(loan->bytes().data(), text.data(), text.size());
      if (auto sent = c.send(*channel, *loan); !sent) {
        std::fprintf(stderr, "%s: %s\n", c.name().c_str(), sent.error().message().c_str());
        return 1;
      }
    }
    std::printf("%s: published %d messages on '%s' (the engine keeps the last 8)\n", c.name().c_str(), allocations,
                topic.c_str());
  }
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(holdMs));
  for (const auto& a : held)
    if (auto r = c.free(a); !r) {
      std::fprintf(stderr, "%s: %s\n", c.name().c_str(), r.error().message().c_str());
      return 1;
    }
  if (auto r = c.ping(); !r) {
    std::fprintf(stderr, "%s: %s\n", c.name().c_str(), r.error().message().c_str());
    return 1;
  }
  std::printf("%s: freed everything, leaving\n", c.name().c_str());
  return 0;
}
