// A per-test temporary directory, removed with its contents at destruction.
#ifndef ATBRIDGE_TESTS_TESTING_TEMP_DIR_H_
#define ATBRIDGE_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace atbridge::testing {

class TempDir {
 public:
  // Creates a fresh directory under $TMPDIR (or /tmp). Aborts the test
  // binary if that is impossible.
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(const std::string& name) const;
  // Writes `contents` to File(name) and returns its path.
  std::string WriteFile(const std::string& name, const std::string& contents) const;

 private:
  std::string path_;
};

// Reads a whole file; aborts on failure.
std::string ReadFileOrDie(const std::string& path);

// Path of a file under tests/testdata.
std::string TestDataPath(const std::string& relative);

}  // namespace atbridge::testing

#endif  // ATBRIDGE_TESTS_TESTING_TEMP_DIR_H_
