#include "traffic_file.h"

#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace chatshard::cli {
namespace {

namespace fs = std::filesystem;

std::string Reason(std::string_view line) {
  ParsedLine parsed;
  return ParseTrafficLine(line, &parsed);
}

// Scratch files made by this process, removed when the run ends.
std::vector<fs::path>& ScratchFiles() {
  static std::vector<fs::path> files;
  return files;
}

class RemoveScratchFiles : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ignored;
    for (const fs::path& file : ScratchFiles()) fs::remove(file, ignored);
  }
};
[[maybe_unused]] ::testing::Environment* const kRemoveScratchFiles =
    ::testing::AddGlobalTestEnvironment(new RemoveScratchFiles);

fs::path ScratchFile(const std::string& name) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path file = fs::path(::testing::TempDir()) / (std::string("traffic_file_") + test->name() +
                                                    "_" + std::to_string(getpid()) + "_" + name);
  ScratchFiles().push_back(file);
  return file;
}

void WritePlain(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good());
}

void WriteGzip(const fs::path& path, const std::string& text) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

TEST(TrafficFileTest, ParsesAValidLine) {
  ParsedLine parsed;
  EXPECT_EQ(
      ParseTrafficLine(R"({"ts_us":1500000,"chat":"122649/0cbdc42bda9d","bytes":151})", &parsed),
      "");
  EXPECT_EQ(parsed.ts_us, 1500000);
  EXPECT_EQ(parsed.chat, "122649/0cbdc42bda9d");
  EXPECT_EQ(parsed.bytes, 151u);
}

TEST(TrafficFileTest, BytesIsOptionalAndUnknownFieldsAreIgnored) {
  ParsedLine parsed;
  EXPECT_EQ(ParseTrafficLine(R"( {"extra":{"x":[1,2]},"chat":"a","ts_us":0} )", &parsed), "");
  EXPECT_EQ(parsed.chat, "a");
  EXPECT_EQ(parsed.bytes, 0u);
}

TEST(TrafficFileTest, NamesTheFieldOrReasonOfABadLine) {
  EXPECT_EQ(Reason(""), "empty line");
  EXPECT_EQ(Reason("   "), "empty line");
  EXPECT_EQ(Reason(R"({"ts_us":1,"chat":)").rfind("invalid JSON (", 0), 0u);
  EXPECT_EQ(Reason(R"({"ts_us":1,"chat":"a"} trailing)").rfind("invalid JSON (", 0), 0u);
  EXPECT_EQ(Reason("[1,2]"), "expected a JSON object, got array");
  EXPECT_EQ(Reason(R"({"chat":"a"})"), "missing field \"ts_us\"");
  EXPECT_EQ(Reason(R"({"ts_us":1})"), "missing field \"chat\"");
  EXPECT_EQ(Reason(R"({"ts_us":"1","chat":"a"})"),
            "field \"ts_us\": expected an integer >= 0, got string");
  EXPECT_EQ(Reason(R"({"ts_us":1.5,"chat":"a"})"),
            "field \"ts_us\": expected an integer >= 0, got number");
  EXPECT_EQ(Reason(R"({"ts_us":-1,"chat":"a"})"),
            "field \"ts_us\": expected an integer >= 0, got -1");
  EXPECT_EQ(Reason(R"({"ts_us":18446744073709551615,"chat":"a"})"),
            "field \"ts_us\": 18446744073709551615 is out of range (at most "
            "9223372036854775807)");
  EXPECT_EQ(Reason(R"({"ts_us":1,"chat":""})"), "field \"chat\": empty");
  EXPECT_EQ(Reason(R"({"ts_us":1,"chat":7})"), "field \"chat\": expected a string, got integer");
  EXPECT_EQ(Reason(R"({"ts_us":1,"chat":null})"), "field \"chat\": expected a string, got null");
  EXPECT_EQ(Reason(R"({"ts_us":1,"chat":"a","bytes":true})"),
            "field \"bytes\": expected an integer >= 0, got boolean");
  EXPECT_EQ(Reason(R"({"ts_us":1,"chat":"a","chat":"b"})"), "duplicate field \"chat\"");
}

