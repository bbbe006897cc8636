// Messaging benchmark: one-way latency (ping-pong round trip / 2) and streaming throughput for
// ipcsync (through the engine) and, in the same run with the same sizes, a pipe, a Unix stream
// socket and a Boost.Interprocess message_queue; plus memcpy bandwidth as the ceiling of a
// one-copy design. Every transport runs between two processes. The pipe runs three times: where
// the scheduler puts its ends, and pinned to one CPU and to two (its latency differs tenfold).
//
//   build/release/bench/messaging_bench [--quick] [--spin-us N] [--sizes 64,4096,...]
//                                       [--handover-threshold BYTES]   (default: copy every size)
//                                       [--handover-pool N]   (objects kept prepared per size class; 0: none)
//                                       [--inflight-cap BYTES]   (ConnectOptions::maxBytesInFlight; 0: none)
//                                       [--client-spin-us N]   (ConnectOptions::spin of both clients)
//                                       [--ours-only]   (skip the peers: for profiling)
//                                       [--gap-us N]   (pause between ping-pongs: sparse traffic, every transport)
//
// What each side does, for every transport: the sender copies the payload from its own buffer
// into the transport (write(), message_queue::send, or a memcpy into an ipcsync loan); the
// receiver takes the message (read() into its buffer, message_queue::receive, or
// Client::receive, which hands out a view into its own block without a copy) and, in ping-pong,
// copies it into the reply.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <time.h>

#include <boost/interprocess/ipc/message_queue.hpp>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "bench_util.h"
#include "ipcsync/ipccore/client.h"

namespace bip = boost::interprocess;
using namespace ipcsync;
using namespace ipcsync::bench;
using namespace std::chrono_literals;

namespace {

// One end of a transport, in one process.
struct Endpoint {
  virtual ~Endpoint() = default;
  virtual void send(const std::byte* data, std::size_t n) = 0;
  // Takes the next message, copying it into `into` unless that is null.
  virtual void receive(std::byte* into, std::size_t n) = 0;
};

void writeAll(int fd, const std::byte* p, std::size_t n) {
  while (n) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      std::perror("write");
      std::exit(1);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}
void readAll(int fd, std::byte* p, std::size_t n) {
  while (n) {
    const ssize_t r = ::read(fd, p, n);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      std::fprintf(stderr, "read: %s\n", r == 0 ? "end of stream" : std::strerror(errno));
      std::exit(1);
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
}

struct FdEndpoint : Endpoint {
  int in, out;
  FdEndpoint(int i, int o) : in(i), out(o) {}
  void send(const std::byte* d, std::size_t n) override { writeAll(out, d, n); }
  void receive(std::byte* into, std::size_t n) override { readAll(in, into, n); }
};

struct QueueEndpoint : Endpoint {
  std::unique_ptr<bip::message_queue> in, out;
  QueueEndpoint(const std::string& inName, const std::string& outName)
      : in(new bip::message_queue(bip::open_only, inName.c_str())), out(new bip::message_queue(bip::open_only, outName.c_str())) {}
  void send(const std::byte* d, std::size_t n) override { out->send(d, n, 0); }
  void receive(std::byte* into, std::size_t n) override {
    bip::message_queue::size_type got = 0;
    unsigned prio = 0;
    in->receive(into, n, got, prio);
  }
};

struct IpcsyncEndpoint : Endpoint {
  std::unique_ptr<Client> client;
  SessionId session = 0;
  bool read = true;  // false: "received" means holding the message, without touching its bytes
  void send(const std::byte* d, std::size_t n) override {
    auto loan = client->loan(n, 10s);  // waits while our block is full of messages in flight
    if (!loan) {
      std::fprintf(stderr, "loan: %s\n", loan.error().message().c_str());
      std::exit(1);
    }
    std::memcpy(loan->bytes().data(), d, n);
    if (auto r = client->send(session, *loan, 10s); !r) {
      std::fprintf(stderr, "send: %s\n", r.error().message().c_str());
      std::exit(1);
    }
  }
  void receive(std::byte* into, std::size_t n) override {
    auto m = client->receive(10s);
    if (!m) {
      std::fprintf(stderr, "receive: %s\n", m.error().message().c_str());
      std::exit(1);
    }
    if (into && read) std::memcpy(into, m->bytes().data(), std::min(n, m->bytes().size()));
    if (session == 0) session = m->session();
    client->release(std::move(*m));
  }
};

struct Result {
  double medianUs = 0, p99Us = 0, p999Us = 0;
  double msgsPerSec = 0, gbPerSec = 0;
  // CPU time per streamed message (user + system), per process: what the machine's load does
  // not distort as much as wall-clock rates. engineNs only for ipcsync (< 0: not measured).
  double senderNs = 0, receiverNs = 0, engineNs = -1;
};

// CPU time (user + system) of the calling process, and of every thread of another process
// (/proc/PID/task/*/schedstat: nanoseconds on the CPU), in nanoseconds.
std::int64_t processCpuNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
std::int64_t taskCpuNs(pid_t pid) {
  std::int64_t sum = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    if (FILE* f = std::fopen((task.path() / "schedstat").c_str(), "r")) {
      long long ns = 0;
      if (std::fscanf(f, "%lld", &ns) == 1) sum += ns;
      std::fclose(f);
    }
  }
  return sum;
}

// Runs `iterations` ping-pongs and `streamed` one-way messages. `makeEnd(side)` builds the
// endpoint in the calling process (side 0: measuring, 1: echo/sink).
std::uint32_t g_gapUs = 0;  // pause between ping-pongs (--gap-us)

// Where the two ends run. The scheduler's choice varies from run to run: a pipe ping-pong whose
// ends share a CPU wakes its reader without an interrupt to another CPU and took 2 us one way
// here, against 21-26 us across two CPUs. The pinned placements show both.
enum class Placement { Scheduler, OneCpu, TwoCpus };

// The first `n` CPUs this process may run on (fewer if it may not run on that many).
std::vector<int> allowedCpus(std::size_t n) {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE && out.size() < n; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

void pinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)::sched_setaffinity(0, sizeof set, &set);
}

