// `chatshard convert`: the CSV reader and JSON Lines writer as functions, and
// the command run through the built binary.
#include "convert.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli_runner.h"
#include "gtest/gtest.h"
#include "traffic_file.h"

namespace chatshard::cli {
namespace {

namespace fs = std::filesystem;

struct CsvResult {
  Result<Traffic> traffic = Status::Internal("not parsed");
  std::vector<std::string> bad;
};

CsvResult ParseCsv(std::string_view text, const CsvColumns& columns = {}, bool strict = false) {
  CsvResult result;
  LoadOptions options;
  options.strict = strict;
  options.on_bad_line = [&result](std::string_view report) { result.bad.emplace_back(report); };
  result.traffic = ParseCsvTraffic(text, "in.csv", columns, options);
  return result;
}

std::string GunzipFile(const fs::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  EXPECT_NE(file, nullptr) << path;
  if (file == nullptr) return {};
  std::string text;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(file, buffer, sizeof buffer)) > 0) text.append(buffer, n);
  gzclose(file);
  return text;
}

TEST(ConvertCsvTest, MapsNamedColumnsAndIgnoresOthers) {
  CsvColumns columns;
  columns.ts_us = "time";
  columns.chat = "topic";
  columns.bytes = "size";
  const CsvResult r = ParseCsv(
      "\xEF\xBB\xBFsize,topic,extra,time\r\n"
      "10,a,x,5\r\n"
      "20,\"b,with \"\"quotes\"\"\nand a line\",y,6\n"
      "30,a,z,7",
      columns);
  ASSERT_TRUE(r.traffic.ok()) << r.traffic.status().ToString();
  EXPECT_EQ(r.bad, std::vector<std::string>{});
  const Traffic& traffic = r.traffic.value();
  EXPECT_EQ(traffic.chats, (std::vector<std::string>{"a", "b,with \"quotes\"\nand a line"}));
  ASSERT_EQ(traffic.messages.size(), 3u);
  EXPECT_EQ(traffic.messages[1].ts_us, 6);
  EXPECT_EQ(traffic.messages[1].chat, 1u);
  EXPECT_EQ(traffic.messages[1].bytes, 20u);
  EXPECT_EQ(traffic.messages[2].chat, 0u);
  EXPECT_EQ(traffic.messages[2].bytes, 30u);
}

TEST(ConvertCsvTest, BytesColumnIsOptionalUnlessNamed) {
  const CsvResult r = ParseCsv("chat,ts_us\na,1\n");
  ASSERT_TRUE(r.traffic.ok()) << r.traffic.status().ToString();
  EXPECT_EQ(r.traffic.value().messages.at(0).bytes, 0u);

  CsvColumns named;
  named.bytes_required = true;
  const CsvResult missing = ParseCsv("chat,ts_us\na,1\n", named);
  ASSERT_FALSE(missing.traffic.ok());
  EXPECT_EQ(missing.traffic.status().message(),
            "in.csv:1: no column \"bytes\" in the header (chat,ts_us)");
}

// Line 3's quoted chat spans two lines, so the rows after it start one line later.
constexpr std::string_view kBadCsv =
    "ts_us,chat,bytes\n"
    "1,a,10\n"
    "2,\"two\nlines\",20\n"
    "x,a,1\n"
    "-4,a,1\n"
    "5,,1\n"
    "6,a\n"
    "\n"
    "8,a,99999999999999999999\n"
    "9,\"a\"b,1\n"
    "10,b,1.5\n"
    "11,b,0\n";

TEST(ConvertCsvTest, ReportsEachBadRowWithItsLineNumberAndField) {
  const CsvResult r = ParseCsv(kBadCsv);
  ASSERT_TRUE(r.traffic.ok()) << r.traffic.status().ToString();
  EXPECT_EQ(r.bad, (std::vector<std::string>{
                       "in.csv:5: field \"ts_us\": expected an integer >= 0, got \"x\"",
                       "in.csv:6: field \"ts_us\": expected an integer >= 0, got -4",
                       "in.csv:7: field \"chat\": empty",
                       "in.csv:8: expected 3 fields (as in the header), got 2",
                       "in.csv:9: empty line",
                       "in.csv:10: field \"bytes\": 99999999999999999999 is out of range (at "
                       "most 9223372036854775807)",
                       "in.csv:11: field 2: text after its closing quote",
                       "in.csv:12: field \"bytes\": expected an integer >= 0, got \"1.5\"",
                   }));
  EXPECT_EQ(r.traffic.value().messages.size(), 3u);
  EXPECT_EQ(r.traffic.value().skipped, 8u);
  EXPECT_EQ(r.traffic.value().lines, 11u);
}

TEST(ConvertCsvTest, NamesTheColumnWhenItIsNotTheFieldName) {
  CsvColumns columns;
  columns.ts_us = "time";
  const CsvResult r = ParseCsv("time,chat\nsoon,a\n", columns);
  EXPECT_EQ(r.bad, std::vector<std::string>{
                       "in.csv:2: field \"ts_us\" (column \"time\"): expected an integer >= 0, "
                       "got \"soon\""});
}

