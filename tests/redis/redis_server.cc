#include "redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace chatshard::redis::testing {
namespace {

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "redis test fixture: %s\n", why.c_str());
  std::abort();
}

TestReply Flatten(const redisReply* r) {
  TestReply out;
  if (r == nullptr) return out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = TestReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = TestReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = TestReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = TestReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = TestReply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Flatten(r->element[i]));
      break;
    default:
      break;
  }
  return out;
}

}  // namespace

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Die("bind failed");
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TestClient::TestClient(int port, const std::string& password) {
  timeval tv{5, 0};
  context_ = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (context_ == nullptr || context_->err != 0) Die("test client cannot connect");
  redisSetTimeout(context_, tv);
  if (!password.empty()) Run({"AUTH", password});
}

TestClient::~TestClient() { redisFree(context_); }

TestReply TestClient::Run(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  void* raw = redisCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (raw == nullptr) Die(std::string("test client command failed: ") + context_->errstr);
  TestReply out = Flatten(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return out;
}

long long TestClient::Pending(const std::string& stream, const std::string& group) {
  TestReply r = Run({"XPENDING", stream, group});
  if (r.type != TestReply::Type::kArray || r.elements.empty()) return -1;
  return r.elements[0].integer;
}

long long TestClient::UsedMemory() {
  const std::string info = Run({"INFO", "memory"}).str;
  const size_t at = info.find("used_memory:");
  return at == std::string::npos ? -1 : std::atoll(info.c_str() + at + 12);
}

RedisServer::RedisServer(std::vector<std::string> extra_args)
    : extra_args_(std::move(extra_args)) {
  char tmpl[] = "/tmp/chatshard-redis-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) Die("mkdtemp failed");
  dir_ = tmpl;
  port_ = FreePort();
  Launch();
}

RedisServer::~RedisServer() {
  Kill();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void RedisServer::Launch() {
  std::vector<std::string> args = {"redis-server", "--port",     std::to_string(port_),
                                   "--bind",       "127.0.0.1",  "--save",
                                   "",             "--appendonly", "yes",
                                   "--dir",        dir_};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  const pid_t pid = ::fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    const std::string log = dir_ + "/redis.log";
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp("redis-server", argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    timeval tv{0, 200000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (c != nullptr && c->err == 0) {
      void* r = redisCommand(c, "PING");
      const bool up = r != nullptr && (static_cast<redisReply*>(r)->type == REDIS_REPLY_STATUS ||
                                       static_cast<redisReply*>(r)->type == REDIS_REPLY_ERROR);
      // LOADING errors mean the AOF is still being replayed.
      const bool loading = r != nullptr && static_cast<redisReply*>(r)->type == REDIS_REPLY_ERROR &&
                           std::string(static_cast<redisReply*>(r)->str).starts_with("LOADING");
      if (r != nullptr) freeReplyObject(r);
      redisFree(c);
      if (up && !loading) return;
    } else if (c != nullptr) {
      redisFree(c);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Die("redis-server did not answer PING on port " + std::to_string(port_));
}

void RedisServer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisServer::Restart() {
  Kill();
  Launch();
}

}  // namespace chatshard::redis::testing
