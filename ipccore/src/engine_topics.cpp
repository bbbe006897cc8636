// Topics: a name that publishers post to once and every subscriber receives; the engine copies
// each message once per subscriber (engine_forwarding.cpp).
#include <cstring>

#include "engine_impl.h"
#include "socket_io.h"

namespace ipcsync {

void Engine::Impl::onOpenTopic(std::uint32_t slot, const protocol::OpenTopic& m) {
  const std::string name(m.topic, ::strnlen(m.topic, sizeof m.topic));
  protocol::SessionResult r;
  r.token = m.token;
  const bool valid = !name.empty() && name.size() < kNameCapacity &&
                     (m.role == protocol::kTopicPublish || m.role == protocol::kTopicSubscribe);
  if (!valid) {
    r.code = static_cast<std::uint32_t>(Errc::InvalidArgument);
    std::strncpy(r.detail, "a topic needs a name of 1-47 characters and a role", sizeof r.detail - 1);
    (void)post(slot, io::asBytes(r));
    return;
  }
  auto [byName, added] = m_topicByName.try_emplace(name, 0);
  if (added) {
    byName->second = newChannel();
    m_topics[byName->second].name = name;
  }
  TopicEntry& topic = m_topics[byName->second];
  const std::uint64_t generation = m_slots[slot]->record.generation;
  if (m.role == protocol::kTopicPublish) topic.publishers.insert(memberKey(slot, generation));
  else topic.subscribers[memberKey(slot, generation)] = TopicMember{slot, generation};
  ++m_slots[slot]->record.traffic.sessions;
  r.session = byName->second;
  (void)post(slot, io::asBytes(r));
}

bool Engine::Impl::leaveTopics(std::uint32_t slot, std::optional<std::uint32_t> channel) {
  const std::uint64_t key = memberKey(slot, m_slots[slot]->record.generation);
  bool left = false;
  for (auto it = m_topics.begin(); it != m_topics.end();) {
    if (channel && it->first != *channel) {
      ++it;
      continue;
    }
    const std::size_t was = it->second.publishers.erase(key) + it->second.subscribers.erase(key);
    if (was) {
      left = true;
      m_slots[slot]->record.traffic.sessions -= static_cast<std::uint32_t>(was);
    }
    if (it->second.publishers.empty() && it->second.subscribers.empty()) {
      m_topicByName.erase(it->second.name);
      it = m_topics.erase(it);
    } else {
      ++it;
    }
  }
  return left;
}

}  // namespace ipcsync
