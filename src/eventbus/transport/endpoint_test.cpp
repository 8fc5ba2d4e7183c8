// Endpoint syntax: the one parser every program and the config file use.
#include <gtest/gtest.h>

#include <cstdlib>

#include <daemoneye/eventbus/endpoint.hpp>

#include "transport/local.hpp"
#include "transport/transport.hpp"

namespace daemoneye::eventbus::transport {
namespace {

using Kind = Endpoint::Kind;

TEST(Endpoint, TcpFormsParseAndPrintBack) {
  auto ep = parse_endpoint("tcp:127.0.0.1:7420");
  ASSERT_TRUE(ep) << ep.describe();
  EXPECT_EQ(ep->kind, Kind::tcp);
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, 7420);
  EXPECT_EQ(ep->to_string(), "tcp:127.0.0.1:7420");
  auto v6 = parse_endpoint("tcp:[::1]:9");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  for (const char* bad : {"tcp:", "tcp:127.0.0.1", "tcp:127.0.0.1:x", "tcp:127.0.0.1:70000", "tcp::80"}) {
    auto r = parse_endpoint(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error(), errc::unsupported_endpoint) << bad;
      EXPECT_FALSE(r.detail().empty()) << bad;
    }
  }
}

// The platform's own local kind parses; the other one is refused with a
// one-line reason that names what to use instead.
TEST(Endpoint, LocalKindParsesAndTheOtherIsRefused) {
  const bool pipes = local::kind() == Kind::named_pipe;
  auto pipe = parse_endpoint("pipe:daemoneye-test");
  auto raw_pipe = parse_endpoint("\\\\.\\pipe\\daemoneye-test");
  auto sock = parse_endpoint("unix:/tmp/x.sock");
  auto bare = parse_endpoint("/tmp/x.sock");
  if (pipes) {
    ASSERT_TRUE(pipe) << pipe.describe();
    EXPECT_EQ(pipe->path, "\\\\.\\pipe\\daemoneye-test");
    EXPECT_EQ(pipe->to_string(), "pipe:daemoneye-test");
    ASSERT_TRUE(raw_pipe);
    EXPECT_EQ(raw_pipe->to_string(), "pipe:daemoneye-test");
    EXPECT_FALSE(sock);
    EXPECT_NE(sock.detail().find("pipe:NAME"), std::string::npos) << sock.detail();
  } else {
    ASSERT_TRUE(sock) << sock.describe();
    EXPECT_EQ(sock->path, "/tmp/x.sock");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->to_string(), "/tmp/x.sock");
    EXPECT_FALSE(pipe);
    EXPECT_EQ(pipe.error(), errc::unsupported_endpoint);
    EXPECT_NE(pipe.detail().find("only on Windows"), std::string::npos) << pipe.detail();
    EXPECT_FALSE(raw_pipe);
  }
  EXPECT_FALSE(parse_endpoint(""));
  EXPECT_FALSE(parse_endpoint("pipe:"));
  EXPECT_FALSE(parse_endpoint("pipe:a\\b"));
  EXPECT_FALSE(parse_endpoint("http://x"));
}

TEST(Endpoint, ResolutionPrefersFlagThenEnvironmentThenPlatformDefault) {
  EXPECT_EQ(resolve_endpoint("tcp:127.0.0.1:1"), "tcp:127.0.0.1:1");
  const char* saved = std::getenv("DAEMONEYE_SOCKET");
  const std::string keep = saved ? saved : "";
#ifdef _WIN32
  _putenv_s("DAEMONEYE_SOCKET", "pipe:from-env");
  EXPECT_EQ(resolve_endpoint(), "pipe:from-env");
  _putenv_s("DAEMONEYE_SOCKET", "");
#else
  ::setenv("DAEMONEYE_SOCKET", "/tmp/from-env.sock", 1);
  EXPECT_EQ(resolve_endpoint(), "/tmp/from-env.sock");
  ::unsetenv("DAEMONEYE_SOCKET");
#endif
  EXPECT_EQ(resolve_endpoint(), local::default_endpoint());
  EXPECT_TRUE(parse_endpoint(resolve_endpoint())) << resolve_endpoint();
#ifdef _WIN32
  if (!keep.empty()) _putenv_s("DAEMONEYE_SOCKET", keep.c_str());
#else
  if (!keep.empty()) ::setenv("DAEMONEYE_SOCKET", keep.c_str(), 1);
#endif
}

}  // namespace
}  // namespace daemoneye::eventbus::transport
