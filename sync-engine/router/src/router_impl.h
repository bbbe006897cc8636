// Internal: the state of the sync engine process and the parts of its loop, each part in its own
// file: host_link.cpp (sessions, calls, Describe/Start), capture.cpp (Emit -> journal ->
// Acknowledge), delivery.cpp (journal -> Apply, retries, dead letters, snapshots, operator
// requests), status_file.cpp (sync.json), router.cpp (the loop).
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ipcsync/ipccore/client.h"
#include "ipcsync/plugin_host/wire.h"
#include "ipcsync/sync/changeset_transform.h"
#include "ipcsync/sync/forward_chain.h"
#include "ipcsync/sync/journal.h"
#include "ipcsync/sync/route_plan.h"
#include "ipcsync/sync/router.h"

namespace ipcsync::sync {

using Clock = std::chrono::steady_clock;

std::int64_t nowUs();  // wall clock, microseconds since the epoch

// An Apply sent to a subscriber and not answered yet. A subscriber has at most one (its Applies
// stay in order and the pieces of one change-set go back to back, plugin.h `apply`); the others
// are not held by it. dispatch() completes it when its answer arrives (by correlation); it is
// dropped when the subscriber's session ends, and LastApplied on the next session takes over. An
// answer late beyond --apply-timeout-ms is a stall (warned about, shown in sync.json), never a
// failure: nothing is resent, no attempt is counted.
struct PendingApply {
  enum class Purpose { Deliver, TakeSource, Replay };
  Purpose purpose = Purpose::Deliver;
  std::size_t delivery = 0;  // index into Impl::deliveries
  // The piece awaiting its answer (correlation 0: not sent yet, the loop sends it when it can).
  std::uint32_t correlation = 0;
  Clock::time_point sentAt{};
  Clock::time_point retryAt{};  // for a piece not sent yet
  bool stallWarned = false;
  // What goes: envelope fields and the change-set's pieces.
  std::string route;
  std::uint64_t applySequence = 0;
  std::string origin;
  std::int64_t commitTimeUs = 0;
  std::vector<std::string> provenance;
  std::uint32_t conflictPolicy = 0;
  std::vector<std::vector<unsigned char>> pieces;
  std::size_t piece = 0;  // the piece outstanding (or to send)
  // Deliver: the journal sequences it carries, first to `last` (the last with changes) and
  // `through` (the last it passes, changes or not); how many entries with changes; the first
  // entry's origin sequence (for a dead letter's log line).
  std::uint64_t first = 0, last = 0, through = 0;
  std::size_t members = 1;
  std::uint64_t originSequence = 0;
  // TakeSource: the parked conflict. Replay: the dead letter.
  std::uint64_t conflictId = 0;
  DeadLetter letter;
  // What it is, for log lines: "journal sequence 12", "journal sequences 12..40", "conflict #3".
  std::string what() const;
};

// One plugin host as the sync engine sees it.
struct Link {
  std::string instance;
  std::optional<SessionId> session;  // open and started
  std::uint64_t generation = 0;      // bumped on every new session
  SchemaMap schemas;                 // from its last Describe (kept while it is away)
  bool described = false;
  Clock::time_point nextAttempt{};
  std::string lastConnectError;
  std::uint32_t unanswered = 0;  // connection attempts in a row it registered but did not answer
  // Capture.
  struct Collecting {
    std::uint64_t originSequence = 0;
    std::int64_t commitTimeUs = 0;
    std::uint32_t pieceCount = 0;
    std::vector<std::vector<unsigned char>> pieces;
  };
  std::optional<Collecting> collecting;
  std::deque<JournalEntry> ready;       // complete, waiting for the group commit
  Clock::time_point oldestReady{};
  std::uint64_t highestReady = 0;       // highest originSequence received (collected or journaled)
  std::uint64_t journaledThrough = 0;   // highest originSequence the journal holds
  std::uint64_t acknowledged = 0;       // highest Acknowledge sent
  bool heldBack = false;                // journal full: not acknowledging
  std::uint64_t emitted = 0, journaled = 0, duplicates = 0;
  // Delivery to it (as a subscriber).
  std::optional<PendingApply> pending;
  bool operatorWaiting = false;  // an operator request for it waits for `pending`: no new delivery first
};

// One (route, subscriber).
struct DeliveryState {
  Delivery plan;
  std::optional<ChangesetTransform> transform;
  std::string transformError;      // why it can never be built, as the topology stands (logged once)
  std::string chainWait;           // which hop a forwarding chain waits for (logged once)
  // Per upstream origin: the hops its forwarded entries are taken through first (built once every
  // instance a transforming hop names has described itself).
  std::map<std::string, ForwardChain> chains;
  std::uint64_t syncedGeneration = 0;     // subscriber generation LastApplied was asked in
  std::uint64_t cursor = 0;        // journal sequence confirmed
  std::uint64_t skippedThrough = 0;  // entries not travelling, passed but not yet written as cursor
  // Snapshot: entries of the source with originSequence <= floor are in the snapshot already.
  std::optional<std::uint64_t> snapshotFloor;
  // Each table's own snapshot point (its as_of). Tables are snapshotted one after another, so an
  // entry of the source above snapshotFloor may hold changes to a table whose snapshot, taken
  // later, already has them: it travels without that table.
  std::map<std::string, std::uint64_t> snapshotTableFloors;
  bool snapshotChecked = false;
  // Retries of the entry at the head.
  std::uint64_t failingSequence = 0;
  std::uint32_t attempts = 0;
  Clock::time_point nextTry{};
  std::string lastError;
  bool backlog = false;  // the last read filled its batch
  // The last read's entries not yet delivered: read[readNext..]. Valid while the delivery position
  // (max(cursor, skippedThrough)) is still readAfter, i.e. the Applies before them succeeded.
  std::vector<JournalEntry> read;
  std::size_t readNext = 0;
  std::uint64_t readAfter = 0;
  // Entries through this journal sequence go one per Apply: a batch holding them failed, so each
  // gets its own retries and, if it keeps failing, its own dead letter.
  std::uint64_t singlesThrough = 0;
  // Figures.
  std::uint64_t applied = 0, rows = 0, conflicts = 0, errors = 0, deadLetters = 0, duplicates = 0;
  std::int64_t oldestUndeliveredUs = 0;  // commit time of the next entry to deliver (0: none)
  std::uint64_t rateApplied = 0, rateRows = 0;
  double appliedPerSecond = 0, rowsPerSecond = 0;
};

struct CallError {
  enum class What { Lost, Timeout, Failure, Protocol } what;
  std::uint32_t status = 0;  // IPCSYNC_E* for Failure
  std::string message;
};

struct Reply {
  wire::Kind kind;
  std::vector<std::byte> frame;
};

struct Router::Impl {
  RouterOptions options;
  std::filesystem::path statusPath;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<Client> client;
  std::map<std::string, Link> links;
  std::vector<DeliveryState> deliveries;
  std::optional<ExitCode> fatal;
  bool stopping = false;
  std::uint32_t nextCorrelation = 1;
  // A snapshot being collected: pieces that arrive for (source, route).
  struct SnapshotCollect {
    std::string source, route;
    std::vector<std::vector<unsigned char>> pieces;
  };
  std::optional<SnapshotCollect> snapshot;
  Clock::time_point nextStatus{}, nextHousekeeping{}, nextOperator{}, lastRate{};
  bool journalWarned = false;
  // Free space where the journal is (read by housekeeping, 0: unknown), and whether it was warned
  // that the disk fills before the journal's bound (once per episode).
  std::uint64_t diskFree = 0;
  bool diskWarned = false;
  std::uint64_t journalUsageBytes = 0;
  JournalUsage usage{};

