// load(): dlopen and every check of a plugin's descriptor, each refusal with its own kind.
#include "ipcsync/plugin_host/loader.h"

#include <dlfcn.h>
#include <sqlite3.h>

#include <cstddef>
#include <memory>
#include <system_error>

#include "host_services.h"

namespace ipcsync::plugin_host {

std::string_view describe(LoadErrc code) noexcept {
  switch (code) {
    case LoadErrc::FileMissing: return "file missing";
    case LoadErrc::NotALibrary: return "not a loadable shared library";
    case LoadErrc::NoEntrySymbol: return "no entry symbol";
    case LoadErrc::NullDescriptor: return "entry returned no descriptor";
    case LoadErrc::StructTooSmall: return "descriptor too small";
    case LoadErrc::AbiMajorMismatch: return "ABI major version differs";
    case LoadErrc::AbiMinorTooNew: return "ABI minor version newer than the host's";
    case LoadErrc::BadName: return "bad plugin name";
    case LoadErrc::MissingFunctions: return "required functions missing";
    case LoadErrc::BadTable: return "bad table";
    case LoadErrc::NoPrimaryKey: return "table without primary key";
    case LoadErrc::CreateFailed: return "create failed";
  }
  return "unknown load error";
}

namespace {

// The descriptor fields of ABI 1.0, up to and including destroy.
constexpr std::size_t kDescriptorSize = offsetof(ipcsync_plugin_descriptor, destroy) + sizeof(void (*)());
constexpr std::size_t kTableSize = offsetof(ipcsync_table_desc, flags) + sizeof(std::uint32_t);
constexpr std::size_t kMaxName = 32;

std::unexpected<LoadError> refuse(LoadErrc code, const std::filesystem::path& path, const std::string& what) {
  return std::unexpected(LoadError{code, "plugin " + path.string() + ": " + what});
}

bool validName(const char* name) {
  if (!name) return false;
  std::size_t n = 0;
  for (const char* p = name; *p; ++p, ++n) {
    const char c = *p;
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok || n >= kMaxName) return false;
  }
  return n > 0;
}

// Creates the table in a private in-memory database and reports whether any column of it is part
// of its primary key (PRAGMA table_info's pk), or why the schema could not be checked.
std::expected<bool, std::string> hasPrimaryKey(const std::string& table, const std::string& schema) {
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    sqlite3_close(raw);
    return std::unexpected(std::string("cannot open an in-memory SQLite database to check the schema"));
  }
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
  char* message = nullptr;
  if (sqlite3_exec(db.get(), schema.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string why = message ? message : "unknown error";
    sqlite3_free(message);
    return std::unexpected("SQLite rejects its schema (" + why + ")");
  }
  sqlite3_stmt* raw_stmt = nullptr;
  const std::string pragma = "SELECT pk FROM pragma_table_info(?1)";
  if (sqlite3_prepare_v2(db.get(), pragma.c_str(), -1, &raw_stmt, nullptr) != SQLITE_OK)
    return std::unexpected(std::string("cannot read PRAGMA table_info: ") + sqlite3_errmsg(db.get()));
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw_stmt, &sqlite3_finalize);
  sqlite3_bind_text(stmt.get(), 1, table.c_str(), -1, SQLITE_TRANSIENT);
  bool columns = false;
  bool key = false;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    columns = true;
    if (sqlite3_column_int(stmt.get(), 0) > 0) key = true;
  }
  if (!columns)
    return std::unexpected("its schema does not create a table named '" + table +
                           "' (the CREATE TABLE must use the table's name)");
  return key;
}

