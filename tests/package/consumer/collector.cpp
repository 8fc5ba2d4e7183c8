// A third-party collector on the installed collector-core: an EventSource
// that reports the host name, run by the standard collector runtime.
#include <unistd.h>

#include <daemoneye/collector/runtime.hpp>

namespace {

class HostnameSource final : public daemoneye::collector::EventSource {
 public:
  std::string_view type() const override { return "hostmond"; }
  std::string_view domain() const override { return "host"; }
  daemoneye::collector::Capabilities capabilities() const override {
    return daemoneye::collector::Capability::system_wide;
  }
  std::vector<std::string> task_types() const override { return {"hostname"}; }
  std::string configure(std::string_view) override { return {}; }
  daemoneye::collector::TaskStatus run(const daemoneye::collector::Task&,
                                       daemoneye::collector::Emitter& out) override {
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    out.emit("hostname", std::string("{\"hostname\":\"") + name + "\"}");
    return daemoneye::collector::TaskStatus::success();
  }
};

}  // namespace

int main(int argc, char** argv) {
  return daemoneye::collector::main(argc, argv, std::make_unique<HostnameSource>());
}