TEST(ConvertCsvTest, StrictStopsAtTheFirstBadRow) {
  const CsvResult r = ParseCsv(kBadCsv, {}, /*strict=*/true);
  ASSERT_FALSE(r.traffic.ok());
  EXPECT_EQ(r.traffic.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.bad.size(), 1u);
  EXPECT_EQ(r.traffic.status().message(),
            "in.csv:5: field \"ts_us\": expected an integer >= 0, got \"x\"");
}

TEST(ConvertCsvTest, RefusesAHeaderWithoutTheColumnsOrAnUnterminatedQuote) {
  EXPECT_EQ(ParseCsv("").traffic.status().message(), "in.csv: no header row");
  EXPECT_EQ(ParseCsv("time,chat\n1,a\n").traffic.status().message(),
            "in.csv:1: no column \"ts_us\" in the header (time,chat)");
  EXPECT_EQ(ParseCsv("ts_us,chat,chat\n").traffic.status().message(),
            "in.csv:1: column \"chat\" appears more than once in the header");
  const CsvResult r = ParseCsv("ts_us,chat\n1,\"open\n2,a\n");
  EXPECT_EQ(r.bad, std::vector<std::string>{"in.csv:2: unterminated quoted field"});
}

TEST(ConvertJsonLinesTest, WritesOneCompactObjectPerMessageWithEscapedIds) {
  Traffic traffic;
  traffic.chats = {"a", "q\"\\\n日本"};
  traffic.messages = {{.ts_us = 0, .chat = 0, .bytes = 151}, {.ts_us = 9, .chat = 1, .bytes = 0}};
  const std::string text = FormatJsonLines(traffic);
  EXPECT_EQ(text,
            "{\"ts_us\":0,\"chat\":\"a\",\"bytes\":151}\n"
            "{\"ts_us\":9,\"chat\":\"q\\\"\\\\\\n日本\",\"bytes\":0}\n");
  ParsedLine parsed;
  EXPECT_EQ(ParseTrafficLine(text.substr(text.find('\n') + 1, text.size() - text.find('\n') - 2),
                             &parsed),
            "");
  EXPECT_EQ(parsed.chat, traffic.chats[1]);
}

// ---- The command, run as a user would.

TEST(CliConvertTest, JsonLinesToBinaryAndBackIsByteIdenticalAfterTwoConversions) {
  const fs::path dir = ScratchDir();
  const auto convert = [](const fs::path& in, const fs::path& out) {
    const CommandResult r = RunCli({"convert", in.string(), out.string()});
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
  };
  convert(CHATSHARD_SAMPLE, dir / "a.bin");
  convert(dir / "a.bin", dir / "b.jsonl");
  convert(dir / "b.jsonl", dir / "c.bin");
  convert(dir / "c.bin", dir / "d.jsonl");
  const std::string a = ReadFile(dir / "a.bin");
  const std::string b = ReadFile(dir / "b.jsonl");
  EXPECT_EQ(b, ReadFile(dir / "d.jsonl"));
  EXPECT_EQ(a, ReadFile(dir / "c.bin"));
  // The sample was written in the same form as the tool's, so even the first
  // conversion gives back its bytes.
  EXPECT_EQ(b, GunzipFile(CHATSHARD_SAMPLE));
  EXPECT_LT(a.size() * 5, b.size()) << a.size() << " vs " << b.size();
}

