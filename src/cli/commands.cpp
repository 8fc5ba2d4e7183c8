#include "cli/commands.hpp"

#include <atomic>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <daemoneye/eventbus/endpoint.hpp>
#include <daemoneye/eventbus/sync_client.hpp>
#include <daemoneye/eventbus/topics.hpp>

#include "platform/stop_signals.hpp"

namespace daemoneye::cli {

namespace eb = daemoneye::eventbus;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> g_stop{false};

void install_signal_handlers() {
  platform::set_flag_on_stop(&g_stop);
  platform::ignore_broken_pipe();
}

std::string substitute(const std::string& tmpl, std::uint64_t n) {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t at = tmpl.find("{n}", pos);
    if (at == std::string::npos) break;
    out.append(tmpl, pos, at - pos).append(std::to_string(n));
    pos = at + 3;
  }
  return out.append(tmpl, pos);
}

// Reports overflow drops the broker told us about since the last call.
void report_drops(eb::SyncClient& client, std::uint64_t& seen) {
  const std::uint64_t now = client.dropped_total();
  if (now > seen) {
    std::fprintf(stderr, "daemoneye-cli: warning: the broker dropped %llu message(s) for this subscriber (overflow)\n",
                 static_cast<unsigned long long>(now - seen));
    seen = now;
  }
}

// Reports what the client library met on its own since the last call: an
// error the broker sent unprompted (e.g. a subscription revoked by a policy
// reload) and deliveries it could not decode, which it skips.
void report_async(eb::SyncClient& client, std::uint64_t& undecodable_seen) {
  std::string detail;
  if (const std::error_code ec = client.take_async_error(&detail)) {
    std::fprintf(stderr, "daemoneye-cli: warning: %s%s%s\n", ec.message().c_str(), detail.empty() ? "" : ": ",
                 detail.c_str());
  }
  const std::uint64_t now = client.undecodable();
  if (now > undecodable_seen) {
    std::fprintf(stderr,
                 "daemoneye-cli: warning: %llu frame(s) from the broker could not be decoded and were skipped\n",
                 static_cast<unsigned long long>(now - undecodable_seen));
    undecodable_seen = now;
  }
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 0x3f] : '=';
    }
  }
  return out;
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t more = 0;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      more = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      lo = c == 0xe0 ? 0xa0 : 0x80;
      hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      lo = c == 0xf0 ? 0x90 : 0x80;
      hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
      return false;
    }
    if (s.size() - i <= more) return false;
    for (std::size_t k = 1; k <= more; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80u) || b > (k == 1 ? hi : 0xbfu)) return false;
    }
    i += more + 1;
  }
  return true;
}

}  // namespace

int fail(const std::string& what) {
  std::fprintf(stderr, "daemoneye-cli: %s\n", what.c_str());
  return 1;
}

std::unique_ptr<eb::SyncClient> connect(const Common& c, int& exit_code) {
  install_signal_handlers();
  eb::ClientOptions o;
  o.endpoint = eb::resolve_endpoint(c.socket);
  o.token_file = c.token_file;
  o.name = c.name;
  auto r = eb::SyncClient::connect(o);
  if (!r) {
    exit_code = fail(fmt::format("cannot connect to {}: {}", o.endpoint, r.describe()));
    return nullptr;
  }
  return std::move(*r);
}