Result measure(const std::function<std::unique_ptr<Endpoint>(int)>& makeEnd, std::size_t size, int iterations,
               int streamed, bool ipcsyncEcho, pid_t engine = -1, Placement placement = Placement::Scheduler) {
  std::vector<std::byte> buf(size, std::byte{0x5a});
  int sync[2], cpu[2];
  if (::pipe(sync) != 0 || ::pipe(cpu) != 0) std::exit(1);
  cpu_set_t unpinned;
  (void)::sched_getaffinity(0, sizeof unpinned, &unpinned);
  const std::vector<int> cpus = allowedCpus(2);  // two: the caller runs pinned placements only then
  const bool pinned = placement != Placement::Scheduler;
  const pid_t child = ::fork();
  if (child == 0) {
    if (pinned) pinTo(placement == Placement::OneCpu ? cpus[0] : cpus[1]);
    ::close(sync[0]);
    ::close(cpu[0]);
    auto end = makeEnd(1);
    [[maybe_unused]] auto w = ::write(sync[1], "r", 1);
    for (int i = 0; i < iterations; ++i) {  // echo: take it, copy it into the reply
      end->receive(ipcsyncEcho ? nullptr : buf.data(), size);
      end->send(buf.data(), size);
    }
    std::int64_t cpu0 = 0;
    for (int i = 0; i < streamed; ++i) {
      end->receive(ipcsyncEcho ? nullptr : buf.data(), size);
      if (i == 0) cpu0 = processCpuNs();  // from the first streamed message on: not the wait for it
    }
    const std::int64_t used = processCpuNs() - cpu0;
    w = ::write(cpu[1], &used, sizeof used);
    end->send(buf.data(), size);  // done
    end.reset();
    ::_exit(0);
  }
  if (pinned) pinTo(cpus[0]);
  ::close(sync[1]);
  ::close(cpu[1]);
  char c;
  if (::read(sync[0], &c, 1) != 1) std::exit(1);  // the other side is ready
  ::close(sync[0]);
  auto end = makeEnd(0);
  std::vector<double> oneWay;
  oneWay.reserve(static_cast<std::size_t>(iterations));
  for (int i = 0; i < iterations; ++i) {
    const auto t0 = Clock::now();
    end->send(buf.data(), size);
    end->receive(buf.data(), size);
    oneWay.push_back(nsSince(t0) / 2000.0);
    if (g_gapUs) std::this_thread::sleep_for(std::chrono::microseconds(g_gapUs));
  }
  const std::int64_t engine0 = engine > 0 ? taskCpuNs(engine) : 0;
  const std::int64_t sender0 = processCpuNs();
  const auto t0 = Clock::now();
  for (int i = 0; i < streamed; ++i) end->send(buf.data(), size);
  const std::int64_t senderUsed = processCpuNs() - sender0;
  end->receive(buf.data(), size);
  const double seconds = nsSince(t0) / 1e9;
  const std::int64_t engineUsed = engine > 0 ? taskCpuNs(engine) - engine0 : -1;
  std::int64_t receiverUsed = 0;
  if (::read(cpu[0], &receiverUsed, sizeof receiverUsed) != sizeof receiverUsed) receiverUsed = 0;
  ::close(cpu[0]);
  ::waitpid(child, nullptr, 0);
  if (pinned) (void)::sched_setaffinity(0, sizeof unpinned, &unpinned);
  Result r;
  r.senderNs = static_cast<double>(senderUsed) / streamed;
  r.receiverNs = static_cast<double>(receiverUsed) / streamed;
  if (engine > 0) r.engineNs = static_cast<double>(engineUsed) / streamed;
  std::vector<double> v = oneWay;
  r.medianUs = quantile(v, 0.5);
  r.p99Us = quantile(v, 0.99);
  r.p999Us = quantile(v, 0.999);
  r.msgsPerSec = streamed / seconds;
  r.gbPerSec = r.msgsPerSec * static_cast<double>(size) / 1e9;
  return r;
}

