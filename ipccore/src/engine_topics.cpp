// Topics: a name that publishers post to once and every subscriber receives; the engine copies
// each message once per subscriber (engine_forwarding.cpp).
#include <algorithm>
#include <bitset>
#include <cstring>

#include "engine_impl.h"
#include "socket_io.h"

namespace ipcsync {
namespace {
constexpr std::uint32_t kMaxCacheDepth = 1024;
}  // namespace

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
  bool joined = false;
  if (m.role == protocol::kTopicPublish) {
    joined = topic.publishers.insert(memberKey(slot, generation)).second;
    topic.cacheDepth = std::max(topic.cacheDepth, std::min(m.cacheDepth, kMaxCacheDepth));
  } else {
    joined = topic.subscribers.try_emplace(memberKey(slot, generation), TopicMember{slot, generation}).second;
  }
  if (joined) ++m_slots[slot]->record.traffic.sessions;
  r.session = byName->second;
  (void)post(slot, io::asBytes(r));
  // A late subscriber gets what the cache holds at once, before anything published from now on.
  if (m.role == protocol::kTopicSubscribe && joined && !topic.cache.empty()) {
    TopicMember& member = topic.subscribers.at(memberKey(slot, generation));
    member.replayNext = topic.cache.front().serial;
    if (!replayCache(topic, member)) ++m_pausedReplays;
  }
}

void Engine::Impl::cacheMessage(TopicEntry& topic, std::span<const std::byte> data, const Location& loc) {
  if (!m_ownBlock) return;
  BuddyManager& manager = m_ownBlock->manager();
  auto run = manager.allocate(loc.length);
  while (!run && run.error() == Errc::OutOfMemory && !topic.cache.empty()) {  // make room: oldest first
    (void)manager.free(topic.cache.front().run.arena, topic.cache.front().run.offset);
    topic.cache.pop_front();
    run = manager.allocate(loc.length);
  }
  if (!run) return;  // larger than an arena, or the block is full of other topics' caches
  std::memcpy(m_ownBlock->bytes(*run).data(), data.data(), loc.length);
  topic.cache.push_back(CachedMessage{topic.nextSerial++, *run, loc, realtimeNs()});
  while (topic.cache.size() > topic.cacheDepth) {
    (void)manager.free(topic.cache.front().run.arena, topic.cache.front().run.offset);
    topic.cache.pop_front();
  }
}

bool Engine::Impl::replayCache(TopicEntry& topic, TopicMember& member) {
  for (const CachedMessage& m : topic.cache) {
    if (m.serial < member.replayNext) continue;  // handed over already, before a pause
    const auto data = m_ownBlock->bytes(m.run).first(m.location.length);
    if (copyInto(member.slot, data, m.location) != Step::Moved) {
      publishStaged();
      member.replayNext = m.serial;  // its block or ring is full: resume here
      return false;
    }
    ++topic.cacheHits;
  }
  publishStaged();
  member.replayNext = 0;
  return true;
}

bool Engine::Impl::resumeReplays() {
  // Collected first: a replay can reclaim a subscriber (a corrupt block), which edits the maps.
  std::vector<std::pair<std::uint32_t, std::uint64_t>> paused;
  for (const auto& [channel, topic] : m_topics)
    for (const auto& [key, member] : topic.subscribers)
      if (member.replayNext != 0) paused.emplace_back(channel, key);
  bool moved = false;
  m_pausedReplays = 0;
  for (const auto& [channel, key] : paused) {
    auto topic = m_topics.find(channel);
    if (topic == m_topics.end()) continue;
    auto member = topic->second.subscribers.find(key);
    if (member == topic->second.subscribers.end()) continue;
    const std::uint64_t before = member->second.replayNext;
    if (!replayCache(topic->second, member->second)) ++m_pausedReplays;
    moved = moved || member->second.replayNext != before;
  }
  return moved;
}

void Engine::Impl::publishCaches() {
  if (m_topics.empty() && m_cacheRowsShown.none()) return;  // nothing listed, nothing to list
  std::bitset<layout::kCacheRows> used;
  for (auto& [channel, topic] : m_topics) {
    if (topic.cacheDepth == 0) continue;
    if (topic.cacheSlot == 0xffffffffU) {  // first time: take a free row
      for (std::uint32_t row = 0; row < layout::kCacheRows; ++row) {
        const bool taken = std::ranges::any_of(m_topics, [&](const auto& t) { return t.second.cacheSlot == row; });
        if (!taken) {
          topic.cacheSlot = row;
          break;
        }
      }
      if (topic.cacheSlot == 0xffffffffU) continue;  // more caches than rows: not listed
    }
    CacheRecord rec;
    std::memcpy(rec.topic, topic.name.data(), std::min(topic.name.size(), sizeof rec.topic - 1));
    rec.entries = static_cast<std::uint32_t>(topic.cache.size());
    rec.depth = topic.cacheDepth;
    for (const auto& m : topic.cache) rec.bytes += m.location.length;
    rec.oldestNs = topic.cache.empty() ? 0 : topic.cache.front().storedAtNs;
    rec.hits = topic.cacheHits;
    m_admin->storeCache(topic.cacheSlot, rec);
    used[topic.cacheSlot] = true;
  }
  for (std::uint32_t row = 0; row < layout::kCacheRows; ++row)
    if (m_cacheRowsShown[row] && !used[row]) m_admin->storeCache(row, CacheRecord{});  // its topic is gone
  m_cacheRowsShown = used;
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
      for (const auto& m : it->second.cache) (void)m_ownBlock->manager().free(m.run.arena, m.run.offset);
      m_topicByName.erase(it->second.name);
      it = m_topics.erase(it);
    } else {
      ++it;
    }
  }
  return left;
}

}  // namespace ipcsync