std::string message_json(const eb::Message& m) {
  nlohmann::json j{{"topic", m.topic},
                   {"message_id", m.message_id},
                   {"sender_id", m.sender_id},
                   {"sequence", m.sequence},
                   {"timestamp_unix_ns", m.timestamp_unix_ns},
                   {"headers", m.headers},
                   {"correlation",
                    {{"correlation_id", m.correlation.correlation_id},
                     {"parent_correlation_id", m.correlation.parent_correlation_id},
                     {"root_correlation_id", m.correlation.root_correlation_id},
                     {"sequence_number", m.correlation.sequence_number},
                     {"workflow_stage", m.correlation.workflow_stage},
                     {"source_process", m.correlation.source_process},
                     {"tags", m.correlation.tags}}},
                   {"subscription_id", m.subscription_id},
                   {"delivery_count", m.delivery_count},
                   {"redelivered", m.redelivered},
                   {"direct", m.direct}};
  if (!m.reply_to.empty()) j["reply_to"] = m.reply_to;
  // The payload is bytes: text when it is UTF-8, else base64 (never mangled).
  if (is_utf8(m.payload)) {
    j["payload"] = m.payload;
  } else {
    j["payload_base64"] = base64(m.payload);
  }
  // Every other string was checked to be UTF-8 by the client library, which
  // skips (and reports) a delivery where one is not: nothing is replaced here.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int cmd_pub(const Common& c, const PubArgs& a) {
  int code = 0;
  auto client = connect(c, code);
  if (!client) return code;
  eb::PublishOptions opts;
  opts.correlation.correlation_id = a.correlation_id;
  for (const auto& h : a.headers) {
    const auto eq = h.find('=');
    if (eq == std::string::npos || eq == 0) return fail("header must be KEY=VALUE: " + h);
    opts.headers[h.substr(0, eq)] = h.substr(eq + 1);
  }
  eb::ClientTarget target;
  const bool direct = !a.to.empty();
  if (direct) {
    std::uint64_t id = 0;
    const auto [p, ec] = std::from_chars(a.to.data(), a.to.data() + a.to.size(), id);
    if (ec == std::errc{} && p == a.to.data() + a.to.size()) {
      target.id = id;
    } else {
      target.name = a.to;
    }
  }
  const bool confirm = a.confirm || direct;
  auto publish_one = [&](const std::string& payload) -> bool {
    if (confirm) {
      const std::chrono::milliseconds timeout(a.confirm_timeout_ms);
      auto r = direct ? client->publish_direct_confirmed(target, a.topic, payload, opts, timeout)
                      : client->publish_confirmed(a.topic, payload, opts, timeout);
      if (!r) {
        fail(fmt::format("publish to '{}' failed: {}", a.topic, r.describe()));
        return false;
      }
      return true;
    }
    auto r = client->publish(a.topic, payload, opts);
    if (!r) fail(fmt::format("publish to '{}' failed: {}", a.topic, r.describe()));
    return static_cast<bool>(r);
  };
  if (a.from_stdin) {
    std::string line;
    while (!g_stop && std::getline(std::cin, line)) {
      if (!publish_one(line)) return 1;
    }
  } else {
    for (std::uint64_t n = 1; n <= a.count && !g_stop; ++n) {
      if (!publish_one(substitute(a.payload, n))) return 1;
    }
  }
  // Everything must reach the socket before we go: a broker holding us back
  // (block overflow, rate limit) can take a while, so no short linger here.
  if (auto r = client->flush(std::chrono::minutes(10)); !r) {
    return fail("could not send every message: " + r.describe());
  }
  client->close(std::chrono::minutes(10));  // until the broker has read them all
  std::string msg;
  if (auto ec = client->take_async_error(&msg)) return fail(fmt::format("broker reported: {}: {}", ec.message(), msg));
  return 0;
}

int cmd_sub(const Common& c, const SubArgs& a) {
  int code = 0;
  auto client = connect(c, code);
  if (!client) return code;
  auto sub = client->subscribe(a.pattern, a.options);
  if (!sub) return fail(fmt::format("subscribe to '{}' failed: {}", a.pattern, sub.describe()));
  const auto start = Clock::now();
  const auto deadline = a.timeout_s > 0 ? start + std::chrono::duration_cast<Clock::duration>(
                                                      std::chrono::duration<double>(a.timeout_s))
                                        : Clock::time_point::max();
  std::uint64_t received = 0;
  std::uint64_t drops_seen = 0;
  std::uint64_t undecodable_seen = 0;
  bool binary_noted = false;
  while (!g_stop) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    const auto wait = std::min<Clock::duration>(deadline - now, std::chrono::milliseconds(200));
    auto m = client->next(std::chrono::duration_cast<std::chrono::milliseconds>(wait) + std::chrono::milliseconds(1));
    if (!m) {
      if (m.error() != eb::errc::timeout) return fail("receive failed: " + m.error().message());
      report_drops(*client, drops_seen);
      report_async(*client, undecodable_seen);
      continue;
    }
    if (a.json && !binary_noted && !is_utf8(m->payload)) {
      binary_noted = true;
      std::fprintf(stderr,
                   "daemoneye-cli: note: payloads that are not UTF-8 are printed as \"payload_base64\" "
                   "(first: a message on '%s')\n",
                   m->topic.c_str());
    }
    if (a.json) {
      std::string line = message_json(*m);
      line.push_back('\n');
      std::fwrite(line.data(), 1, line.size(), stdout);
    } else if (a.verbose) {
      std::fprintf(stdout, "%s %s\n", m->topic.c_str(), m->payload.c_str());
    } else {
      std::fwrite(m->payload.data(), 1, m->payload.size(), stdout);
      std::fputc('\n', stdout);
    }
    std::fflush(stdout);
    if (m->delivery_tag != 0) {
      if (auto r = client->ack(*m); !r) return fail("ack failed: " + r.error().message());
    }
    ++received;
    if (received % 256 == 0) {
      report_drops(*client, drops_seen);
      report_async(*client, undecodable_seen);
    }
    if (a.count != 0 && received >= a.count) break;
    if (a.delay_ms != 0) std::this_thread::sleep_for(std::chrono::milliseconds(a.delay_ms));
  }
  report_drops(*client, drops_seen);
  report_async(*client, undecodable_seen);
  client->close();
  return 0;
}

