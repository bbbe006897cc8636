// Sessions: the engine introduces two registered processes to each other and remembers the pair.
#include <cstring>

#include "engine_impl.h"
#include "socket_io.h"

namespace ipcsync {
namespace {

template <std::size_t N>
void copyText(char (&dst)[N], std::string_view text) {
  const std::size_t n = std::min(N - 1, text.size());
  std::memcpy(dst, text.data(), n);
  dst[n] = '\0';
}

}  // namespace

bool Engine::Impl::live(std::uint32_t slot, std::uint64_t generation) const {
  return slot < m_slots.size() && m_slots[slot] && m_slots[slot]->record.generation == generation;
}

std::optional<std::uint32_t> Engine::Impl::findByName(std::string_view name) const {
  for (std::uint32_t s = 0; s < m_slots.size(); ++s)
    if (m_slots[s] && !m_slots[s]->closing && m_slots[s]->record.nameView() == name) return s;
  return std::nullopt;
}

void Engine::Impl::onOpenSession(std::uint32_t slot, const protocol::OpenSession& m) {
  const std::string_view peerName(m.peer, ::strnlen(m.peer, sizeof m.peer));
  auto fail = [&](Errc code, const std::string& detail) {
    protocol::SessionResult r;
    r.token = m.token;
    r.code = static_cast<std::uint32_t>(code);
    copyText(r.detail, detail);
    (void)post(slot, io::asBytes(r));
  };
  const auto peer = findByName(peerName);
  if (!peer) return fail(Errc::NoSuchPeer, "no process named '" + std::string(peerName) + "' is registered in namespace '" + m_config.ns + "'");
  if (*peer == slot) return fail(Errc::InvalidArgument, "a process cannot open a session to itself");
  const std::uint32_t id = newChannel();
  m_sessions[id] = SessionEntry{{slot, *peer}, {m_slots[slot]->record.generation, m_slots[*peer]->record.generation}, false, m.token};
  protocol::SessionOffer offer;
  offer.session = id;
  std::memcpy(offer.from, m_slots[slot]->record.name, kNameCapacity);
  if (!post(*peer, io::asBytes(offer))) {
    m_sessions.erase(id);
    return fail(Errc::PeerGone, "'" + std::string(peerName) + "' went away");
  }
}

void Engine::Impl::onSessionAnswer(std::uint32_t slot, const protocol::SessionAnswer& m) {
  auto it = m_sessions.find(m.session);
  if (it == m_sessions.end() || it->second.open || it->second.slot[1] != slot) return;  // withdrawn meanwhile
  const SessionEntry e = it->second;  // a copy: the entry may be erased below
  protocol::SessionResult r;
  r.token = e.token;
  const std::string peerName(m_slots[slot]->record.nameView());
  if (!live(e.slot[0], e.generation[0]) || m_slots[e.slot[0]]->closing) {
    m_sessions.erase(it);
    if (m.accept) {  // the answerer thinks it is open: tell it the opener is gone
      protocol::SessionEvent closed;
      closed.head.type = protocol::Type::SessionClosed;
      closed.session = m.session;
      closed.code = static_cast<std::uint32_t>(Errc::PeerGone);
      (void)post(slot, io::asBytes(closed));
    }
    return;
  }
  if (m.accept) {
    it->second.open = true;
    r.session = m.session;
    ++m_slots[e.slot[0]]->record.traffic.sessions;
    ++m_slots[slot]->record.traffic.sessions;
    copyText(r.detail, peerName);
  } else {
    r.code = static_cast<std::uint32_t>(Errc::SessionRefused);
    copyText(r.detail, "'" + peerName + "' refused the session");
    m_sessions.erase(it);
  }
  (void)post(e.slot[0], io::asBytes(r));
}

std::uint32_t Engine::Impl::newChannel() {
  for (;;) {
    const std::uint32_t id = m_nextSession++;
    if (id != 0 && !m_sessions.contains(id) && !m_topics.contains(id)) return id;
  }
}

void Engine::Impl::onCloseSession(std::uint32_t slot, const protocol::SessionEvent& m) {
  if (leaveTopics(slot, m.session)) return;
  auto it = m_sessions.find(m.session);
  if (it == m_sessions.end() || (it->second.slot[0] != slot && it->second.slot[1] != slot)) return;
  const SessionEntry e = it->second;
  m_sessions.erase(it);
  if (!e.open) return;
  const std::uint32_t other = e.slot[0] == slot ? 1 : 0;
  --m_slots[slot]->record.traffic.sessions;
  if (live(e.slot[other], e.generation[other])) {
    --m_slots[e.slot[other]]->record.traffic.sessions;
    protocol::SessionEvent closed;
    closed.head.type = protocol::Type::SessionClosed;
    closed.session = m.session;
    closed.code = static_cast<std::uint32_t>(Errc::SessionClosed);
    (void)post(e.slot[other], io::asBytes(closed));
  }
}

void Engine::Impl::closeSessionsOf(std::uint32_t slot) {
  leaveTopics(slot, std::nullopt);
  const std::uint64_t gen = m_slots[slot]->record.generation;
  for (auto it = m_sessions.begin(); it != m_sessions.end();) {
    const SessionEntry& e = it->second;
    const int self = (e.slot[0] == slot && e.generation[0] == gen) ? 0 : (e.slot[1] == slot && e.generation[1] == gen) ? 1 : -1;
    if (self < 0) {
      ++it;
      continue;
    }
    const std::uint32_t other = e.slot[1 - self];
    if (live(other, e.generation[1 - self])) {
      if (e.open) {
        --m_slots[other]->record.traffic.sessions;
        protocol::SessionEvent closed;
        closed.head.type = protocol::Type::SessionClosed;
        closed.session = it->first;
        closed.code = static_cast<std::uint32_t>(Errc::PeerGone);
        (void)post(other, io::asBytes(closed));
      } else if (self == 1) {  // the peer died before answering: tell the opener
        protocol::SessionResult r;
        r.token = e.token;
        r.code = static_cast<std::uint32_t>(Errc::PeerGone);
        copyText(r.detail, "'" + std::string(m_slots[slot]->record.nameView()) + "' went away before answering");
        (void)post(other, io::asBytes(r));
      }
    }
    it = m_sessions.erase(it);
  }
}

}  // namespace ipcsync
