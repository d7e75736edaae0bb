#include "privaudit/util/output_folder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "test_util.h"

namespace privaudit {
namespace {
namespace fs = std::filesystem;

const nlohmann::json kSettings = {{"--epochs", "3"}, {"--seed", "0"}};

std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(OutputFolder, WritesAMarkerAndHoldsALockWhileOpen) {
  testing::TempDir dir;
  const auto out = dir.path() / "run";
  {
    OutputFolder folder(out, "train", kSettings, ExistingOutput::kRefuse);
    EXPECT_FALSE(folder.resumed());
    const auto marker = nlohmann::json::parse(read_file(out / kMarkerFile));
    EXPECT_EQ(marker["tool"], "privaudit");
    EXPECT_EQ(marker["command"], "train");
    EXPECT_EQ(marker["settings"], kSettings);
    EXPECT_TRUE(fs::exists(out / kLockFile));
    // A second run into the same folder (another open file description, as another process has).
    const auto second =
        message_of([&] { OutputFolder(out, "train", kSettings, ExistingOutput::kResume); });
    EXPECT_NE(second.find(out.string() + ": another privaudit run is writing to this folder (pid "),
              std::string::npos)
        << second;
  }
  EXPECT_FALSE(fs::exists(out / kLockFile));
}

TEST(OutputFolder, ForceRefusesAFolderPrivauditDidNotWriteAndTouchesNothing) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("thesis.tex"), "years of work\n");
  fs::create_directories(dir.path() / "photos");
  const auto message =
      message_of([&] { OutputFolder(dir.path(), "audit", kSettings, ExistingOutput::kOverwrite); });
  EXPECT_NE(
      message.find(dir.path().string() + ": not a privaudit output folder (no privaudit.json)"),
      std::string::npos)
      << message;
  EXPECT_EQ(read_file(dir.path() / "thesis.tex"), "years of work\n");
  EXPECT_TRUE(fs::exists(dir.path() / "photos"));
  EXPECT_FALSE(fs::exists(dir.path() / kMarkerFile));
  EXPECT_FALSE(fs::exists(dir.path() / kLockFile));
}

TEST(OutputFolder, ForceEmptiesAFolderPrivauditWrote) {
  testing::TempDir dir;
  { OutputFolder first(dir.path() / "run", "defend", kSettings, ExistingOutput::kRefuse); }
  testing::write_bytes((dir.path() / "run" / "feature_network.pt").string(), "weights");
  fs::create_directories(dir.path() / "run" / "points" / "pixel-lambda1");
  OutputFolder again(dir.path() / "run", "defend", {{"--epochs", "5"}}, ExistingOutput::kOverwrite);
  EXPECT_FALSE(again.resumed());
  EXPECT_FALSE(fs::exists(dir.path() / "run" / "feature_network.pt"));
  EXPECT_FALSE(fs::exists(dir.path() / "run" / "points"));
  EXPECT_EQ(
      nlohmann::json::parse(read_file(dir.path() / "run" / kMarkerFile))["settings"]["--epochs"],
      "5");
}

TEST(OutputFolder, ResumeNeedsTheSameCommandAndSettingsAndNamesTheFlagThatDiffers) {
  testing::TempDir dir;
  const auto out = dir.path() / "run";
  { OutputFolder first(out, "defend", kSettings, ExistingOutput::kRefuse); }
  testing::write_bytes((out / "point.json").string(), "{}");
  const auto other = message_of([&] {
    OutputFolder(out, "defend", {{"--epochs", "5"}, {"--seed", "0"}}, ExistingOutput::kResume);
  });
  EXPECT_NE(
      other.find(out.string() + ": was written with other settings (--epochs 3 there, 5 now)"),
      std::string::npos)
      << other;
  const auto command =
      message_of([&] { OutputFolder(out, "train", kSettings, ExistingOutput::kResume); });
  EXPECT_NE(command.find("holds the output of `privaudit defend`, not `privaudit train`"),
            std::string::npos)
      << command;
  const auto refused =
      message_of([&] { OutputFolder(out, "defend", kSettings, ExistingOutput::kRefuse); });
  EXPECT_NE(refused.find("output folder is not empty (use --resume"), std::string::npos) << refused;
  OutputFolder same(out, "defend", kSettings, ExistingOutput::kResume);
  EXPECT_TRUE(same.resumed());
  EXPECT_TRUE(fs::exists(out / "point.json"));
}

TEST(OutputFolder, ARunKilledBeforeItWroteOutputLeavesAFolderTheSameCommandStartsIn) {
  testing::TempDir dir;
  const auto out = dir.path() / "run";
  { OutputFolder first(out, "audit", kSettings, ExistingOutput::kRefuse); }
  // What SIGKILL leaves: the lock file with a dead pid (the kernel dropped the lock itself) and a
  // temporary that was never renamed.
  testing::write_bytes((out / kLockFile).string(), "999999\n");
  testing::write_bytes((out / "results.json.tmp-4242").string(), "{\"half");
  OutputFolder again(out, "audit", kSettings, ExistingOutput::kRefuse);
  EXPECT_FALSE(fs::exists(out / "results.json.tmp-4242"));
  EXPECT_EQ(read_file(out / kLockFile), std::to_string(::getpid()) + "\n");
}

TEST(OutputFolder, ResumeRemovesTemporariesAKilledRunLeftInSubfolders) {
  testing::TempDir dir;
  const auto out = dir.path() / "run";
  { OutputFolder first(out, "audit", kSettings, ExistingOutput::kRefuse); }
  fs::create_directories(out / "cnn" / "train");
  testing::write_bytes((out / "cnn" / "train" / "model.pt").string(), "w");
  testing::write_bytes((out / "cnn" / "train" / "model.pt.tmp-17").string(), "half");
  testing::write_bytes((out / "cnn" / "notes.tmp-x").string(), "not ours: no pid suffix");
  OutputFolder again(out, "audit", kSettings, ExistingOutput::kContinue);
  EXPECT_TRUE(again.resumed());
  EXPECT_TRUE(fs::exists(out / "cnn" / "train" / "model.pt"));
  EXPECT_FALSE(fs::exists(out / "cnn" / "train" / "model.pt.tmp-17"));
  EXPECT_TRUE(fs::exists(out / "cnn" / "notes.tmp-x"));
}

TEST(OutputFolder, AFileWhereTheFolderShouldBeIsRefused) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("plain"), "x");
  const auto message = message_of(
      [&] { OutputFolder(dir.path() / "plain", "train", kSettings, ExistingOutput::kRefuse); });
  EXPECT_NE(message.find(dir.file("plain") + ": exists and is not a folder"), std::string::npos)
      << message;
}

TEST(OutputFolder, FirstDifferenceNamesAddedRemovedAndChangedSettings) {
  EXPECT_EQ(first_difference(kSettings, kSettings), "");
  EXPECT_EQ(first_difference({{"--a", "1"}}, {{"--a", "2"}}), "--a 1 there, 2 now");
  EXPECT_EQ(first_difference({{"--a", "1"}}, {{"--a", "1"}, {"--b", "x"}}),
            "--b unset there, x now");
  EXPECT_EQ(first_difference({{"--a", "1"}, {"--b", ""}}, {{"--a", "1"}}),
            "--b \"\" there, unset now");
}

}  // namespace
}  // namespace privaudit
