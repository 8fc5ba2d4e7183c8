#include "collector/journal.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include <fmt/core.h>
#include <spdlog/spdlog.h>

namespace daemoneye::collector {

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kMagic = 0x314a4544;  // "DEJ1" little endian
constexpr std::size_t kMaxRecord = 64u << 20;
constexpr std::string_view kSuffix = ".spool";

void put32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put(std::string& out, std::string_view s) {
  put32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view data) : d_(data) {}
  bool u32(std::uint32_t& v) {
    if (d_.size() - pos_ < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(d_[pos_ + static_cast<std::size_t>(i)])) << (8 * i);
    pos_ += 4;
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (d_.size() - pos_ < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(d_[pos_ + static_cast<std::size_t>(i)])) << (8 * i);
    pos_ += 8;
    return true;
  }
  bool str(std::string& s) {
    std::uint32_t n = 0;
    if (!u32(n) || d_.size() - pos_ < n) return false;
    s.assign(d_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool map(std::map<std::string, std::string>& m) {
    std::uint32_t n = 0;
    if (!u32(n)) return false;
    for (std::uint32_t i = 0; i < n; ++i) {
      std::string k, v;
      if (!str(k) || !str(v)) return false;
      m.emplace(std::move(k), std::move(v));
    }
    return true;
  }
  bool done() const { return pos_ == d_.size(); }

 private:
  std::string_view d_;
  std::size_t pos_ = 0;
};

bool decode_body(std::string_view body, JournalEntry& e) {
  Reader r(body);
  auto& c = e.correlation;
  return r.str(e.message_id) && r.str(e.topic) && r.str(e.payload) && r.str(c.correlation_id) &&
         r.str(c.parent_correlation_id) && r.str(c.root_correlation_id) && r.u64(c.sequence_number) &&
         r.str(c.workflow_stage) && r.str(c.source_process) && r.map(c.tags) && r.map(e.headers) && r.done();
}

std::int64_t segment_number(const fs::path& p) {
  const std::string name = p.filename().string();
  if (name.size() != 16 + kSuffix.size() || !name.ends_with(kSuffix)) return Journal::kNotSpooled;
  std::int64_t n = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    if (name[i] < '0' || name[i] > '9') return Journal::kNotSpooled;
    n = n * 10 + static_cast<std::int64_t>(name[i] - '0');
  }
  return n;
}

}  // namespace

void Journal::encode(const JournalEntry& e, std::string& out) {
  encode(e.message_id, e.topic, e.payload, e.correlation, e.headers, out);
}

void Journal::encode(std::string_view message_id, std::string_view topic, std::string_view payload,
                     const eventbus::Correlation& c, const std::map<std::string, std::string>& headers,
                     std::string& out) {
  const std::size_t start = out.size();
  put32(out, kMagic);
  put32(out, 0);
  put(out, message_id);
  put(out, topic);
  put(out, payload);
  put(out, c.correlation_id);
  put(out, c.parent_correlation_id);
  put(out, c.root_correlation_id);
  put64(out, c.sequence_number);
  put(out, c.workflow_stage);
  put(out, c.source_process);
  put32(out, static_cast<std::uint32_t>(c.tags.size()));
  for (const auto& [k, v] : c.tags) {
    put(out, k);
    put(out, v);
  }
  put32(out, static_cast<std::uint32_t>(headers.size()));
  for (const auto& [k, v] : headers) {
    put(out, k);
    put(out, v);
  }
  const auto len = static_cast<std::uint32_t>(out.size() - start - 8);
  for (int i = 0; i < 4; ++i) out[start + 4 + static_cast<std::size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);
}

std::vector<JournalEntry> Journal::decode_all(std::string_view data) {
  std::vector<JournalEntry> out;
  Reader r(data);
  std::size_t pos = 0;
  while (data.size() - pos >= 8) {
    Reader head(data.substr(pos, 8));
    std::uint32_t magic = 0, len = 0;
    head.u32(magic);
    head.u32(len);
    if (magic != kMagic || len > kMaxRecord || data.size() - pos - 8 < len) break;
    JournalEntry e;
    if (!decode_body(data.substr(pos + 8, len), e)) break;
    out.push_back(std::move(e));
    pos += 8 + len;
  }
  return out;
}

