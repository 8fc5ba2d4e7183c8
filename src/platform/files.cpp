// The OS-independent part of files.hpp: the state-directory rules, kept out
// of the per-OS files so that every build can test both.
#include "platform/files.hpp"

namespace daemoneye::platform::detail {

namespace {
std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // ASCII only, whatever the locale
  }
  return out;
}
}  // namespace

std::vector<std::string> posix_config_directories(bool root, std::string_view app, const std::string& xdg_config_home,
                                                  const std::string& home) {
  const std::string name = lower_ascii(app);
  std::vector<std::string> dirs;
  if (!root) {
    if (!xdg_config_home.empty() && xdg_config_home.front() == '/') {
      dirs.push_back(xdg_config_home + "/" + name);
    } else if (!home.empty()) {
      dirs.push_back(home + "/.config/" + name);
    }
  }
  dirs.push_back("/etc/" + name);
  return dirs;
}

std::vector<std::string> windows_config_directories(bool privileged, std::string_view app,
                                                    const std::string& program_data,
                                                    const std::string& local_app_data) {
  std::vector<std::string> dirs;
  if (!privileged && !local_app_data.empty()) dirs.push_back(local_app_data + "\\" + std::string(app));
  if (!program_data.empty()) dirs.push_back(program_data + "\\" + std::string(app));
  return dirs;
}

std::string posix_state_directory(bool root, std::string_view app, const std::string& xdg_state_home,
                                  const std::string& home) {
  const std::string name = lower_ascii(app);
  if (root) return "/var/lib/" + name;
  if (!xdg_state_home.empty() && xdg_state_home.front() == '/') return xdg_state_home + "/" + name;
  if (home.empty()) return {};
  return home + "/.local/state/" + name;
}

std::string windows_state_directory(bool privileged, std::string_view app, const std::string& program_data,
                                    const std::string& local_app_data) {
  const std::string& base = privileged ? program_data : local_app_data;
  if (base.empty()) return {};
  return base + "\\" + std::string(app);
}

}  // namespace daemoneye::platform::detail
