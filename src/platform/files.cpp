// The OS-independent part of files.hpp: the state-directory rules, kept out
// of the per-OS files so that every build can test both.
#include "platform/files.hpp"

namespace daemoneye::platform::detail {

std::string posix_state_directory(bool root, std::string_view app, const std::string& xdg_state_home,
                                  const std::string& home) {
  std::string name(app);
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // ASCII only, whatever the locale
  }
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