TEST(TrafficFileTest, InternsChatsInOrderOfFirstAppearance) {
  const fs::path path = ScratchFile("t.jsonl");
  WritePlain(path,
             "{\"ts_us\":0,\"chat\":\"b\"}\n{\"ts_us\":1,\"chat\":\"a\"}\n"
             "{\"ts_us\":2,\"chat\":\"b\",\"bytes\":9}\n");
  Result<Traffic> loaded = LoadTraffic(path.string(), {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Traffic& traffic = loaded.value();
  EXPECT_EQ(traffic.chats, (std::vector<std::string>{"b", "a"}));
  ASSERT_EQ(traffic.messages.size(), 3u);
  EXPECT_EQ(traffic.messages[0].chat, 0u);
  EXPECT_EQ(traffic.messages[1].chat, 1u);
  EXPECT_EQ(traffic.messages[2].chat, 0u);
  EXPECT_EQ(traffic.messages[2].ts_us, 2);
  EXPECT_EQ(traffic.messages[2].bytes, 9u);
  EXPECT_EQ(traffic.lines, 3u);
  EXPECT_EQ(traffic.skipped, 0u);
}

TEST(TrafficFileTest, ReadsGzipAndPlainAlikeWithCrlfAndNoFinalNewline) {
  // Long enough that lines cross the reader's 256 KiB chunks.
  std::string text;
  for (int i = 0; i < 20000; ++i) {
    text += "{\"ts_us\":" + std::to_string(i) + ",\"chat\":\"chat-" + std::to_string(i % 97) +
            "\",\"bytes\":" + std::to_string(i) + "}" + (i % 2 == 0 ? "\r\n" : "\n");
  }
  text += "{\"ts_us\":20000,\"chat\":\"last\"}";  // no final newline
  const fs::path plain = ScratchFile("t.jsonl");
  const fs::path gzip = ScratchFile("t.jsonl.gz");
  WritePlain(plain, text);
  WriteGzip(gzip, text);
  std::vector<std::string> bad;
  LoadOptions options;
  options.on_bad_line = [&bad](std::string_view report) { bad.emplace_back(report); };

  for (const fs::path& path : {plain, gzip}) {
    Result<Traffic> loaded = LoadTraffic(path.string(), options);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(bad, std::vector<std::string>{}) << path;
    const Traffic& traffic = loaded.value();
    ASSERT_EQ(traffic.messages.size(), 20001u) << path;
    EXPECT_EQ(traffic.chats.size(), 98u);
    for (int i = 0; i < 20000; ++i) {
      ASSERT_EQ(traffic.messages[i].ts_us, i);
      ASSERT_EQ(traffic.chats[traffic.messages[i].chat], "chat-" + std::to_string(i % 97));
    }
    EXPECT_EQ(traffic.chats[traffic.messages.back().chat], "last");
  }
}

TEST(TrafficFileTest, SkipsAndReportsBadLinesByDefault) {
  const fs::path path = ScratchFile("t.jsonl");
  WritePlain(
      path,
      "{\"ts_us\":0,\"chat\":\"a\"}\nnot json\n{\"ts_us\":1}\n{\"ts_us\":2,\"chat\":\"a\"}\n");
  std::vector<std::string> bad;
  LoadOptions options;
  options.on_bad_line = [&bad](std::string_view report) { bad.emplace_back(report); };
  Result<Traffic> loaded = LoadTraffic(path.string(), options);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_EQ(bad[0].rfind(path.string() + ":2: invalid JSON (", 0), 0u) << bad[0];
  EXPECT_EQ(bad[1], path.string() + ":3: missing field \"chat\"");
  EXPECT_EQ(loaded.value().messages.size(), 2u);
  EXPECT_EQ(loaded.value().skipped, 2u);
  EXPECT_EQ(loaded.value().lines, 4u);
}

TEST(TrafficFileTest, StrictStopsAtTheFirstBadLine) {
  const fs::path path = ScratchFile("t.jsonl");
  WritePlain(path, "{\"ts_us\":0,\"chat\":\"a\"}\n{\"ts_us\":1}\nnot json\n");
  std::vector<std::string> bad;
  LoadOptions options;
  options.strict = true;
  options.on_bad_line = [&bad](std::string_view report) { bad.emplace_back(report); };
  Result<Traffic> loaded = LoadTraffic(path.string(), options);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(loaded.status().message(), path.string() + ":2: missing field \"chat\"");
  EXPECT_EQ(bad, std::vector<std::string>{path.string() + ":2: missing field \"chat\""});
}

TEST(TrafficFileTest, MissingOrTruncatedFileIsUnavailable) {
  Result<Traffic> missing = LoadTraffic(ScratchFile("absent.jsonl").string(), {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(missing.status().message().find("cannot open"), std::string_view::npos);

  std::string text;
  for (int i = 0; i < 5000; ++i) text += "{\"ts_us\":" + std::to_string(i) + ",\"chat\":\"a\"}\n";
  const fs::path whole = ScratchFile("whole.gz");
  WriteGzip(whole, text);
  std::ifstream in(whole, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const fs::path truncated = ScratchFile("truncated.gz");
  WritePlain(truncated, bytes.substr(0, bytes.size() - 12));
  Result<Traffic> loaded = LoadTraffic(truncated.string(), {});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(loaded.status().message().find("truncated or corrupt gzip"), std::string_view::npos)
      << loaded.status().message();
}

}  // namespace
}  // namespace chatshard::cli