std::expected<PluginDescription, LoadError> check(const std::filesystem::path& path, const ipcsync_plugin_descriptor& d) {
  // The version first (it sits right after struct_size in every ABI): a plugin of another major
  // version is told so, not that its struct is too small.
  if (d.struct_size >= offsetof(ipcsync_plugin_descriptor, name) && d.abi_major != IPCSYNC_PLUGIN_ABI_MAJOR)
    return refuse(LoadErrc::AbiMajorMismatch, path,
                  "it was built against plugin ABI " + std::to_string(d.abi_major) + "." + std::to_string(d.abi_minor) +
                      ", this host speaks " + std::to_string(IPCSYNC_PLUGIN_ABI_MAJOR) + "." +
                      std::to_string(IPCSYNC_PLUGIN_ABI_MINOR) + "; rebuild against plugin.h " +
                      std::to_string(IPCSYNC_PLUGIN_ABI_MAJOR) + ".x");
  if (d.struct_size < kDescriptorSize)
    return refuse(LoadErrc::StructTooSmall, path,
                  "its descriptor's struct_size is " + std::to_string(d.struct_size) + " bytes, smaller than the " +
                      std::to_string(kDescriptorSize) +
                      " bytes of ABI 1.0; set struct_size = sizeof(ipcsync_plugin_descriptor) and rebuild");
  if (d.abi_major != IPCSYNC_PLUGIN_ABI_MAJOR)
    return refuse(LoadErrc::AbiMajorMismatch, path,
                  "it was built against plugin ABI " + std::to_string(d.abi_major) + "." + std::to_string(d.abi_minor) +
                      ", this host speaks " + std::to_string(IPCSYNC_PLUGIN_ABI_MAJOR) + "." +
                      std::to_string(IPCSYNC_PLUGIN_ABI_MINOR) + "; rebuild against plugin.h " +
                      std::to_string(IPCSYNC_PLUGIN_ABI_MAJOR) + ".x");
  if (d.abi_minor > IPCSYNC_PLUGIN_ABI_MINOR)
    return refuse(LoadErrc::AbiMinorTooNew, path,
                  "it was built against plugin ABI " + std::to_string(d.abi_major) + "." + std::to_string(d.abi_minor) +
                      ", newer than this host's " + std::to_string(IPCSYNC_PLUGIN_ABI_MAJOR) + "." +
                      std::to_string(IPCSYNC_PLUGIN_ABI_MINOR) + "; update ipcsync, or rebuild the plugin against plugin.h " +
                      std::to_string(IPCSYNC_PLUGIN_ABI_MAJOR) + "." + std::to_string(IPCSYNC_PLUGIN_ABI_MINOR));
  if (!validName(d.name))
    return refuse(LoadErrc::BadName, path,
                  std::string("its name ") + (d.name ? "'" + std::string(d.name) + "'" : std::string("(NULL)")) +
                      " is not 1-32 characters of [a-z0-9_-]; fix the descriptor's name");
  std::string missing;
  const auto need = [&](bool present, const char* field) {
    if (!present) missing += (missing.empty() ? "" : ", ") + std::string(field);
  };
  need(d.create != nullptr, "create");
  need(d.start != nullptr, "start");
  need(d.poll != nullptr, "poll");
  need(d.apply != nullptr, "apply");
  need(d.snapshot != nullptr, "snapshot");
  need(d.last_applied != nullptr, "last_applied");
  need(d.acknowledge != nullptr, "acknowledge");
  need(d.stop != nullptr, "stop");
  need(d.destroy != nullptr, "destroy");
  if (!missing.empty())
    return refuse(LoadErrc::MissingFunctions, path,
                  "its descriptor lacks required functions: " + missing + "; every function of the descriptor must be set");
  if (d.table_count > 0 && !d.tables)
    return refuse(LoadErrc::BadTable, path, "table_count is " + std::to_string(d.table_count) + " but tables is NULL");

  PluginDescription out;
  out.name = d.name;
  out.version = d.version ? d.version : "";
  out.description = d.description ? d.description : "";
  out.abiMajor = d.abi_major;
  out.abiMinor = d.abi_minor;
  // The array's stride is the plugin's sizeof(ipcsync_table_desc), which its first element states
  // (a plugin built against another minor version may have a longer one).
  const std::size_t stride = d.table_count > 0 && d.tables ? std::max<std::size_t>(d.tables[0].struct_size, kTableSize) : 0;
  if (stride % alignof(ipcsync_table_desc) != 0)
    return refuse(LoadErrc::BadTable, path,
                  "table #0 has struct_size " + std::to_string(stride) + ", which is not sizeof(ipcsync_table_desc) of any "
                  "ABI version; set struct_size = sizeof(ipcsync_table_desc)");
  for (std::size_t i = 0; i < d.table_count; ++i) {
    const ipcsync_table_desc& t =
        *reinterpret_cast<const ipcsync_table_desc*>(reinterpret_cast<const unsigned char*>(d.tables) + i * stride);
    const std::string where = "table #" + std::to_string(i);
    if (t.struct_size < kTableSize)
      return refuse(LoadErrc::BadTable, path,
                    where + " has struct_size " + std::to_string(t.struct_size) + ", smaller than ABI 1.0's " +
                        std::to_string(kTableSize) + "; set struct_size = sizeof(ipcsync_table_desc)");
    if (!t.name || !*t.name) return refuse(LoadErrc::BadTable, path, where + " has no name; give every table its name");
    const std::string name = t.name;
    if (!t.schema_sql || !*t.schema_sql)
      return refuse(LoadErrc::BadTable, path,
                    "table '" + name + "' has no schema; set schema_sql to its CREATE TABLE statement");
    auto pk = hasPrimaryKey(name, t.schema_sql);
    if (!pk) return refuse(LoadErrc::BadTable, path, "table '" + name + "': " + pk.error());
    if (!*pk)
      return refuse(LoadErrc::NoPrimaryKey, path,
                    "table '" + name + "' declares no PRIMARY KEY; change-sets need one: add a PRIMARY KEY to its CREATE TABLE");
    out.tables.push_back(TableDescription{name, t.schema_sql, t.flags});
  }
  return out;
}

}  // namespace