Journal::Journal(std::string dir, std::size_t segment_bytes) : dir_(std::move(dir)), segment_bytes_(segment_bytes) {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    spdlog::error("cannot create the spool directory {}: {}; unconfirmed results are kept in memory only", dir_,
                  ec.message());
    failing_ = true;
    return;
  }
  fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace, ec);
}

Journal::~Journal() {
  if (file_ != nullptr) std::fclose(file_);
}

std::string Journal::path_of(std::int64_t segment) const {
  return fmt::format("{}/{:016d}{}", dir_, segment, kSuffix);
}

std::vector<Journal::Recovered> Journal::recover() {
  std::vector<Recovered> out;
  if (dir_.empty()) return out;
  std::vector<std::int64_t> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::int64_t n = segment_number(entry.path());
    if (n != kNotSpooled) found.push_back(n);
  }
  std::sort(found.begin(), found.end());
  for (const std::int64_t n : found) {
    next_ = std::max(next_, n + 1);
    std::ifstream in(path_of(n), std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto entries = decode_all(data);
    if (entries.empty()) {
      fs::remove(path_of(n), ec);
      continue;
    }
    segments_[n] = Segment{entries.size(), true};
    for (auto& e : entries) out.push_back(Recovered{std::move(e), n});
  }
  return out;
}

bool Journal::open_segment() {
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
    if (auto it = segments_.find(current_); it != segments_.end()) {
      it->second.sealed = true;
      maybe_remove(current_);
    }
  }
  const std::int64_t n = next_++;
  std::FILE* f = std::fopen(path_of(n).c_str(), "wb");
  if (f == nullptr) return false;
  std::setvbuf(f, nullptr, _IONBF, 0);  // one write(2) per record: in the page cache at once
  file_ = f;
  current_ = n;
  size_ = 0;
  segments_[n] = Segment{0, false};
  return true;
}

std::int64_t Journal::append(const JournalEntry& e) {
  return append(e.message_id, e.topic, e.payload, e.correlation, e.headers);
}

std::int64_t Journal::append(std::string_view message_id, std::string_view topic, std::string_view payload,
                             const eventbus::Correlation& correlation,
                             const std::map<std::string, std::string>& headers) {
  if (dir_.empty()) return kNotSpooled;
  buffer_.clear();
  encode(message_id, topic, payload, correlation, headers, buffer_);
  bool ok = (file_ != nullptr && size_ + buffer_.size() <= segment_bytes_) || open_segment();
  if (ok) {
    std::FILE* f = file_;
    const std::size_t n = std::fwrite(buffer_.data(), 1, buffer_.size(), f);
    if (n != buffer_.size()) {
      // A torn record would end the replay of this segment: cut it off.
      std::error_code ec;
      std::clearerr(f);
      fs::resize_file(path_of(current_), size_, ec);
      std::fseek(f, static_cast<long>(size_), SEEK_SET);
      ok = false;
    }
  }
  if (!ok) {
    ++errors_;
    if (!failing_) {
      failing_ = true;
      spdlog::error("cannot write the spool in {}: {}; unconfirmed results are kept in memory only until it works",
                    dir_, std::strerror(errno));
    }
    return kNotSpooled;
  }
  if (failing_) {
    failing_ = false;
    spdlog::warn("spool in {} writable again", dir_);
  }
  size_ += buffer_.size();
  ++segments_[current_].live;
  return current_;
}

void Journal::release(std::int64_t segment) {
  if (segment == kNotSpooled) return;
  const auto it = segments_.find(segment);
  if (it == segments_.end() || it->second.live == 0) return;
  --it->second.live;
  maybe_remove(segment);
}

void Journal::maybe_remove(std::int64_t segment) {
  const auto it = segments_.find(segment);
  if (it == segments_.end() || !it->second.sealed || it->second.live != 0) return;
  std::error_code ec;
  fs::remove(path_of(segment), ec);
  segments_.erase(it);
}

void Journal::close() {
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
  if (auto it = segments_.find(current_); it != segments_.end()) it->second.sealed = true;
  std::vector<std::int64_t> all;
  for (const auto& [n, s] : segments_) all.push_back(n);
  for (const auto n : all) maybe_remove(n);
}

}  // namespace daemoneye::collector