pid_t startEngine(const std::string& ns, const std::string& dir, std::uint32_t spinUs, const std::string& handover) {
  int ready[2];
  if (::pipe(ready) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(ready[1], 3);
    const std::string spin = std::to_string(spinUs);
    ::execl(IPCSYNC_BENCH_IPCSYNCD, "ipcsyncd", "--namespace", ns.c_str(), "--runtime-dir", dir.c_str(), "--ready-fd",
            "3", "--log-level", "warn", "--arena-size", "4MiB", "--min-arenas", "4", "--max-arenas", "32", "--spin-us", spin.c_str(),
            "--handover-threshold", handover.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(ready[1]);
  char b[8];
  const bool ok = ::read(ready[0], b, sizeof b) > 0;
  ::close(ready[0]);
  return ok ? pid : -1;
}

double memcpyGBs(std::size_t size) {
  std::vector<std::byte> a(size, std::byte{1}), b(size);
  std::vector<double> rates;
  for (int r = 0; r < 7; ++r) {
    const int reps = static_cast<int>(std::max<std::size_t>(1, (256u << 20) / size));
    const auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) {
      std::memcpy(b.data(), a.data(), size);
      asm volatile("" : : "r"(b.data()) : "memory");
    }
    rates.push_back(static_cast<double>(size) * reps / nsSince(t0));
  }
  return median(rates);
}

// The ceiling of any design in which the sender writes a message and another core copies it out:
// two threads hand `size`-byte messages through 16 slots (1 MiB at 64 KiB, ipcsync's default cap
// on bytes in flight); the producer memcpys each into a slot, the consumer memcpys it out. The
// consumer reads lines another core just wrote, which memcpyGBs() never does.
double handoffGBs(std::size_t size) {
  constexpr std::uint64_t kSlots = 16;
  std::vector<std::byte> slots(size * kSlots), from(size, std::byte{1}), to(size);
  alignas(64) std::atomic<std::uint64_t> produced{0};
  alignas(64) std::atomic<std::uint64_t> consumed{0};
  const std::uint64_t total = std::max<std::uint64_t>(256, (2ull << 30) / size);
  auto waitFor = [](const std::atomic<std::uint64_t>& a, auto ready) {
    for (int spins = 0; !ready(a.load(std::memory_order_acquire)); ++spins)
      if (spins > 1000) std::this_thread::yield();
  };
  const auto t0 = Clock::now();
  std::thread consumer([&] {
    for (std::uint64_t i = 0; i < total; ++i) {
      waitFor(produced, [i](std::uint64_t p) { return p > i; });
      std::memcpy(to.data(), slots.data() + (i % kSlots) * size, size);
      asm volatile("" : : "r"(to.data()) : "memory");
      consumed.store(i + 1, std::memory_order_release);
    }
  });
  for (std::uint64_t i = 0; i < total; ++i) {
    waitFor(consumed, [i](std::uint64_t c) { return c + kSlots > i; });
    std::memcpy(slots.data() + (i % kSlots) * size, from.data(), size);
    produced.store(i + 1, std::memory_order_release);
  }
  consumer.join();
  return static_cast<double>(size) * static_cast<double>(total) / nsSince(t0);
}

std::string human(std::size_t size) {
  if (size >= (1u << 20)) return std::to_string(size >> 20) + " MiB";
  if (size >= 1024) return std::to_string(size >> 10) + " KiB";
  return std::to_string(size) + " B";
}

pid_t g_engine = -1;
std::string g_runtimeDir;

// Waits until the engine has stopped spinning (it used under 5 % of a core for 10 ms), at most
// its spin time and two seconds more: the peers are measured next, and a spinning engine would
// take a CPU from them (with --spin-us 1000000 it spins for a second after our last message).
void waitUntilEngineIdle(pid_t engine, std::uint32_t spinUs) {
  const auto giveUp = std::chrono::steady_clock::now() + std::chrono::microseconds(spinUs) + 2s;
  for (std::int64_t before = taskCpuNs(engine); std::chrono::steady_clock::now() < giveUp;) {
    std::this_thread::sleep_for(10ms);
    const std::int64_t now = taskCpuNs(engine);
    if (now - before < 500'000) return;
    before = now;
  }
}

void stopEngine() {
  if (g_engine > 0) {
    ::kill(g_engine, SIGTERM);
    ::waitpid(g_engine, nullptr, 0);
    g_engine = -1;
  }
  if (!g_runtimeDir.empty()) std::filesystem::remove_all(g_runtimeDir);
}

int run(int argc, char** argv) {
  bool quick = false;
  bool oursOnly = false;
  std::uint32_t spinUs = 50;
  std::uint64_t handoverThreshold = 64ull << 20;  // above every size here: the copy path
  std::optional<std::uint32_t> handoverPool;        // unset: the client's default
  std::optional<std::uint64_t> inflightCap;         // unset: the client's default
  std::optional<std::uint64_t> clientSpinUs;        // unset: the client's default
  std::vector<std::size_t> sizes = {64, 4096, 65536, 1 << 20, 4 << 20};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--ours-only") oursOnly = true;
    else if (a == "--gap-us" && i + 1 < argc) g_gapUs = static_cast<std::uint32_t>(std::atoi(argv[++i]));
    else if (a == "--spin-us" && i + 1 < argc) spinUs = static_cast<std::uint32_t>(std::atoi(argv[++i]));
    else if (a == "--handover-threshold" && i + 1 < argc) handoverThreshold = std::stoull(argv[++i]);
    else if (a == "--handover-pool" && i + 1 < argc) handoverPool = static_cast<std::uint32_t>(std::stoul(argv[++i]));
    else if (a == "--inflight-cap" && i + 1 < argc) inflightCap = std::stoull(argv[++i]);
    else if (a == "--client-spin-us" && i + 1 < argc) clientSpinUs = std::stoul(argv[++i]);
    else if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      std::stringstream ss(argv[++i]);
      for (std::string tok; std::getline(ss, tok, ',');) sizes.push_back(std::stoul(tok));
    }
  }
  char tmpl[] = "/tmp/ipcsync-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string ns = "bench-msg-" + std::to_string(::getpid());
  g_runtimeDir = dir;
  const pid_t engine = g_engine = startEngine(ns, dir, spinUs, std::to_string(handoverThreshold));
  if (engine < 0) {
    std::fprintf(stderr, "messaging_bench: ipcsyncd did not start\n");
    return 1;
  }
  std::printf("messaging: one-way latency (ping-pong / 2) and streaming, two processes; engine spin %u us, "
              "hand-over from %llu B, hand-over pool %s%s\n\n", spinUs, static_cast<unsigned long long>(handoverThreshold),
              handoverPool ? std::to_string(*handoverPool).c_str() : "default",
              g_gapUs ? ("; " + std::to_string(g_gapUs) + " us between ping-pongs").c_str() : "");
  int round = 0;
  for (const std::size_t size : sizes) {
    const int iterations = quick ? 2000 : size <= 4096 ? 20000 : size <= 65536 ? 5000 : size <= (1u << 20) ? 1000 : 300;
    // Streams long enough (a second or so for ipcsync) that one descheduling does not decide the figure.
    const int streamed = quick ? 2000 : size <= 64 ? 2000000 : size <= 4096 ? 500000 : size <= 65536 ? 100000 : size <= (1u << 20) ? 2000 : 500;
    std::map<std::string, Result> results;
    const int tag = ++round;

    // ipcsync: two clients and a session through the engine. Above the hand-over threshold it
    // runs twice: "received" (the receiver holds the message) and "read" (it also copied every
    // byte out, as the peers' read() does).
    const bool handedOver = size >= handoverThreshold;
    auto ipcsyncRun = [&](bool readBytes, const std::string& suffix) {
      return measure(
        [&, readBytes, suffix](int side) -> std::unique_ptr<Endpoint> {
          auto e = std::make_unique<IpcsyncEndpoint>();
          e->read = readBytes;
          ConnectOptions o;
          o.ns = ns;
          o.name = (side ? "sink-" : "source-") + std::to_string(tag) + suffix;
          if (handoverPool) o.handoverPool = *handoverPool;
          if (inflightCap) o.maxBytesInFlight = *inflightCap;
          if (clientSpinUs) o.spin = std::chrono::microseconds(*clientSpinUs);
          auto c = Client::connect(o);
          if (!c) {
            std::fprintf(stderr, "connect: %s\n", c.error().message().c_str());
            std::exit(1);
          }
          e->client = std::move(*c);
          if (side == 0) {
            auto s = e->client->openSession("sink-" + std::to_string(tag) + suffix, 10s);
            if (!s) {
              std::fprintf(stderr, "openSession: %s\n", s.error().message().c_str());
              std::exit(1);
            }
            e->session = *s;
          }  // the sink learns its session from the first message it receives
          return e;
        },
        size, iterations, streamed, true, g_engine);
    };
    results["ipcsync"] = ipcsyncRun(true, "");
    if (handedOver) results["ipcsync (received)"] = ipcsyncRun(false, "-held");

    if (oursOnly) {
      const Result& r = results["ipcsync"];
      std::printf("%s: ipcsync median %.2f us, p99 %.2f, p99.9 %.2f, %.0f msgs/s, %.2f GB/s; "
                  "cpu ns/msg sender %.0f, engine %.0f, receiver %.0f\n", human(size).c_str(),
                  r.medianUs, r.p99Us, r.p999Us, r.msgsPerSec, r.gbPerSec, r.senderNs, r.engineNs, r.receiverNs);
      continue;
    }
    waitUntilEngineIdle(g_engine, spinUs);
    for (const auto& [name, placement] : {std::pair{"pipe", Placement::Scheduler}, {"pipe, one CPU", Placement::OneCpu},
                                          {"pipe, two CPUs", Placement::TwoCpus}}) {
      if (placement != Placement::Scheduler && allowedCpus(2).size() < 2) continue;  // one CPU: nothing to compare
      int p1[2], p2[2];
      results[name] = measure(
          [&](int side) -> std::unique_ptr<Endpoint> {
            if (side == 0) return std::make_unique<FdEndpoint>(p2[0], p1[1]);
            return std::make_unique<FdEndpoint>(p1[0], p2[1]);
          },
          (::pipe(p1), ::pipe(p2), size), iterations, streamed, false, -1, placement);
      for (int fd : {p1[0], p1[1], p2[0], p2[1]}) ::close(fd);
    }

    int sv[2];
    ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    results["unix socket"] = measure(
        [&](int side) -> std::unique_ptr<Endpoint> { return std::make_unique<FdEndpoint>(sv[side], sv[side]); }, size,
        iterations, streamed, false);
    ::close(sv[0]);
    ::close(sv[1]);

    const std::string q1 = "ipcsync-bench-mq-a-" + std::to_string(::getpid()), q2 = "ipcsync-bench-mq-b-" + std::to_string(::getpid());
    bip::message_queue::remove(q1.c_str());
    bip::message_queue::remove(q2.c_str());
    struct RemoveQueues {
      std::string a, b;
      ~RemoveQueues() {
        bip::message_queue::remove(a.c_str());
        bip::message_queue::remove(b.c_str());
      }
    } removeQueues{q1, q2};
    {
      const std::size_t depth = size >= (1u << 20) ? 8 : 64;
      bip::message_queue a(bip::create_only, q1.c_str(), depth, size);
      bip::message_queue b(bip::create_only, q2.c_str(), depth, size);
      results["boost message_queue"] = measure(
          [&](int side) -> std::unique_ptr<Endpoint> {
            return side == 0 ? std::make_unique<QueueEndpoint>(q2, q1) : std::make_unique<QueueEndpoint>(q1, q2);
          },
          size, iterations, streamed, false);
    }
    bip::message_queue::remove(q1.c_str());
    bip::message_queue::remove(q2.c_str());

    const Result& ours = results["ipcsync"];
    std::printf("%s (%d ping-pongs, %d streamed)%s\n", human(size).c_str(), iterations, streamed,
                handedOver ? "; ipcsync hands it over; 'ipcsync' rows read every byte" : "");
    std::printf("  %-22s %10s %10s %10s %14s %9s\n", "", "median us", "p99 us", "p99.9 us", "msgs/s", "GB/s");
    struct Best {
      double latencyUs = 1e18, rate = 0;
      void add(const Result& r) {
        latencyUs = std::min(latencyUs, r.medianUs);
        rate = std::max(rate, r.msgsPerSec);
      }
    } scheduled, withPinned;  // the best peer as the scheduler placed it; and with the pinned pipes
    for (const auto& name : {"ipcsync (received)", "ipcsync", "pipe", "pipe, one CPU", "pipe, two CPUs", "unix socket",
                             "boost message_queue"}) {
      if (!results.contains(name)) continue;
      const Result& r = results[name];
      std::printf("  %-22s %10.2f %10.2f %10.2f %14.0f %9.2f", name, r.medianUs, r.p99Us, r.p999Us, r.msgsPerSec, r.gbPerSec);
      const std::string n = name;
      if (n.rfind("ipcsync", 0) != 0) {
        std::printf("   latency ours/peer %.2f, throughput ours/peer %.2f", ours.medianUs / r.medianUs, ours.msgsPerSec / r.msgsPerSec);
        withPinned.add(r);
        if (n.find("CPU") == std::string::npos) scheduled.add(r);
      }
      std::printf("\n");
    }
    std::printf("  against the best peer: latency %.2fx, throughput %.2fx; with the pinned pipes too: %.2fx, %.2fx\n",
                ours.medianUs / scheduled.latencyUs, ours.msgsPerSec / scheduled.rate, ours.medianUs / withPinned.latencyUs,
                ours.msgsPerSec / withPinned.rate);
    std::printf("  cpu ns per streamed message (sender / engine / receiver):");
    for (const auto& name : {"ipcsync", "pipe", "unix socket", "boost message_queue"}) {
      const Result& r = results[name];
      std::printf(" %s %.0f/%s/%.0f%s", name, r.senderNs, r.engineNs < 0 ? "-" : std::to_string(std::lround(r.engineNs)).c_str(),
                  r.receiverNs, std::string(name) == "boost message_queue" ? "\n" : ",");
    }
    if (size == 65536 || size >= (1u << 20)) {
      const double copy = memcpyGBs(size);
      std::printf("  memcpy %s: %.2f GB/s; ipcsync streaming reaches %.0f%% of it\n", human(size).c_str(), copy,
                  100.0 * ours.gbPerSec / copy);
    }
    if (size == 65536) {  // 16 slots are the 1 MiB in flight that ipcsync's sender allows itself
      const double handoff = handoffGBs(size);
      std::printf("  written on one core, copied out on another (two threads, 16 slots): %.2f GB/s; ipcsync reaches %.0f%% of it\n",
                  handoff, 100.0 * ours.gbPerSec / handoff);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  stopEngine();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::atexit(stopEngine);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "messaging_bench: %s\n", e.what());
    return 1;
  }
}
