// Subscribes, publishes one confirmed message to itself and checks it arrives.
#include <daemoneye/eventbus/sync_client.hpp>

#include <cstdio>

int main() {
  using namespace daemoneye::eventbus;
  auto client = SyncClient::connect(ClientOptions{});
  if (!client) {
    std::fprintf(stderr, "connect: %s\n", client.error().message().c_str());
    return 1;
  }
  auto& c = **client;
  if (!c.subscribe("consumer.check")) return 2;
  if (!c.publish_confirmed("consumer.check", "installed library works")) return 3;
  auto m = c.next(std::chrono::seconds(5));
  if (!m || m->payload != "installed library works") return 4;
  std::puts(m->payload.c_str());
  return 0;
}