  // host_link.cpp
  void connectHosts();
  bool connect(Link& link);
  // A host that describes different tables than before (its plugin was upgraded in place): the
  // transforms and forwarding chains that were shaped by its old description are built again.
  void describedAnew(const Link& link);
  void lose(Link& link, const std::string& why);
  void unanswered(Link& link, const std::string& what);  // backs its next connection attempt off
  // A request to the host and its reply. Meanwhile everything else that arrives is dispatched
  // (emits journaled, conflicts parked), so a slow apply never stalls capture. Lost: the session
  // ended (the link is marked lost); Failure: the host's Failure frame.
  template <class T>
  std::expected<Reply, CallError> call(Link& link, wire::Kind kind, const T& body, std::chrono::milliseconds timeout);
  // A plain message (no reply awaited); false if it could not be sent.
  template <class T>
  bool sendPlain(Link& link, wire::Kind kind, const T& body);
  std::expected<Loan, Error> frameLoan(wire::Kind kind, const auto& body);
  Link* linkOf(SessionId session);
  // router.cpp: everything that may arrive.
  void pump(std::chrono::milliseconds wait);
  void dispatch(const Message& message);
  // capture.cpp
  void onEmit(Link& link, const wire::Envelope& e);
  void commitCaptures(bool force);
  // delivery.cpp
  bool deliver(DeliveryState& d);  // true: did work (started an Apply, or moved past entries)
  bool prepare(DeliveryState& d);
  // Asynchronous Applies (at most one per subscriber, Link::pending). startApply() sends job.piece
  // and makes the job the subscriber's pending one (a lost session or a piece that cannot be framed
  // finishes it at once as Lost or Failed); sendPiece() sends job.piece; onApplyAnswer() takes an
  // answer (from dispatch()); finishApply() does the bookkeeping of its purpose; checkPending()
  // sends pieces that could not be sent yet and warns once about an Apply unanswered beyond
  // --apply-timeout-ms.
  void startApply(Link& subscriber, PendingApply job);
  enum class Sent { Yes, Later, Lost, Failed };
  Sent sendPiece(Link& subscriber, PendingApply& job, CallError* error);
  void onApplyAnswer(Link& subscriber, const Message& m);
  void checkPending();
  // Waits (pumping) until no answered-in-time Apply is outstanding, or `deadline`.
  void drainPending(Clock::time_point deadline);
  // How long (ms) the subscriber's outstanding Apply has gone unanswered, once that reached the
  // apply timeout (a stall); 0 otherwise.
  std::int64_t stalledMs(const Link& subscriber) const;
  wire::Envelope envelopeOf(const PendingApply& job) const;
  // forwarding.cpp: the chains of d's upstream origins (false: one waits for a Describe, or its
  // route cannot work: logged), the journal tables d reads, and a forwarded entry as the source holds it.
  bool prepareChains(DeliveryState& d);
  std::vector<std::string> readTables(const DeliveryState& d) const;
  // e's change-set for d's subscriber: through the chain when forwarded, then d's rules (bytes
  // passed through as they are where no rule changes them). Empty: nothing of it travels.
  std::expected<std::vector<unsigned char>, std::string> transformEntry(DeliveryState& d, const JournalEntry& e);
  // snapshot.cpp
  void takeSnapshot(DeliveryState& d, Link& source, Link& subscriber);
  // After LastApplied: whether the route's snapshot is still to take, and the skip floors of one
  // already applied. lastApplied is the subscriber's apply sequence for the route.
  void resumeSnapshot(DeliveryState& d, std::uint64_t lastApplied);
  enum class Outcome { Applied, Duplicate, Failed, Lost };
  void finishApply(Link& subscriber, PendingApply job, Outcome outcome, const CallError& error);
  // A fresh job for delivery d (envelope fields from the plan and the entry).
  PendingApply applyJob(std::size_t delivery, const std::string& route, std::uint64_t sequence,
                        const JournalEntry& entry, std::vector<std::vector<unsigned char>> pieces,
                        std::optional<ConflictPolicy> policy);
  // A synchronous Apply (call()), for the snapshot only: Failed at once if the subscriber has an
  // Apply outstanding; a subscriber that does not answer blocks the loop up to the apply timeout.
  Outcome applyEntry(DeliveryState& d, Link& subscriber, const std::string& route, std::uint64_t sequence,
                     const JournalEntry& entry, const std::vector<std::vector<unsigned char>>& pieces,
                     std::optional<ConflictPolicy> policy, CallError* error);
  void onConflict(Link& link, const wire::Conflict& c);
  void housekeeping();
  void refreshUsage();  // usage := the journal's; warns once each time it becomes nearly full
  // diskFree := the journal file system's free space (a statvfs; housekeeping only); warns once
  // each time it becomes less than the journal may still grow by.
  void refreshDiskFree();
  // Conflict `--take source` and dead-letter replay requests, sent as asynchronous Applies; a
  // subscriber with an Apply outstanding is skipped this round (Link::operatorWaiting).
  void operatorRequests();
  // A dead letter's replay ended: removed (failure empty) or updated in place with the failure.
  void replayed(const DeadLetter& letter, const std::string& failure);
  // status_file.cpp
  void writeStatus();
};

// Apply sequences: 2 x journal sequence; a snapshot taken at journal head H is applied as 2H+1.
constexpr std::uint64_t applySequence(std::uint64_t journalSequence) { return 2 * journalSequence; }
constexpr std::uint64_t journalSequenceOf(std::uint64_t applySeq) { return applySeq / 2; }

int toPolicy(ConflictPolicy p);

// A change-set in pieces of at most pieceBytes (whole changes); empty with `error` set if it
// cannot be read.
std::vector<std::vector<unsigned char>> split(const std::vector<unsigned char>& changeset, std::uint64_t pieceBytes,
                                              std::string& error);

std::expected<Loan, Error> Router::Impl::frameLoan(wire::Kind kind, const auto& body) {
  auto loan = client->loan(wire::encodedSize(kind, body), std::chrono::milliseconds(2000));
  if (loan) wire::encodeInto(loan->bytes(), kind, body);
  return loan;
}

template <class T>
bool Router::Impl::sendPlain(Link& link, wire::Kind kind, const T& body) {
  if (!link.session) return false;
  auto loan = frameLoan(kind, body);
  if (!loan) return false;
  if (auto sent = client->send(*link.session, *loan, std::chrono::milliseconds(2000)); !sent) {
    client->abandon(std::move(*loan));
    return false;
  }
  return true;
}

template <class T>
std::expected<Reply, CallError> Router::Impl::call(Link& link, wire::Kind kind, const T& body,
                                                   std::chrono::milliseconds timeout) {
  using What = CallError::What;
  if (!link.session) return std::unexpected(CallError{What::Lost, 0, "plugin host '" + link.instance + "' is not connected"});
  const SessionId session = *link.session;
  auto loan = frameLoan(kind, body);
  if (!loan)
    return std::unexpected(CallError{What::Protocol, 0, "cannot send " + std::string(wire::name(kind)) + " to '" +
                                                            link.instance + "': " + loan.error().message()});
  const std::uint32_t correlation = (nextCorrelation++ & 0x7FFFFFFFu) | 1u;
  if (auto sent = client->send(session, *loan, timeout, correlation); !sent) {
    client->abandon(std::move(*loan));
    const bool lost = sent.error().code == Errc::SessionClosed || sent.error().code == Errc::PeerGone;
    if (sent.error().code == Errc::EngineGone || sent.error().code == Errc::Disconnected) fatal = ExitCode::EngineLost;
    if (lost) lose(link, sent.error().message());
    return std::unexpected(CallError{lost ? What::Lost : What::Timeout, 0, sent.error().message()});
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    // Wait for one message, then take whatever else is already there before committing captures:
    // emits that arrive together share one group commit (with group_commit_ms 0 every pass would
    // otherwise commit a single change-set).
    auto m = client->receive(std::chrono::milliseconds(20));
    for (int taken = 0; m && m->valid(); ++taken) {
      if (m->session() == session && m->correlation() == correlation) {
        Reply r{wire::Kind::Ok, std::vector<std::byte>(m->bytes().begin(), m->bytes().end())};
        client->release(std::move(*m));
        auto k = wire::peekKind(r.frame);
        if (!k) return std::unexpected(CallError{What::Protocol, 0, "plugin host '" + link.instance + "': " + k.error()});
        r.kind = *k;
        if (r.kind == wire::Kind::Failure) {
          auto f = wire::decode<wire::Failure>(r.frame);
          if (!f) return std::unexpected(CallError{What::Protocol, 0, f.error()});
          return std::unexpected(CallError{What::Failure, f->status, f->message});
        }
        return r;
      }
      dispatch(*m);
      client->release(std::move(*m));
      if (taken >= 4096 || fatal) break;
      m = client->tryReceive();
    }
    if (!m && m.error().code != Errc::Timeout) {
      fatal = ExitCode::EngineLost;
      return std::unexpected(CallError{What::Lost, 0, "lost the engine: " + m.error().message()});
    }
    commitCaptures(false);
    if (!client->peerOf(session)) {
      lose(link, "its session ended while waiting for the answer to " + std::string(wire::name(kind)));
      return std::unexpected(CallError{What::Lost, 0, "plugin host '" + link.instance + "' went away"});
    }
    if (fatal) return std::unexpected(CallError{What::Lost, 0, "stopping"});
    if (Clock::now() >= deadline)
      return std::unexpected(CallError{What::Timeout, 0, "plugin host '" + link.instance + "' did not answer " +
                                                             std::string(wire::name(kind)) + " within " +
                                                             std::to_string(timeout.count()) + " ms"});
  }
}

}  // namespace ipcsync::sync
