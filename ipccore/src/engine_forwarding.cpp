// Forwarding: the engine moves each sender's Locations into their receivers' blocks.
//
// For each Location a sender posts, the engine checks it (a Copy of at least one byte, on an
// open session the sender belongs to, naming an allocated run of the sender's block that holds
// the length), allocates a run in the receiver's block through the receiver's manager, copies,
// posts the new Location into the receiver's inbound ring, and frees the sender's run. A sender
// that posts anything else is disconnected and reclaimed. When the receiver's block or ring is
// full, the message stays at the head of the sender's ring (order per session is kept, nothing is
// dropped) and the engine asks the receiver to ring its doorbell when it releases something.
#include <cstring>
#include <functional>

#include "engine_impl.h"
#include "socket_io.h"

namespace ipcsync {
namespace {

constexpr std::uint64_t kBatch = 64;  // messages per sender per round, for fairness

std::string describeLocation(const Location& l) {
  return "(arena " + std::to_string(l.arena) + ", offset " + std::to_string(l.offset) + ", length " +
         std::to_string(l.length) + ", session " + std::to_string(l.channel) + ")";
}

}  // namespace

bool Engine::Impl::forwardAll() {
  bool moved = m_pausedReplays > 0 && resumeReplays();
  for (std::uint32_t slot = 0; slot < m_slots.size(); ++slot) {
    if (!m_slots[slot]) continue;
    if (forwardFrom(slot)) moved = true;
    if (!m_slots[slot] || !m_slots[slot]->closing) continue;
    // A departed sender: reclaim once everything it sent is delivered, or at its deadline.
    Registered& r = *m_slots[slot];
    const std::uint64_t left = r.memory->channels().outbound.pending().value_or(0);
    if (left == 0 && r.deferredFrees.empty()) {
      reclaim(slot, r.closingReason + "; everything it sent was delivered");
    } else if (std::chrono::steady_clock::now() >= r.closingDeadline) {
      log(LogLevel::Warn, "'" + std::string(r.record.nameView()) + "': " + std::to_string(left) +
                              " message(s) it sent could not be delivered within 5 s (their receivers stayed full); dropping them");
      reclaim(slot, r.closingReason);
    }
  }
  return moved;
}

void Engine::Impl::noteForwarded(std::uint32_t slot, std::uint64_t bytes) {
  TrafficCounters& t = m_slots[slot]->record.traffic;
  ++t.messagesOut;
  t.bytesOut += bytes;
  ++m_forwarded;
  m_forwardedBytes += bytes;
  m_lastSender = slot;
}

void Engine::Impl::kick(std::uint32_t slot, Errc code, const std::string& detail) {
  Registered& r = *m_slots[slot];
  const std::string who = "'" + std::string(r.record.nameView()) + "' (pid " + std::to_string(r.record.pid) + ")";
  protocol::Refusal k;
  k.head.type = protocol::Type::Kicked;
  k.code = static_cast<std::uint32_t>(code);
  std::strncpy(k.detail, detail.c_str(), sizeof k.detail - 1);
  (void)post(slot, io::asBytes(k));
  log(LogLevel::Warn, "disconnecting " + who + ": " + detail);
  reclaim(slot, "disconnected: " + detail);
}

bool Engine::Impl::receiversOf(std::uint32_t slot, const Location& loc) {
  Registered& src = *m_slots[slot];
  m_receivers.clear();
  if (auto session = m_sessions.find(loc.channel); session != m_sessions.end()) {
    const SessionEntry& e = session->second;
    const int self = (e.slot[0] == slot && e.generation[0] == src.record.generation)   ? 0
                     : (e.slot[1] == slot && e.generation[1] == src.record.generation) ? 1
                                                                                       : -1;
    if (self < 0) {
      kick(slot, Errc::ProtocolError, "posted a Location on another process's session " + describeLocation(loc));
      return false;
    }
    if (e.open) m_receivers.push_back(e.slot[1 - self]);
  } else if (auto topic = m_topics.find(loc.channel); topic != m_topics.end()) {
    if (!topic->second.publishers.contains(memberKey(slot, src.record.generation))) {
      kick(slot, Errc::ProtocolError, "published on a topic it did not advertise " + describeLocation(loc));
      return false;
    }
    for (const auto& [key, member] : topic->second.subscribers)
      if (!src.fanoutDone.contains(key)) m_receivers.push_back(member.slot);
  }
  return true;  // none: a closed session or a topic nobody listens to
}

Engine::Impl::Step Engine::Impl::handOver(std::uint32_t slot, const Location& loc) {
  Registered& src = *m_slots[slot];
  layout::Channels& ch = src.memory->channels();
  auto object = src.handovers.find(loc.arena);
  if (object == src.handovers.end()) {
    onClient(slot);  // the descriptor travels ahead of the Location: read it now
    if (!m_slots[slot]) return Step::Kicked;
    object = src.handovers.find(loc.arena);
    if (object == src.handovers.end()) {
      kick(slot, Errc::ProtocolError, "posted hand-over " + std::to_string(loc.arena) + " without handing anything over");
      return Step::Kicked;
    }
  }
  if (loc.length != object->second.length) {  // the receiver would map past the object's end
    kick(slot, Errc::ProtocolError, "posted hand-over " + std::to_string(loc.arena) + " with length " +
                                        std::to_string(loc.length) + ", but handed over " +
                                        std::to_string(object->second.length) + " B");
    return Step::Kicked;
  }
  if (!receiversOf(slot, loc)) return Step::Kicked;
  // The same sealed object goes to every receiver: each gets a descriptor of its own, and none
  // can change what the others read.
  for (const std::uint32_t dstSlot : m_receivers) {
    Registered& dst = *m_slots[dstSlot];
    if (!dst.closing) {
      layout::Channels& dch = dst.memory->channels();
      if (dch.inbound.full(dst.inboundHeadSeen)) {
        if (dch.engineWantsRoom.exchange(1, std::memory_order_seq_cst) == 0) ++dst.record.traffic.waitsForRoom;
        return Step::Blocked;
      }
      protocol::Handover deliver;
      deliver.head.type = protocol::Type::HandoverDeliver;
      deliver.id = m_nextHandover++;
      deliver.length = loc.length;
      const int fds[1] = {object->second.fd.get()};
      if (!post(dstSlot, io::asBytes(deliver), fds, false)) return Step::Blocked;  // socket full or receiver leaving: retry
      dch.inbound.push(Location{deliver.id, LocationKind::Handover, 0, loc.length, loc.sequence, loc.channel, loc.correlation},
                       dst.inboundHeadSeen);
      ++dst.record.traffic.messagesIn;
      dst.record.traffic.bytesIn += loc.length;
      if (dch.ownerSleeping.load(std::memory_order_seq_cst)) ring(dst.toClient.get());
    }
    if (m_topics.contains(loc.channel)) src.fanoutDone.insert(memberKey(dstSlot, dst.record.generation));
  }
  if (m_receivers.empty() && !m_topics.contains(loc.channel)) ++src.record.traffic.dropped;  // its session closed
  src.fanoutDone.clear();
  src.handovers.erase(object);  // our descriptor: each receiver holds its own now
  ch.outbound.pop();
  noteForwarded(slot, loc.length);
  return Step::Moved;
}

Engine::Impl::Step Engine::Impl::copyInto(std::uint32_t dstSlot, std::span<const std::byte> data, const Location& loc) {
  Registered& dst = *m_slots[dstSlot];
  layout::Channels& dch = dst.memory->channels();
  // Room in the receiver: a ring slot (counting the ones staged for it) and a run. If either is
  // missing, ask for a doorbell on release, then look once more (the release may have happened
  // in between).
  auto room = [&]() -> std::expected<Allocation, Errc> {
    if (dch.inbound.fullAfter(dst.inboundStaged, dst.inboundHeadSeen)) return std::unexpected(Errc::WouldBlock);
    return dst.memory->manager().allocate(loc.length);
  };
  auto target = room();
  if (!target) {
    if (dch.engineWantsRoom.exchange(1, std::memory_order_seq_cst) == 0) ++dst.record.traffic.waitsForRoom;
    target = room();
    if (!target) return Step::Blocked;
  }
  const auto into = dst.memory->bytes(*target);
  if (into.size() < loc.length) {  // only a scribbled-on manager hands out such a run
    kick(dstSlot, Errc::Corrupt, "its block's manager handed out a run outside the block");
    return Step::Kicked;
  }
  std::memcpy(into.data(), data.data(), loc.length);
  // Staged, not yet visible: publishStaged() publishes every receiver's run of copies with one
  // store and rings each sleeping receiver once.
  dch.inbound.stage(Location{target->arena, LocationKind::Copy, target->offset, loc.length, loc.sequence, loc.channel,
                             loc.correlation},
                    dst.inboundStaged);
  if (dst.inboundStaged++ == 0) m_stagedSlots.push_back(dstSlot);
  ++dst.record.traffic.messagesIn;
  dst.record.traffic.bytesIn += loc.length;
  return Step::Moved;
}

void Engine::Impl::publishStaged() {
  for (const std::uint32_t dstSlot : m_stagedSlots) {
    if (dstSlot >= m_slots.size() || !m_slots[dstSlot] || m_slots[dstSlot]->inboundStaged == 0) continue;  // reclaimed
    Registered& dst = *m_slots[dstSlot];
    layout::Channels& dch = dst.memory->channels();
    dch.inbound.publish(dst.inboundStaged);  // seq_cst, then the flag: Dekker with the receiver's sleep
    dst.inboundStaged = 0;
    if (dch.ownerSleeping.load(std::memory_order_seq_cst)) ring(dst.toClient.get());
  }
  m_stagedSlots.clear();
}

bool Engine::Impl::forwardFrom(std::uint32_t slot) {
  Registered& src = *m_slots[slot];
  layout::Channels& ch = src.memory->channels();
  const auto pending = ch.outbound.pending();
  if (!pending) {
    kick(slot, Errc::ProtocolError, "corrupted its outbound ring (more entries than slots)");
    return true;
  }
  if (*pending == 0 && src.deferredFrees.empty()) return false;
  bool moved = false;
  // A batch is committed at its end, on every path: the sender's ring is popped once for all the
  // messages taken from it (one store, one cache-line transfer back to the sender, instead of
  // one per message); the manager locks taken during the batch are dropped (one transfer per
  // batch, not per call); every receiver's staged copies are published, and each sleeping
  // receiver rung once. A sender that was kicked meanwhile has no ring left to pop.
  std::uint64_t popped = 0;  // taken from the head of the sender's ring, not popped yet
  const std::uint64_t generation = src.record.generation;
  auto alive = [&] { return m_slots[slot] && m_slots[slot]->record.generation == generation; };
  auto commit = [&] {
    if (popped > 0 && alive()) ch.outbound.pop(popped);
    popped = 0;
  };
  struct AtEnd {
    std::function<void()> f;
    ~AtEnd() { f(); }
  } atEnd{[&] {
    commit();
    m_locks.drop();
    publishStaged();
    // pop (seq_cst) then the flag: Dekker with a sender waiting for room in its ring or block.
    if (moved && alive() && ch.ownerWantsRoom.load(std::memory_order_seq_cst)) ring(src.toClient.get());
  }};
  auto holdSource = [&] {
    if (m_locks.source) return;
    if (auto h = src.memory->manager().hold()) m_locks.source.emplace(std::move(*h));
  };
  auto holdTarget = [&](std::uint32_t dstSlot) {
    if (m_locks.targetSlot == dstSlot) return;
    m_locks.target.reset();
    m_locks.targetSlot = ~0u;
    if (auto h = m_slots[dstSlot]->memory->manager().hold()) {
      m_locks.target.emplace(std::move(*h));
      m_locks.targetSlot = dstSlot;
    }
  };
  if (!src.deferredFrees.empty()) holdSource();
  while (!src.deferredFrees.empty()) {
    const Location& l = src.deferredFrees.back();
    auto freed = src.memory->manager().free(l.arena, l.offset);
    if (!freed && freed.error() == Errc::LockTimeout) break;
    if (!freed) {
      kick(slot, Errc::ProtocolError, "released a run while the engine was copying it " + describeLocation(l));
      return true;
    }
    src.deferredFrees.pop_back();
    moved = true;
  }
  // The session (or topic) of the previous message and its receiver: consecutive messages on one
  // channel skip the lookups.
  std::uint32_t lastChannel = 0;
  for (std::uint64_t n = std::min(*pending, kBatch); n > 0; --n) {
    const Location loc = ch.outbound.at(popped);  // a copy: what we validate is what we use
    if (loc.kind == LocationKind::Handover) {
      commit();  // handOver pops its own entry and pushes to receivers' rings itself
      publishStaged();
      lastChannel = 0;
      switch (handOver(slot, loc)) {
        case Step::Moved: moved = true; continue;
        case Step::Blocked: return moved;
        case Step::Kicked: return true;
      }
    }
    if (loc.kind != LocationKind::Copy || loc.length == 0) {
      kick(slot, Errc::ProtocolError, "posted an invalid Location " + describeLocation(loc));
      return true;
    }
    // Where it goes: the other end of a session, or every subscriber of a topic not served yet.
    // A session's receivers cannot change within a batch (only control messages, which are
    // handled between batches, open or close one); a topic's fan-out progress can.
    const auto topic = m_topics.find(loc.channel);
    if (topic != m_topics.end() || loc.channel != lastChannel) {
      if (!receiversOf(slot, loc)) return true;
      lastChannel = topic == m_topics.end() ? loc.channel : 0;
    }
    holdSource();
    auto run = src.memory->manager().checkAllocated(loc.arena, loc.offset, loc.length);
    if (!run) {
      if (run.error() == Errc::LockTimeout) return moved;  // the owner is inside its manager; next round
      kick(slot, Errc::ProtocolError,
           "posted a Location that is not an allocated run of its block (" + std::string(describe(run.error())) + ") " +
               describeLocation(loc));
      return true;
    }
    bool blocked = false;
    for (const std::uint32_t dstSlot : m_receivers) {
      Registered& dst = *m_slots[dstSlot];
      if (dst.closing) {  // gone; its peers learn it when its slot is reclaimed
        ++src.record.traffic.dropped;
      } else {
        if (topic != m_topics.end()) {  // a subscriber still getting the cache gets it first
          auto member = topic->second.subscribers.find(memberKey(dstSlot, dst.record.generation));
          if (member != topic->second.subscribers.end() && member->second.replayNext != 0) {
            blocked = true;
            break;
          }
        }
        if (m_receivers.size() == 1) holdTarget(dstSlot);
        const Step step = copyInto(dstSlot, src.memory->bytes(*run), loc);
        if (step == Step::Kicked) return true;
        if (step == Step::Blocked) {
          blocked = true;
          break;
        }
      }
      if (topic != m_topics.end()) src.fanoutDone.insert(memberKey(dstSlot, dst.record.generation));
    }
    if (blocked) return moved;  // the rest waits at the head of the ring, in order
    if (m_receivers.empty() && topic == m_topics.end()) ++src.record.traffic.dropped;  // the session closed meanwhile
    src.fanoutDone.clear();
    if (topic != m_topics.end() && topic->second.cacheDepth > 0) cacheMessage(topic->second, src.memory->bytes(*run), loc);
    ++popped;
    moved = true;
    noteForwarded(slot, loc.length);
    if (auto freed = src.memory->manager().free(loc.arena, loc.offset); !freed) {
      if (freed.error() == Errc::LockTimeout) {
        src.deferredFrees.push_back(loc);  // the owner is inside its manager (or was preempted there)
        continue;
      }
      kick(slot, Errc::ProtocolError, "released a run while the engine was copying it " + describeLocation(loc));
      return true;
    }
  }
  return moved;
}

}  // namespace ipcsync
