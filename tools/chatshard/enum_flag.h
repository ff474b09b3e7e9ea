// AddEnumFlag: a CLI11 option that sets an enum by name, accepting exactly the
// names a naming function gives (the engine's OrderingName, RoutingName, ...),
// so the command line and the engine's reports spell values the same way.
#ifndef CHATSHARD_TOOLS_CHATSHARD_ENUM_FLAG_H_
#define CHATSHARD_TOOLS_CHATSHARD_ENUM_FLAG_H_

#include <CLI/CLI.hpp>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace chatshard::cli {

// Adds `--flag NAME` to `app`; NAME must be name_of(v) for one v in `values`,
// which is then stored in `target`. `target` must outlive `app`'s parsing.
template <typename Enum>
CLI::Option* AddEnumFlag(CLI::App& app, const std::string& flag, Enum& target,
                         std::initializer_list<Enum> values, std::string_view (*name_of)(Enum),
                         const std::string& description) {
  std::map<std::string, Enum> by_name;
  std::vector<std::string> names;
  for (Enum value : values) {
    by_name.emplace(std::string(name_of(value)), value);
    names.emplace_back(name_of(value));
  }
  return app
      .add_option_function<std::string>(
          flag, [&target, by_name](const std::string& name) { target = by_name.at(name); },
          description)
      ->check(CLI::IsMember(names))
      ->default_str(std::string(name_of(target)));
}

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_ENUM_FLAG_H_
