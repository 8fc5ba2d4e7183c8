// The TCP fallback's token: how it is made, read back and compared, and the
// one rule that says where its file is.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include <daemoneye/eventbus/endpoint.hpp>

#include "auth_token.hpp"
#include "platform/secrets.hpp"
#include "process.hpp"

namespace daemoneye::eventbus::detail {
namespace {

using testing::TempDir;

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Sets (or, with nullptr, unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) saved_ = old;
    set(value);
  }
  ~ScopedEnv() { set(saved_ ? saved_->c_str() : nullptr); }

 private:
  void set(const char* value) {
#ifdef _WIN32
    _putenv_s(name_, value ? value : "");
#else
    if (value) {
      ::setenv(name_, value, 1);
    } else {
      ::unsetenv(name_);
    }
#endif
  }
  const char* name_;
  std::optional<std::string> saved_;
};

TEST(AuthToken, NewTokensAre256BitsOfHexAndNeverRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string t = new_token();
    ASSERT_EQ(t.size(), 2 * kTokenBytes);
    EXPECT_EQ(t.find_first_not_of("0123456789abcdef"), std::string::npos) << t;
    EXPECT_TRUE(seen.insert(t).second) << "repeated: " << t;
  }
}

TEST(AuthToken, RandomBytesFillTheWholeBuffer) {
  // 4 KiB of zeros coming back unchanged would mean nothing was written.
  std::vector<unsigned char> buf(4096, 0);
  platform::random_bytes(buf);
  std::size_t zeros = 0;
  for (unsigned char b : buf) zeros += b == 0;
  EXPECT_LT(zeros, 100u);
}

TEST(AuthToken, TokenFileIsReadWithoutSurroundingWhitespace) {
  TempDir dir;
  write(dir.file("t"), "  abc123\r\n\n");
  auto t = read_token_file(dir.file("t"));
  ASSERT_TRUE(t) << t.describe();
  EXPECT_EQ(*t, "abc123");
}

TEST(AuthToken, MissingEmptyAndOversizedTokenFilesAreErrorsNamingThePath) {
  TempDir dir;
  auto missing = read_token_file(dir.file("absent"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory);
  EXPECT_NE(missing.detail().find(dir.file("absent")), std::string::npos) << missing.detail();

  write(dir.file("empty"), " \n");
  auto empty = read_token_file(dir.file("empty"));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error(), errc::unauthenticated);
  EXPECT_NE(empty.detail().find("empty"), std::string::npos) << empty.detail();

  write(dir.file("big"), std::string(kMaxTokenFileBytes + 1, 'a'));
  auto big = read_token_file(dir.file("big"));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error(), errc::unauthenticated);
}

TEST(AuthToken, OnlyTheWholeTokenMatches) {
  const std::string t = new_token();
  EXPECT_TRUE(same_token(t, t));
  EXPECT_FALSE(same_token("", t));
  EXPECT_FALSE(same_token(t.substr(0, t.size() - 1), t));
  EXPECT_FALSE(same_token(t + "0", t));
  std::string last = t;
  last.back() = last.back() == '0' ? '1' : '0';
  EXPECT_FALSE(same_token(last, t));
  std::string first = t;
  first.front() = first.front() == '0' ? '1' : '0';
  EXPECT_FALSE(same_token(first, t));
}

TEST(TokenFileRule, FlagThenEnvironmentThenTheFileOfThePortBesideTheDefaultSocket) {
  ScopedEnv no_env("DAEMONEYE_TOKEN_FILE", nullptr);
  const std::string def = token_file_for("tcp:127.0.0.1:7420");
  EXPECT_EQ(def, platform::runtime_file("eventbus-tcp-7420.token"));
  EXPECT_EQ(token_file_for("tcp:localhost:7420"), def) << "only the port names the file";
  EXPECT_NE(token_file_for("tcp:127.0.0.1:7421"), def);
  EXPECT_EQ(token_file_for("tcp:127.0.0.1:7420", "/x/flag.token"), "/x/flag.token");
  {
    ScopedEnv env("DAEMONEYE_TOKEN_FILE", "/x/env.token");
    EXPECT_EQ(token_file_for("tcp:127.0.0.1:7420"), "/x/env.token");
    EXPECT_EQ(token_file_for("tcp:127.0.0.1:7420", "/x/flag.token"), "/x/flag.token");
  }
  EXPECT_EQ(token_file_for("tcp:127.0.0.1:7420"), def);
}

TEST(TokenFileRule, EndpointsThatAreNotTcpHaveNoTokenFile) {
  ScopedEnv env("DAEMONEYE_TOKEN_FILE", "/x/env.token");
  EXPECT_EQ(token_file_for(resolve_endpoint()), "") << resolve_endpoint();
  EXPECT_EQ(token_file_for("not an endpoint://"), "");
  EXPECT_EQ(token_file_for(""), "");
}

#ifndef _WIN32
TEST(TokenFileRule, TheDefaultSitsBesideTheDefaultSocket) {
  ScopedEnv socket("DAEMONEYE_SOCKET", nullptr);
  ScopedEnv token("DAEMONEYE_TOKEN_FILE", nullptr);
  for (const char* xdg : {"/run/user/4242", static_cast<const char*>(nullptr)}) {
    ScopedEnv runtime("XDG_RUNTIME_DIR", xdg);
    const std::string sock = resolve_endpoint();
    const std::string dir = sock.substr(0, sock.rfind('/') + 1);
    EXPECT_EQ(token_file_for("tcp:127.0.0.1:99"), dir + "eventbus-tcp-99.token");
    EXPECT_EQ(dir, xdg ? std::string(xdg) + "/daemoneye/" : std::string("/run/daemoneye/"));
  }
}
#endif

}  // namespace
}  // namespace daemoneye::eventbus::detail