int cmd_request(const Common& c, const RequestArgs& a) {
  int code = 0;
  auto client = connect(c, code);
  if (!client) return code;
  auto r = client->request(a.topic, a.payload, std::chrono::milliseconds(a.timeout_ms));
  if (!r) return fail(fmt::format("request on '{}' failed: {}", a.topic, r.describe()));
  if (a.json) {
    std::printf("%s\n", message_json(*r).c_str());
  } else {
    std::fwrite(r->payload.data(), 1, r->payload.size(), stdout);
    std::fputc('\n', stdout);
  }
  client->close();
  return 0;
}

int cmd_reply(const Common& c, const ReplyArgs& a) {
  int code = 0;
  auto client = connect(c, code);
  if (!client) return code;
  eb::SubscribeOptions so;
  so.queue_group = a.queue;
  auto sub = client->subscribe(a.pattern, so);
  if (!sub) return fail(fmt::format("subscribe to '{}' failed: {}", a.pattern, sub.describe()));
  const auto deadline = a.timeout_s > 0 ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                             std::chrono::duration<double>(a.timeout_s))
                                        : Clock::time_point::max();
  std::uint64_t answered = 0;
  while (!g_stop && Clock::now() < deadline) {
    auto m = client->next(std::chrono::milliseconds(200));
    if (!m) {
      if (m.error() != eb::errc::timeout) return fail("receive failed: " + m.error().message());
      continue;
    }
    if (m->reply_to.empty()) continue;
    eb::PublishOptions po;
    po.correlation = m->correlation;
    if (auto r = client->reply(*m, a.has_payload ? a.payload : m->payload, po); !r) {
      return fail("reply failed: " + r.error().message());
    }
    if (a.count != 0 && ++answered >= a.count) break;
  }
  client->close();
  return 0;
}

int cmd_stats(const Common& c, bool json) {
  int code = 0;
  auto client = connect(c, code);
  if (!client) return code;
  auto r = client->request(std::string(eb::topics::kBusStats), "", std::chrono::seconds(5));
  if (!r) return fail("stats request failed: " + r.describe());
  client->close();
  if (json) {
    std::printf("%s\n", r->payload.c_str());
    return 0;
  }
  const auto j = nlohmann::json::parse(r->payload, nullptr, false);
  if (j.is_discarded()) return fail("broker sent unreadable stats");
  const auto& t = j["totals"];
  const auto& l = j["latency_us"];
  fmt::print("broker {}  up {} s  connections {}\n", j["broker"]["version"].get<std::string>(),
             j["broker"]["uptime_ms"].get<std::int64_t>() / 1000, j["broker"]["connections"].get<std::int64_t>());
  fmt::print("messages in {}  out {}  deliveries {}  dropped {}  redelivered {}  dead-lettered {}\n",
             t["msgs_in"].dump(), t["msgs_out"].dump(), t["deliveries"].dump(), t["dropped"].dump(),
             t["redelivered"].dump(), t["dead_lettered"].dump());
  fmt::print("bytes in {}  out {}  malformed {}  limit hits {}  no responders {}\n", t["bytes_in"].dump(),
             t["bytes_out"].dump(), t["malformed"].dump(), t["limit_hits"].dump(), t["no_responders"].dump());
  fmt::print("queue latency us  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})\n", l["p50"].dump(), l["p90"].dump(),
             l["p99"].dump(), l["p999"].dump(), l["max"].dump(), l["count"].dump());
  fmt::print("\n{:>5} {:<24} {:>8} {:>10} {:>10} {:>7} {:>5}\n", "ID", "CLIENT", "PID", "MSGS IN", "MSGS OUT", "QUEUED",
             "SUBS");
  for (const auto& cl : j["clients"]) {
    fmt::print("{:>5} {:<24} {:>8} {:>10} {:>10} {:>7} {:>5}\n", cl["id"].dump(), cl["name"].get<std::string>(),
               cl["pid"].dump(), cl["msgs_in"].dump(), cl["msgs_out"].dump(), cl["queue_items"].dump(),
               cl["subscriptions"].size());
  }
  if (!j["queue_groups"].empty()) {
    fmt::print("\n{:<20} {:<34} {:<13} {:>7} {:>7} {:>8} {:>9} {:>7}\n", "QUEUE GROUP", "PATTERN", "STRATEGY",
               "MEMBERS", "BACKLOG", "INFLIGHT", "DELIVERED", "REDELIV");
    for (const auto& g : j["queue_groups"]) {
      fmt::print("{:<20} {:<34} {:<13} {:>7} {:>7} {:>8} {:>9} {:>7}\n", g["name"].get<std::string>(),
                 g["pattern"].get<std::string>(), g["strategy"].get<std::string>(), g["members"].dump(),
                 g["backlog"].dump(), g["inflight"].dump(), g["delivered"].dump(), g["redelivered"].dump());
    }
  }
  return 0;
}

}  // namespace daemoneye::cli