std::expected<LoadedPlugin, LoadError> load(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return refuse(LoadErrc::FileMissing, path, "no such file; check the path and the plugins directory");
  // dlopen looks a bare name up in the library path: make it a path so we load what was named.
  const std::filesystem::path target = path.has_parent_path() ? path : std::filesystem::path(".") / path;
  dlerror();
  void* handle = dlopen(target.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    return refuse(LoadErrc::NotALibrary, path,
                  std::string("cannot be loaded (") + (why ? why : "unknown dlopen error") +
                      "); it must be a shared library built for this machine with every symbol resolvable");
  }
  std::shared_ptr<void> library(handle, [](void* h) { dlclose(h); });
  dlerror();
  void* symbol = dlsym(handle, IPCSYNC_PLUGIN_ENTRY_SYMBOL);
  if (!symbol)
    return refuse(LoadErrc::NoEntrySymbol, path,
                  "it does not export " IPCSYNC_PLUGIN_ENTRY_SYMBOL
                  "; define it with IPCSYNC_PLUGIN_EXPORT (see plugin.h), or this is not an ipcsync plugin");
  auto entry = reinterpret_cast<ipcsync_plugin_entry_fn>(symbol);
  const ipcsync_plugin_descriptor* descriptor = entry();
  if (!descriptor)
    return refuse(LoadErrc::NullDescriptor, path,
                  IPCSYNC_PLUGIN_ENTRY_SYMBOL "() returned NULL; it must return the plugin's descriptor");
  auto description = check(path, *descriptor);
  if (!description) return std::unexpected(std::move(description.error()));
  LoadedPlugin plugin;
  plugin.m_path = path;
  plugin.m_library = std::move(library);
  plugin.m_descriptor = descriptor;
  plugin.m_description = std::move(*description);
  return plugin;
}

std::expected<std::unique_ptr<PluginInstance>, LoadError> LoadedPlugin::createInstance(InstanceConfig config,
                                                                                     HostSink& sink) const {
  std::error_code ec;
  std::filesystem::create_directories(config.dataDir, ec);
  if (ec)
    return refuse(LoadErrc::CreateFailed, m_path,
                  "cannot create the data directory " + config.dataDir.string() + " (" + ec.message() +
                      "); choose a writable --data-dir");
  auto services = std::make_unique<HostServices>(config.instance, std::move(config.settings),
                                                 config.dataDir.string(), sink);
  std::unique_ptr<PluginInstance> instance(new PluginInstance(m_library, m_descriptor, std::move(services)));
  ipcsync_error error{};
  ipcsync_plugin* created = nullptr;
  const int rc = m_descriptor->create(instance->m_services->table(), &created, &error);
  if (rc != IPCSYNC_OK) {
    error.message[sizeof error.message - 1] = '\0';
    auto refused = refuse(LoadErrc::CreateFailed, m_path,
                          "create() of instance '" + config.instance + "' failed with status " + std::to_string(rc) +
                              ": " + (error.message[0] ? error.message : "(the plugin gave no message)"));
    refused.error().status = rc;
    return refused;
  }
  if (!created)
    return refuse(LoadErrc::CreateFailed, m_path,
                  "create() of instance '" + config.instance + "' returned IPCSYNC_OK but no instance");
  instance->m_plugin = created;
  return instance;
}

}  // namespace ipcsync::plugin_host