TEST(CliConvertTest, GzipOutputAndGzipBinaryInput) {
  const fs::path dir = ScratchDir();
  const fs::path jsonl = dir / "t.jsonl";
  WriteFile(jsonl,
            "{\"ts_us\":3,\"chat\":\"x\",\"bytes\":1,\"payload\":\"hi\"}\n"
            "{\"ts_us\":1,\"chat\":\"y\"}\n");
  CommandResult r = RunCli({"convert", jsonl.string(), (dir / "t.bin.gz").string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = RunCli({"convert", (dir / "t.bin.gz").string(), (dir / "u.jsonl.gz").string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(GunzipFile(dir / "u.jsonl.gz"),
            "{\"ts_us\":3,\"chat\":\"x\",\"bytes\":1}\n{\"ts_us\":1,\"chat\":\"y\",\"bytes\":0}\n");
  // --to overrides the name; "-" is standard output.
  r = RunCli({"convert", (dir / "t.bin.gz").string(), "-"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, GunzipFile(dir / "u.jsonl.gz"));
  r = RunCli({"convert", jsonl.string(), (dir / "named.jsonl").string(), "--to", "binary"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ReadFile(dir / "named.jsonl"), GunzipFile(dir / "t.bin.gz"));
}

TEST(CliConvertTest, CsvToBinaryToJsonLines) {
  const fs::path dir = ScratchDir();
  WriteFile(dir / "in.csv",
            "id,time,room,size\n"
            "1,100,general,12\n"
            "2,150,\"random, chat\",7\n"
            "3,90,general,0\n");
  CommandResult r = RunCli({"convert", (dir / "in.csv").string(), (dir / "out.bin").string(),
                            "--csv-ts", "time", "--csv-chat", "room", "--csv-bytes", "size"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.err.find("3 messages, 2 chats"), std::string::npos) << r.err;
  r = RunCli({"convert", (dir / "out.bin").string(), (dir / "out.jsonl").string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ReadFile(dir / "out.jsonl"),
            "{\"ts_us\":100,\"chat\":\"general\",\"bytes\":12}\n"
            "{\"ts_us\":150,\"chat\":\"random, chat\",\"bytes\":7}\n"
            "{\"ts_us\":90,\"chat\":\"general\",\"bytes\":0}\n");
}

TEST(CliConvertTest, ReportsBadLinesSkipsAndCountsOrStopsWithStrict) {
  const fs::path dir = ScratchDir();
  const std::string csv = (dir / "bad.csv").string();
  WriteFile(csv, std::string(kBadCsv));
  CommandResult r = RunCli({"convert", csv, (dir / "out.jsonl").string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.err.find(csv + ":5: field \"ts_us\": expected an integer >= 0, got \"x\""),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(csv + ":12: field \"bytes\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("skipped 8 bad line(s) of 11"), std::string::npos) << r.err;
  const std::string written = ReadFile(dir / "out.jsonl");
  EXPECT_EQ(std::count(written.begin(), written.end(), '\n'), 3) << written;

  const fs::path strict_out = dir / "strict.jsonl";
  r = RunCli({"convert", csv, strict_out.string(), "--strict"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find(csv + ":5: "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(csv + ":6: "), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(strict_out));

  const std::string jsonl = (dir / "bad.jsonl").string();
  WriteFile(jsonl, "{\"ts_us\":1,\"chat\":\"a\"}\n{\"ts_us\":2}\n{\"ts_us\":3,\"chat\":\"b\"}\n");
  r = RunCli({"convert", jsonl, (dir / "out.bin").string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.err.find(jsonl + ":2: missing field \"chat\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("skipped 1 bad line(s) of 3"), std::string::npos) << r.err;
  r = RunCli({"convert", jsonl, (dir / "out2.bin").string(), "--strict"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
}

TEST(CliConvertTest, TruncatedOrCorruptBinaryExitsOneNamingTheOffset) {
  const fs::path dir = ScratchDir();
  const fs::path bin = dir / "whole.bin";
  ASSERT_EQ(RunCli({"convert", CHATSHARD_SAMPLE, bin.string()}).exit_code, 0);
  const std::string whole = ReadFile(bin);
  std::string corrupt = whole;
  corrupt[whole.size() / 2] ^= 0x10;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {whole.substr(0, 3), "truncated: the header"},
      {whole.substr(0, 30), "truncated: the header"},
      {whole.substr(0, whole.size() / 3), "truncated"},
      {whole.substr(0, whole.size() - 1), "truncated"},
      {corrupt, "checksum mismatch"},
  };
  for (const auto& [bytes, reason] : cases) {
    const fs::path cut = dir / "cut.bin";
    WriteFile(cut, bytes);
    for (const char* command : {"convert", "replay"}) {
      std::vector<std::string> args = {command, cut.string()};
      if (args[0] == "convert") args.push_back((dir / "out.jsonl").string());
      const CommandResult r = RunCli(args);
      EXPECT_EQ(r.exit_code, 1) << Describe(r);
      EXPECT_NE(r.err.find(cut.string() + ": offset "), std::string::npos) << r.err;
      EXPECT_NE(r.err.find(reason), std::string::npos) << reason << "\n" << r.err;
      EXPECT_EQ(r.out, "");
    }
  }
}

TEST(CliConvertTest, ReplayReadsBinaryUnchanged) {
  const fs::path dir = ScratchDir();
  ASSERT_EQ(RunCli({"convert", CHATSHARD_SAMPLE, (dir / "sample.bin").string()}).exit_code, 0);
  const CommandResult r =
      RunCli({"replay", (dir / "sample.bin").string(), "--json", (dir / "result.json").string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const auto result = nlohmann::json::parse(ReadFile(dir / "result.json"));
  EXPECT_EQ(result["messages"], 85714);
  EXPECT_EQ(result["completed"], 85714);
  EXPECT_EQ(result["order_violations"], 0);
}

TEST(CliConvertTest, BadUsageExitsTwoAndAFormatMismatchExitsOne) {
  const fs::path dir = ScratchDir();
  WriteFile(dir / "t.jsonl", "{\"ts_us\":1,\"chat\":\"a\"}\n");
  const std::string in = (dir / "t.jsonl").string();
  const std::string out = (dir / "t.bin").string();
  CommandResult r = RunCli({"convert", in, out, "--to", "csv"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("--to"), std::string::npos) << r.err;
  r = RunCli({"convert", in, out, "--csv-ts", "time"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("--csv-ts"), std::string::npos) << r.err;
  r = RunCli({"convert", in, (dir / "t.csv").string()});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  r = RunCli({"convert", in});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  r = RunCli({"convert", in, out, "--from", "binary"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("is jsonl, not binary"), std::string::npos) << r.err;
  r = RunCli({"convert", (dir / "missing.jsonl").string(), out});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
  r = RunCli({"convert", in, (dir / "no_dir" / "t.bin").string()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace chatshard::cli
