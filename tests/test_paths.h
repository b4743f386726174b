// Where tests find things: the project, the build, shared third-party test data, tools.
#pragma once

#include <string>

namespace quint::test {

std::string source_dir();
std::string binary_dir();
// ../shared/testdata next to the checkout (or $QUINT_TESTDATA); "" when absent.
std::string testdata_dir();
// /usr/bin/python3 when it can import the given module list (comma separated); "" otherwise.
std::string python_with(const std::string& modules);
// The ONNX Runtime harness folder (tests/ort) if its node_modules are installed; "" otherwise.
std::string ort_harness_dir();
// Runs a shell command, returns its exit status; output goes to `log` when given.
int run_command(const std::string& cmd, std::string* log = nullptr);

}  // namespace quint::test
