// The quint subcommands. Each returns the process exit status.
#pragma once

namespace quint::tools {

int cmd_run(int argc, char** argv);
int cmd_dump(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_explain(int argc, char** argv);
int cmd_compare(int argc, char** argv);

}  // namespace quint::tools
